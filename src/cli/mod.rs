//! The command line: parses arguments, runs one command, prints errors once, returns the exit code.
//!
//! Exit codes: 0 success, 1 a failure while doing the work (I/O, a validator rejecting a
//! file), 2 invalid input (usage, a profile that does not load or resolve).

// Doc comments here are clap's help text, read by people in a terminal, not rustdoc.
#![allow(clippy::doc_markdown)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory as _, Parser, Subcommand};

use crate::plan::Plan;

mod content;
mod docs;
mod host;
mod ship;
mod ui;
mod work;

use ui::{Switches, Ui};

pub use work::params_reference;
use work::{build, check, lock, render, repo_sync};

const EXAMPLES: &str = "\
Examples:
  infragen check --profile three-node
  infragen render --profile three-node --out out --validate
  infragen render --profile ./pigsty.yml --address-map 10.10.10.=127.0.10. --out /tmp/r
  infragen params
  infragen completions bash > /etc/bash_completion.d/infragen
  infragen man --out /usr/local/share/man/man1";

/// Compile a Pigsty-style INFRA inventory into immutable, validated, per-host artifacts.
#[derive(Parser)]
#[command(name = "infragen", version, after_help = EXAMPLES)]
struct Cli {
    /// Print errors only: no result lines, warnings or progress
    #[arg(long, short, global = true, conflicts_with_all = ["verbose", "json"])]
    quiet: bool,
    /// One plain line per event on stderr (phases, downloads, layers, steps), no progress bars
    #[arg(long, short, global = true)]
    verbose: bool,
    /// JSON lines on stdout, one event per line and a final `result` object
    /// (check, build, lock, activate, status, generations, verify; docs/json.md)
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// The commands `--json` applies to.
const JSON_COMMANDS: [&str; 7] = [
    "check",
    "build",
    "lock",
    "activate",
    "status",
    "generations",
    "verify",
];

#[derive(Subcommand)]
enum Command {
    /// Validate a profile and print its infra hosts and their components, and count its other nodes
    #[command(after_help = "Example:\n  infragen check --profile three-node")]
    Check(ProfileArgs),
    /// Render every infra host's configuration files under DIR/<host>/<component>/ and every node's node files under DIR/<host>/node/
    #[command(
        after_help = "Example:\n  infragen render --profile single-node --out out --validate"
    )]
    Render {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Output directory: new, empty, or written by infragen before (then replaced whole, atomically)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Run each component's own checker (nginx -t, amtool, vmalert -dryRun, …) on the result
        #[arg(long)]
        validate: bool,
        /// With --validate: a checker that is not installed, or that cannot be isolated, is an error, not a skip
        #[arg(long, requires = "validate")]
        strict: bool,
    },
    /// Build every infra host's OCI images (and secrets) and every node's bundle into DIR/<host>/
    #[command(after_help = "Example:\n  infragen build --profile three-node --out out")]
    Build {
        #[command(flatten)]
        profile: ProfileArgs,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        base: BaseArgs,
        /// Output directory: new, empty, or written by infragen before (then replaced whole, atomically)
        #[arg(long, value_name = "DIR", default_value = "out")]
        out: PathBuf,
        /// Run the checkers on the rendered configuration first (as `render --validate`)
        #[arg(long)]
        validate: bool,
        /// An image that cannot be built (a base image not imported) is an error, not a warning, and so is a problem of the monitoring content checks; with --validate, so is a checker not installed or not isolated
        #[arg(long)]
        strict: bool,
        /// Sign each bundle's manifest with this private key (`infragen key generate`)
        #[arg(long, value_name = "FILE")]
        sign_key: Option<PathBuf>,
        /// The passphrase of an encrypted --sign-key: this file's first line (else $INFRAGEN_KEY_PASSPHRASE)
        #[arg(long, value_name = "FILE", requires = "sign_key")]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        layer: LayerArgs,
    },
    /// Signing keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// This host's own keys (secrets are encrypted to them)
    #[command(subcommand)]
    Host(HostCommand),
    /// Resolve every image's packages against this machine's APT sources into the lock file
    #[command(
        after_help = "Examples:\n  infragen lock\n  infragen lock --only-bases --base-registry registry.example:5000/mirror\n  infragen lock --only-bases --profile ./pigsty.yml --base-registry registry.example:5000/mirror"
    )]
    Lock {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        base: BaseArgs,
        /// Re-pin only the base images; keep every package closure and the time source of the
        /// existing lock (no APT source is read)
        #[arg(long)]
        only_bases: bool,
        /// Also pin the upstream images this profile takes components from
        /// (`infragen_upstream_images`, as `upstream/<component>`); without it, the lock's
        /// upstream entries stay as they are
        #[arg(long, short, value_name = "PROFILE")]
        profile: Option<String>,
        /// Accept repository metadata without a valid signature (digests are still checked)
        #[arg(long)]
        allow_unsigned: bool,
        /// APT configuration directory to take sources from
        #[arg(long, value_name = "DIR", default_value = "/etc/apt")]
        apt_dir: PathBuf,
        /// Leave out the APT source with this URI (repeatable): its packages are not considered.
        /// Without it, a source that fails verification fails the lock
        #[arg(long, value_name = "URI")]
        drop_source: Vec<String>,
        /// Check Release files' Date and Valid-Until against this RFC 3339 time instead of the
        /// clock: to resolve on purpose against a known snapshot (an air-gapped mirror)
        #[arg(long, value_name = "TIME")]
        apt_snapshot_at: Option<String>,
    },
    /// Local package repository (Pigsty's repo: repo_home/repo_name)
    #[command(subcommand)]
    Repo(RepoCommand),
    /// On a host: verify a bundle, stage it, switch to it, probe it, roll back on failure
    #[command(
        after_help = "Examples:\n  infragen activate out/10.10.10.10\n  infragen activate out/10.10.10.10 --dry-run\n  infragen activate out/127.0.10.10 --root /tmp/host\n  infragen activate out/10.10.10.12 --remove"
    )]
    Activate {
        /// The bundle: a directory (out/<host>), an archive of one, or a registry reference
        /// (`host[:port]/namespace/bundle[:tag]`, the tag defaulting to this host's name)
        bundle: String,
        /// Fetch a registry bundle's blobs into the host's store, verified, and stop there
        #[arg(long)]
        pull_only: bool,
        /// Talk plain HTTP to the registry (a test registry, an infra node's static tree)
        #[arg(long)]
        plain_http: bool,
        /// Registry credentials [default: $REGISTRY_AUTH_FILE, containers' auth.json, ~/.docker/config.json]
        #[arg(long, value_name = "FILE")]
        authfile: Option<PathBuf>,
        #[command(flatten)]
        host: HostArgs,
        /// Print the plan and write nothing
        #[arg(long)]
        dry_run: bool,
        /// Take infragen off this host instead: stop and remove every component, give back
        /// every host file it owns as it was before (the bundle authorises it: built for this
        /// host, signed by a trusted key); `infragen rollback` undoes it
        #[arg(long, conflicts_with = "pull_only")]
        remove: bool,
        /// How components run: `unit` (RootDirectory= services), `nspawn` (systemd-nspawn@),
        /// `portable` (portablectl attach) or `podman` (Quadlet, podman >= 4.4)
        #[arg(long, default_value = "unit", value_parser = ["unit", "nspawn", "portable", "podman"])]
        runtime: String,
        /// Accept a bundle older than the current generation
        #[arg(long)]
        allow_downgrade: bool,
        /// Seconds each started, restarted or reloaded component has to pass its health probe
        #[arg(long, default_value_t = 30)]
        health_timeout: u64,
        /// Accept a bundle that no key in /etc/infragen/trusted/ signed
        #[arg(long)]
        allow_unsigned: bool,
        /// This host's name in the inventory [default: the content of /etc/infragen/host]
        #[arg(long = "host", value_name = "NAME")]
        host_name: Option<String>,
    },
    /// Switch back to the previous generation
    Rollback {
        #[command(flatten)]
        host: HostArgs,
        /// Seconds each component has to pass its health probe
        #[arg(long, default_value_t = 30)]
        health_timeout: u64,
    },
    /// Show the current generation and its services
    Status {
        #[command(flatten)]
        host: HostArgs,
    },
    /// List generations, oldest first
    Generations {
        #[command(flatten)]
        host: HostArgs,
    },
    /// Remove old generations and what only they used (current and rollback are kept)
    Gc {
        #[command(flatten)]
        host: HostArgs,
        /// How many of the newest generations to keep
        #[arg(long, default_value_t = 3)]
        keep: usize,
    },
    /// Recompute every digest of a bundle (out/<host>) against its manifest
    #[command(after_help = "Example:\n  infragen verify out/10.10.10.10")]
    Verify {
        /// The bundle directory
        bundle: PathBuf,
        /// A public key (`infragen.pub`) the signature must verify with (repeatable)
        #[arg(long = "key", value_name = "FILE")]
        keys: Vec<PathBuf>,
    },
    /// Push every host's images and bundle (an OCI artifact) of a build's output to a registry
    #[command(
        after_help = "Examples:\n  infragen push out 10.10.10.10:5000/infragen\n  infragen push out 127.0.0.1:5000/infragen --plain-http\n\nImages go to REF/<image> by digest, bundles to REF/bundle tagged <host> and <generation>."
    )]
    Push {
        /// The output directory of `infragen build`
        out: PathBuf,
        /// The repository prefix, host included: HOST[:PORT]/PATH (never a default registry)
        #[arg(value_name = "REF")]
        reference: String,
        /// Talk HTTP instead of HTTPS to the registry
        #[arg(long)]
        plain_http: bool,
        /// Credentials file [default: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
        /// ~/.config/containers/auth.json, ~/.docker/config.json]
        #[arg(long, value_name = "FILE")]
        authfile: Option<PathBuf>,
        /// Blobs larger than this are uploaded in chunks of this many bytes
        #[arg(long, value_name = "BYTES", default_value_t = crate::registry::DEFAULT_CHUNK,
              value_parser = clap::value_parser!(u64).range(1..))]
        chunk_size: u64,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Print the parameter reference: every INFRA parameter and its default
    Params,
    /// Print the completion script for SHELL
    #[command(
        after_help = "Examples:\n  infragen completions bash > /etc/bash_completion.d/infragen\n  infragen completions zsh > \"${fpath[1]}/_infragen\"\n  infragen completions fish > ~/.config/fish/completions/infragen.fish"
    )]
    Completions {
        /// The shell to complete for
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one page per command into DIR
    #[command(
        after_help = "Examples:\n  infragen man | man -l -\n  infragen man --out /usr/local/share/man/man1"
    )]
    Man {
        /// Write infragen.1 and one page per subcommand (infragen-build.1, …) into DIR (created
        /// if missing; pages of the same name are replaced)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum HostCommand {
    /// On a host: make its age key pair for secrets (kept if it exists) and print the public key
    #[command(
        after_help = "Example:\n  infragen host init            # prints age1…\n  # in the profile, on this host: infragen_host_key: age1…"
    )]
    Init {
        #[command(flatten)]
        host: HostArgs,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Write a new signing key pair: DIR/infragen.key (private, 0600), the same key encrypted
    /// for skopeo as DIR/infragen.sigstore.key (0600), and DIR/infragen.pub
    #[command(
        after_help = "Example:\n  infragen key generate --out keys --passphrase-file pass\n  # on each host: /etc/infragen/trusted/<name>.pub\n  skopeo copy --sign-by-sigstore-private-key keys/infragen.sigstore.key --sign-passphrase-file pass SRC DST"
    )]
    Generate {
        /// Directory to write the pair into (created; an existing key is never overwritten)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Encrypt infragen.sigstore.key with this file's first line (default: the empty passphrase)
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RepoCommand {
    /// Fill the local repository with every locked package, a Packages index and repo_complete
    #[command(
        after_help = "Example:\n  infragen repo sync --profile single-node --dir /www/pigsty"
    )]
    Sync {
        #[command(flatten)]
        profile: ProfileArgs,
        #[command(flatten)]
        store: StoreArgs,
        /// Repository directory (default: <repo_home>/<repo_name> of the profile's first infra host)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Then lay out this build output's images and bundles as a static registry tree
        #[arg(long, value_name = "OUT")]
        images: Option<PathBuf>,
        /// With --images: the static tree's directory (default: <repo_home>/registry)
        #[arg(long, value_name = "DIR", requires = "images")]
        registry_dir: Option<PathBuf>,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Lay out a build output's images and bundles as a static registry tree (no packages)
    #[command(
        after_help = "Example:\n  infragen repo images --profile single-node --images out\n  # hosts pull <admin_ip>/infragen/bundle:<host>; nginx serves <repo_home>/registry/v2/"
    )]
    Images {
        #[command(flatten)]
        profile: ProfileArgs,
        /// The output directory of `infragen build`
        #[arg(long, value_name = "OUT")]
        images: PathBuf,
        /// The static tree's directory (default: <repo_home>/registry of the profile)
        #[arg(long, value_name = "DIR")]
        registry_dir: Option<PathBuf>,
        #[command(flatten)]
        sign: SignArgs,
    },
}

/// Signing what is pushed.
#[derive(Args)]
struct SignArgs {
    /// Sign every image and bundle with this key (sigstore attachments, `sha256-<hex>.sig`)
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// The passphrase of an encrypted --sign-key (its first line) [default: $INFRAGEN_KEY_PASSPHRASE]
    #[arg(long, value_name = "FILE", requires = "sign_key")]
    passphrase_file: Option<PathBuf>,
}

impl SignArgs {
    fn load(&self) -> Result<Option<crate::sign::SigningKey>, i32> {
        let Some(k) = &self.sign_key else {
            return Ok(None);
        };
        let pass = match &self.passphrase_file {
            Some(p) => match crate::sign::sealed::read_passphrase_file(p) {
                Ok(p) => Some(p),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return Err(2);
                }
            },
            None => None,
        };
        crate::sign::SigningKey::load_with(k, pass.as_deref())
            .map(Some)
            .map_err(|e| {
                eprintln!("error: {e:#}");
                2
            })
    }
}

#[derive(Args)]
struct HostArgs {
    /// Work on a directory tree instead of this host, without calling systemd
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

impl HostArgs {
    fn options(
        &self,
        dry_run: bool,
        allow_downgrade: bool,
        health_timeout: u64,
    ) -> crate::activate::Options {
        crate::activate::Options {
            root: self.root.clone().unwrap_or_else(|| PathBuf::from("/")),
            systemd: self.root.is_none(),
            dry_run,
            allow_downgrade,
            health_timeout: std::time::Duration::from_secs(health_timeout),
            runtime: crate::activate::Runtime::default(),
            allow_unsigned: false,
            host: None,
        }
    }
}

/// How `build` makes layers: threads (the output does not depend on them) and compression.
#[derive(Args)]
struct LayerArgs {
    /// Threads for layer work (fetching, decoding and compressing packages); default: one per core. The images are the same for any number
    #[arg(long, value_name = "N")]
    jobs: Option<std::num::NonZeroUsize>,
    /// How the layers built are compressed: gzip (level 6, read by every OCI tool) or zstd (level 3, OCI 1.1 `tar+zstd` layers: faster, read by podman, skopeo, umoci, containerd ≥ 1.5 and infragen's activation)
    #[arg(long, value_enum, value_name = "ALGORITHM", default_value = "gzip")]
    compression: CompressionArg,
}

/// `--compression`'s values.
#[derive(Clone, Copy, clap::ValueEnum)]
enum CompressionArg {
    /// gzip, level 6
    Gzip,
    /// zstd, level 3
    Zstd,
}

impl From<CompressionArg> for crate::oci::layer::Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::Gzip => Self::Gzip,
            CompressionArg::Zstd => Self::Zstd,
        }
    }
}

#[derive(Args)]
struct StoreArgs {
    /// The lock file
    #[arg(long, value_name = "FILE", default_value = "infragen.lock")]
    lock: PathBuf,
    /// Cache of packages and layers [default: $XDG_CACHE_HOME/infragen or ~/.cache/infragen]
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// A local repository directory with .deb files to use before the network (repeatable)
    #[arg(long = "repo", value_name = "DIR")]
    repos: Vec<PathBuf>,
    /// An OCI layout holding imported base images (grafana, victoria-logs, victoria-traces)
    #[arg(long, value_name = "DIR")]
    bases: Option<PathBuf>,
    /// PKI state: the CA and issued certificates, reused across builds
    /// [default: $XDG_STATE_HOME/infragen/pki/<key> or ~/.local/state/infragen/pki/<key>, the key
    /// `builtin-<name>` for a built-in profile, else `out-<dir>-<hash>` of the output directory]
    #[arg(long, value_name = "DIR")]
    pki: Option<PathBuf>,
}

impl StoreArgs {
    /// The PKI state of a build: `--pki`, else a directory under the state directory, one per
    /// built-in profile and, for a profile file, one per output directory (certificates depend
    /// on the inventory, so two deployments never share them; the profile file's own path or
    /// name never chooses it, so renaming or moving the profile keeps its CA and certificates).
    fn pki(&self, plan: &Plan, out: &Path) -> PathBuf {
        if let Some(dir) = &self.pki {
            return dir.clone();
        }
        let state = if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
            PathBuf::from(x).join("infragen")
        } else {
            std::env::var_os("HOME").map_or_else(
                || PathBuf::from("/var/lib/infragen-build"),
                |h| PathBuf::from(h).join(".local/state/infragen"),
            )
        };
        let key = if let Some(name) = plan.source.strip_prefix("builtin:") {
            format!("builtin-{name}")
        } else {
            // The output directory may not exist yet: its parent's real path and its name.
            let absolute = std::fs::canonicalize(out).unwrap_or_else(|_| {
                let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
                let parent = std::fs::canonicalize(parent.unwrap_or(Path::new(".")))
                    .unwrap_or_else(|_| parent.unwrap_or(Path::new(".")).to_path_buf());
                parent.join(out.file_name().unwrap_or_default())
            });
            let stem = absolute
                .file_name()
                .map_or_else(|| "out".into(), |s| s.to_string_lossy().into_owned());
            let hash = crate::digest::sha256_hex(absolute.to_string_lossy().as_bytes());
            format!("out-{stem}-{}", &hash[..12])
        };
        state.join("pki").join(key)
    }

    fn cache(&self) -> PathBuf {
        self.cache
            .clone()
            .unwrap_or_else(crate::pkg::fetch::Cache::default_dir)
    }
}

/// Where base images (grafana, victoria-logs, victoria-traces) are pulled from.
#[derive(Args)]
struct BaseArgs {
    /// The registry holding base images, `HOST[:PORT][/PREFIX]`: `grafana/grafana-oss:12.2.1`
    /// becomes `HOST[:PORT][/PREFIX]/grafana/grafana-oss:12.2.1` [default: $INFRAGEN_BASE_REGISTRY]
    #[arg(long, value_name = "HOST[:PORT][/PREFIX]")]
    base_registry: Option<String>,
    /// Talk plain HTTP to the base registry (a test or local mirror registry)
    #[arg(long)]
    plain_http: bool,
    /// Base registry credentials [default: $REGISTRY_AUTH_FILE, containers' auth.json, ~/.docker/config.json]
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
}

impl BaseArgs {
    /// The base registry, when `--base-registry` or `$INFRAGEN_BASE_REGISTRY` names one; on an
    /// invalid value prints the error and returns 2.
    fn registry(&self, ui: &Ui) -> Result<Option<crate::bases::BaseRegistry>, i32> {
        let options = crate::registry::Options {
            plain_http: self.plain_http,
            authfile: self.authfile.clone(),
            ..crate::registry::Options::default()
        };
        crate::bases::BaseRegistry::from_args(self.base_registry.as_deref(), options).map_err(|e| {
            ui.error(format!("{e:#}"));
            2
        })
    }
}

#[derive(Args)]
struct ProfileArgs {
    /// A built-in profile (single-node, three-node, small-prod, large-prod) or a path
    #[arg(long, short, value_name = "PROFILE", default_value = "single-node")]
    profile: String,
    /// Move hosts to other addresses, like Pigsty's configure: whole addresses in the profile's keys and values (FROM=TO, e.g. 10.10.10.=127.0.10.)
    #[arg(long, value_name = "FROM=TO", value_parser = crate::profile::address_map::Rule::parse)]
    address_map: Vec<crate::profile::address_map::Rule>,
}

/// Runs the command line `args` and returns the process exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            // `--json` asked for a result object even when the command line is wrong.
            if e.use_stderr() && args.iter().any(|a| a == "--json") {
                ui::usage_error(None, &e.render().to_string());
            }
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let name = cli.command.name();
    let switches = Switches {
        quiet: cli.quiet,
        verbose: cli.verbose,
        json: cli.json,
    };
    if cli.json && !JSON_COMMANDS.contains(&name) {
        let text = format!(
            "`--json` is not supported by `{name}`\nhint: it applies to {}",
            JSON_COMMANDS.join(", ")
        );
        ui::usage_error(Some(name), &text);
        eprintln!("error: {text}");
        return 2;
    }
    let ui = Ui::new(name, switches);
    let code = match cli.command {
        Command::Activate { .. }
        | Command::Rollback { .. }
        | Command::Status { .. }
        | Command::Generations { .. }
        | Command::Gc { .. }
        | Command::Verify { .. }
        | Command::Host(_)
        | Command::Key(_) => host_side(cli.command, &ui),
        Command::Params => {
            print!("{}", params_reference());
            0
        }
        Command::Completions { shell } => docs::completions(Cli::command(), shell),
        Command::Man { out } => docs::man(Cli::command(), out.as_deref()),
        other => build_side(other, &ui),
    };
    ui.finish(code)
}

impl Command {
    /// The command's name, as typed.
    fn name(&self) -> &'static str {
        match self {
            Command::Check(_) => "check",
            Command::Render { .. } => "render",
            Command::Build { .. } => "build",
            Command::Key(_) => "key",
            Command::Host(_) => "host",
            Command::Lock { .. } => "lock",
            Command::Repo(_) => "repo",
            Command::Activate { .. } => "activate",
            Command::Rollback { .. } => "rollback",
            Command::Status { .. } => "status",
            Command::Generations { .. } => "generations",
            Command::Gc { .. } => "gc",
            Command::Verify { .. } => "verify",
            Command::Push { .. } => "push",
            Command::Params => "params",
            Command::Completions { .. } => "completions",
            Command::Man { .. } => "man",
        }
    }
}

/// check, render, build, lock, repo, push.
fn build_side(command: Command, ui: &Ui) -> i32 {
    match command {
        Command::Check(p) => check(&p, ui),
        Command::Render {
            profile,
            out,
            validate,
            strict,
        } => render(&profile, &out, validate, strict, ui),
        Command::Build {
            profile,
            store,
            base,
            out,
            validate,
            strict,
            sign_key,
            passphrase_file,
            layer,
        } => build(
            &work::BuildArgs {
                layer: &layer,
                profile: &profile,
                store: &store,
                base: &base,
                out: &out,
                validate,
                strict,
                sign_key: sign_key.as_deref().map(|k| (k, passphrase_file.as_deref())),
            },
            ui,
        ),
        Command::Lock {
            store,
            base,
            only_bases,
            profile,
            allow_unsigned,
            apt_dir,
            drop_source,
            apt_snapshot_at,
        } => lock(
            &work::LockArgs {
                store: &store,
                base: &base,
                only_bases,
                profile: profile.as_deref(),
                allow_unsigned,
                apt_dir: &apt_dir,
                drop_source: &drop_source,
                apt_snapshot_at: apt_snapshot_at.as_deref(),
            },
            ui,
        ),
        Command::Repo(r) => repo(r, ui),
        Command::Push {
            out,
            reference,
            plain_http,
            authfile,
            chunk_size,
            sign,
        } => match sign.load() {
            Ok(key) => ship::push(
                &out,
                &reference,
                &crate::registry::Options {
                    plain_http,
                    authfile,
                    chunk_size,
                },
                key.as_ref(),
                ui,
            ),
            Err(code) => code,
        },
        _ => unreachable!("run sends only build-side commands here"),
    }
}

/// `repo sync` and `repo images`.
fn repo(command: RepoCommand, ui: &Ui) -> i32 {
    match command {
        RepoCommand::Sync {
            profile,
            store,
            dir,
            images,
            registry_dir,
            sign,
        } => {
            let key = match sign.load() {
                Ok(k) => k,
                Err(code) => return code,
            };
            let code = repo_sync(&profile, &store, dir.as_deref(), ui);
            match images {
                Some(out) if code == 0 => {
                    match ship::registry_dir(&profile, registry_dir.as_deref(), ui) {
                        Ok(d) => ship::images(&out, &d, key.as_ref(), ui),
                        Err(code) => code,
                    }
                }
                _ => code,
            }
        }
        RepoCommand::Images {
            profile,
            images,
            registry_dir,
            sign,
        } => match (
            ship::registry_dir(&profile, registry_dir.as_deref(), ui),
            sign.load(),
        ) {
            (Ok(d), Ok(key)) => ship::images(&images, &d, key.as_ref(), ui),
            (Err(code), _) | (_, Err(code)) => code,
        },
    }
}

/// activate, rollback, status, generations, gc, verify, host, key.
fn host_side(command: Command, ui: &Ui) -> i32 {
    match command {
        Command::Key(KeyCommand::Generate {
            out,
            passphrase_file,
        }) => host::key_generate(&out, passphrase_file.as_deref()),
        Command::Host(HostCommand::Init { host }) => {
            host::host_init(&host.options(false, false, 0).root)
        }
        Command::Activate {
            bundle,
            pull_only,
            plain_http,
            authfile,
            host,
            dry_run,
            remove,
            runtime,
            allow_downgrade,
            health_timeout,
            allow_unsigned,
            host_name,
        } => {
            let mut opts = host.options(dry_run, allow_downgrade, health_timeout);
            opts.runtime = runtime.parse().expect("clap checked the runtime");
            opts.allow_unsigned = allow_unsigned;
            opts.host = host_name;
            let registry = crate::registry::Options {
                plain_http,
                authfile,
                ..crate::registry::Options::default()
            };
            if remove {
                return host::remove(&bundle, &opts, ui);
            }
            host::activate(&bundle, &opts, &registry, pull_only, ui)
        }
        Command::Rollback {
            host,
            health_timeout,
        } => host::rollback(&host.options(false, true, health_timeout), ui),
        Command::Status { host } => host::status(&host.options(false, false, 0), ui),
        Command::Generations { host } => host::generations(&host.options(false, false, 0), ui),
        Command::Gc { host, keep } => host::gc(&host.options(false, false, 0), keep, ui),
        Command::Verify { bundle, keys } => host::verify(&bundle, &keys, ui),
        _ => unreachable!("run sends only host-side commands here"),
    }
}
