//! The host side of the command line: activate, rollback, status, generations, gc, verify.

use std::path::Path;

use serde::Serialize;

use super::Ui;
use crate::activate::{Action, Options, Outcome};

/// `text` with control characters but newlines and tabs escaped (`\u{1b}`): the names in an
/// error come from bundles and archives, whose escape sequences are not the terminal's to run.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn fail(e: &anyhow::Error, ui: &Ui) -> i32 {
    ui.error(printable(&format!("{e:#}")));
    1
}

/// A step of an activation, rollback or plan, as the result lists it.
#[derive(Serialize)]
struct StepOut {
    action: String,
    component: String,
    unit: String,
    why: String,
}

/// Prints what an activation or rollback did (every step but the components left alone), or
/// with `dry_run` the plan; sets the result.
fn report(result: anyhow::Result<Outcome>, verb: &str, dry_run: bool, ui: &Ui) -> i32 {
    let o = match result {
        Ok(o) => o,
        Err(e) => return fail(&e, ui),
    };
    let short = |s: &str| s.chars().take(12).collect::<String>();
    if dry_run {
        ui.say(format!(
            "generation {} → {}",
            o.previous
                .as_deref()
                .map_or_else(|| "(none)".to_owned(), short),
            short(&o.generation)
        ));
    }
    let mut steps = Vec::new();
    for s in o
        .steps
        .iter()
        .filter(|s| dry_run || s.action != Action::Keep)
    {
        ui.say(format!(
            "  {:<7} {} ({})",
            s.action.to_string(),
            o.unit(s),
            s.why
        ));
        steps.push(StepOut {
            action: s.action.to_string(),
            component: s.component.clone(),
            unit: o.unit(s),
            why: s.why.clone(),
        });
    }
    if !dry_run {
        ui.say(format!(
            "{verb}: generation {} is current ({} runtime)",
            o.generation, o.runtime
        ));
    }
    ui.set("dry_run", dry_run);
    ui.set("generation", &o.generation);
    ui.set("previous", &o.previous);
    ui.set("runtime", o.runtime.to_string());
    ui.set("steps", steps);
    0
}

pub(super) fn activate(
    bundle: &str,
    opts: &Options,
    registry: &crate::registry::Options,
    pull_only: bool,
    ui: &Ui,
) -> i32 {
    let progress = &ui.progress;
    // A path that exists is a bundle on disk; anything else must be a registry reference.
    let result = if Path::new(bundle).exists() {
        if pull_only {
            return fail(
                &anyhow::anyhow!(
                    "--pull-only takes a registry reference, and `{bundle}` is a path"
                ),
                ui,
            );
        }
        crate::activate::activate(Path::new(bundle), opts, progress)
    } else {
        match crate::registry::Reference::parse(bundle) {
            Err(e) => {
                ui.error(format!(
                    "`{bundle}` is neither a bundle on disk nor a registry reference: {e:#}"
                ));
                return 2;
            }
            Ok(_) => {
                match crate::activate::activate_from(bundle, registry, opts, pull_only, progress) {
                    Ok((pulled, None)) => {
                        ui.set("pulled", pulled.artifact.as_ref().map(ToString::to_string));
                        ui.set("fetched_bytes", pulled.fetched_bytes);
                        return 0;
                    }
                    Ok((_, Some(outcome))) => Ok(outcome),
                    Err(e) => Err(e),
                }
            }
        }
    };
    report(result, "activate", opts.dry_run, ui)
}

pub(super) fn rollback(opts: &Options, ui: &Ui) -> i32 {
    report(
        crate::activate::rollback(opts, &ui.progress),
        "rollback",
        false,
        ui,
    )
}

/// `activate --remove`.
pub(super) fn remove(bundle: &str, opts: &Options, ui: &Ui) -> i32 {
    let path = Path::new(bundle);
    if !path.exists() {
        return fail(
            &anyhow::anyhow!("--remove takes a bundle on disk, and `{bundle}` is not one"),
            ui,
        );
    }
    match crate::activate::remove(path, opts, &ui.progress) {
        Ok(r) => {
            let verb = if opts.dry_run {
                "would remove"
            } else {
                "removed"
            };
            for c in &r.components {
                ui.say(format!("{verb} component {c}"));
            }
            for f in &r.files {
                ui.say(format!(
                    "{} {f}",
                    if opts.dry_run {
                        "would give back"
                    } else {
                        "gave back"
                    }
                ));
            }
            match &r.generation {
                Some(g) if !opts.dry_run => ui.say(format!(
                    "generation {} is no longer current (`infragen rollback` returns to it)",
                    &g[..12.min(g.len())]
                )),
                Some(_) => {}
                None => ui.say("no generation was active"),
            }
            ui.set("removed", true);
            ui.set("dry_run", opts.dry_run);
            ui.set_all(r);
            0
        }
        Err(e) => fail(&e, ui),
    }
}

pub(super) fn status(opts: &Options, ui: &Ui) -> i32 {
    match crate::activate::status(&opts.root, opts.systemd) {
        Ok(s) => {
            ui.say(s.to_string().trim_end_matches('\n'));
            ui.set_all(s);
            0
        }
        Err(e) => fail(&e, ui),
    }
}

pub(super) fn generations(opts: &Options, ui: &Ui) -> i32 {
    match crate::activate::generations(&opts.root) {
        Ok(list) => {
            for l in &list {
                ui.say(l);
            }
            ui.set("generations", list);
            0
        }
        Err(e) => fail(&e, ui),
    }
}

pub(super) fn gc(opts: &Options, keep: usize, ui: &Ui) -> i32 {
    match crate::activate::gc(&opts.root, keep) {
        Ok(removed) => {
            for r in &removed {
                ui.say(format!("removed {r}"));
            }
            ui.say(format!("{} removed", removed.len()));
            0
        }
        Err(e) => fail(&e, ui),
    }
}

/// How a verified bundle is signed: a sentence for people, and the key that signed it.
fn signed(bundle: &Path, keys: &[std::path::PathBuf]) -> anyhow::Result<(String, Option<String>)> {
    use anyhow::Context as _;
    let opened = crate::bundle::Opened::open(bundle)?;
    let Some(sig) = &opened.signature else {
        anyhow::ensure!(keys.is_empty(), "the bundle is not signed");
        return Ok(("not signed".to_owned(), None));
    };
    if keys.is_empty() {
        return Ok((
            "signed (no --key given to check the signature with)".to_owned(),
            None,
        ));
    }
    let trusted = keys
        .iter()
        .map(|k| {
            let text =
                std::fs::read_to_string(k).with_context(|| format!("reading {}", k.display()))?;
            crate::sign::PublicKey::from_pem(&text).with_context(|| format!("{}", k.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let key = crate::sign::verify(&opened.bytes, sig, &opened.manifest.host, &trusted)?;
    Ok((
        format!("signed by key {key} for host `{}`", opened.manifest.host),
        Some(key.to_string()),
    ))
}

pub(super) fn verify(bundle: &Path, keys: &[std::path::PathBuf], ui: &Ui) -> i32 {
    ui.set("path", bundle.display().to_string());
    ui.progress.phase("verify");
    match crate::bundle::verify(bundle) {
        Ok(problems) if problems.is_empty() => match signed(bundle, keys) {
            Ok((how, key)) => {
                ui.say(format!(
                    "{}: every file matches the manifest; {how}",
                    bundle.display()
                ));
                ui.set("signed_by", key);
                0
            }
            Err(e) => {
                ui.error(format!("{}: {e:#}", bundle.display()));
                1
            }
        },
        Ok(problems) => {
            for p in &problems {
                ui.error(printable(&format!("{}: {p}", bundle.display())));
            }
            ui.set("problems", &problems);
            1
        }
        Err(e) => fail(&e, ui),
    }
}

/// `host init`: the public key on stdout alone (for scripts), what happened on stderr.
pub(super) fn host_init(root: &Path) -> i32 {
    match crate::secrets::host_init(root) {
        Ok((recipient, made)) => {
            let path = root.join(crate::secrets::IDENTITY);
            if made {
                eprintln!("wrote {} (0600)", path.display());
            } else {
                eprintln!("kept the existing identity {}", path.display());
            }
            println!("{recipient}");
            eprintln!("hint: put it in the profile as this host's `infragen_host_key`");
            0
        }
        Err(e) => {
            eprintln!("error: {}", printable(&format!("{e:#}")));
            1
        }
    }
}

/// `infragen key generate --out DIR [--passphrase-file FILE]`.
pub(super) fn key_generate(out: &Path, passphrase_file: Option<&Path>) -> i32 {
    let run = || -> anyhow::Result<(std::path::PathBuf, String)> {
        use anyhow::Context as _;
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let passphrase = passphrase_file
            .map(crate::sign::sealed::read_passphrase_file)
            .transpose()?
            .unwrap_or_default();
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let (private, key) = crate::sign::SigningKey::generate()?;
        let sealed = key.to_sealed_pem(&passphrase)?;
        let write_private = |name: &str, text: &str| -> anyhow::Result<()> {
            let path = out.join(name);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| {
                    format!(
                        "creating {} (an existing key is never overwritten)",
                        path.display()
                    )
                })?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            Ok(())
        };
        // Both files are checked absent first, so a refusal leaves neither half written.
        for name in [KEY_FILE, SIGSTORE_KEY_FILE] {
            let path = out.join(name);
            if path.symlink_metadata().is_ok() {
                anyhow::bail!(
                    "{} exists (an existing key is never overwritten)\nhint: choose another \
                     `--out` directory",
                    path.display()
                );
            }
        }
        write_private(KEY_FILE, &private)?;
        write_private(SIGSTORE_KEY_FILE, &sealed)?;
        let pub_path = out.join("infragen.pub");
        std::fs::write(&pub_path, key.public.to_pem())
            .with_context(|| format!("writing {}", pub_path.display()))?;
        Ok((pub_path, key.public.id.to_string()))
    };
    match run() {
        Ok((p, id)) => {
            println!(
                "wrote {}, {} and {} (key {id})",
                out.join(KEY_FILE).display(),
                out.join(SIGSTORE_KEY_FILE).display(),
                p.display()
            );
            println!(
                "hosts trust it when it is in /etc/infragen/trusted/ (any name ending in .pub)"
            );
            let pass = passphrase_file.map_or_else(
                || "an empty file".to_owned(),
                |p| format!("`{}`", p.display()),
            );
            println!(
                "skopeo signs with it: --sign-by-sigstore-private-key {} --sign-passphrase-file {pass}",
                out.join(SIGSTORE_KEY_FILE).display()
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// The private key, PKCS#8 PEM.
const KEY_FILE: &str = "infragen.key";
/// The same key in sigstore's encrypted form.
const SIGSTORE_KEY_FILE: &str = "infragen.sigstore.key";
