//! The host side of the command line: activate, rollback, status, generations, gc, verify.

use std::path::Path;

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

fn fail(e: &anyhow::Error) -> i32 {
    eprintln!("error: {}", printable(&format!("{e:#}")));
    1
}

/// Prints what an activation or rollback did: every step but the components left alone.
fn report(result: anyhow::Result<Outcome>, verb: &str) -> i32 {
    match result {
        Ok(o) => {
            for s in o.steps.iter().filter(|s| s.action != Action::Keep) {
                println!("  {:<7} {} ({})", s.action.to_string(), o.unit(s), s.why);
            }
            println!(
                "{verb}: generation {} is current ({} runtime)",
                o.generation, o.runtime
            );
            0
        }
        Err(e) => fail(&e),
    }
}

pub(super) fn activate(
    bundle: &str,
    opts: &Options,
    registry: &crate::registry::Options,
    pull_only: bool,
) -> i32 {
    // A path that exists is a bundle on disk; anything else must be a registry reference.
    let result = if Path::new(bundle).exists() {
        if pull_only {
            return fail(&anyhow::anyhow!(
                "--pull-only takes a registry reference, and `{bundle}` is a path"
            ));
        }
        crate::activate::activate(Path::new(bundle), opts)
    } else {
        match crate::registry::Reference::parse(bundle) {
            Err(e) => {
                eprintln!(
                    "error: `{bundle}` is neither a bundle on disk nor a registry reference: {e:#}"
                );
                return 2;
            }
            Ok(_) => match crate::activate::activate_from(bundle, registry, opts, pull_only) {
                Ok((_, None)) => return 0,
                Ok((_, Some(outcome))) => Ok(outcome),
                Err(e) => Err(e),
            },
        }
    };
    if opts.dry_run {
        // The plan was printed; nothing happened to report.
        return result.map_or_else(|e| fail(&e), |_| 0);
    }
    report(result, "activate")
}

pub(super) fn rollback(opts: &Options) -> i32 {
    report(crate::activate::rollback(opts), "rollback")
}

pub(super) fn status(opts: &Options) -> i32 {
    match crate::activate::status(&opts.root, opts.systemd) {
        Ok(s) => {
            print!("{s}");
            0
        }
        Err(e) => fail(&e),
    }
}

pub(super) fn generations(opts: &Options) -> i32 {
    match crate::activate::generations(&opts.root) {
        Ok(list) => {
            for l in list {
                println!("{l}");
            }
            0
        }
        Err(e) => fail(&e),
    }
}

pub(super) fn gc(opts: &Options, keep: usize) -> i32 {
    match crate::activate::gc(&opts.root, keep) {
        Ok(removed) => {
            for r in &removed {
                println!("removed {r}");
            }
            println!("{} removed", removed.len());
            0
        }
        Err(e) => fail(&e),
    }
}

pub(super) fn verify(bundle: &Path, keys: &[std::path::PathBuf]) -> i32 {
    let signed = || -> anyhow::Result<String> {
        use anyhow::Context as _;
        let opened = crate::bundle::Opened::open(bundle)?;
        let Some(sig) = &opened.signature else {
            anyhow::ensure!(keys.is_empty(), "the bundle is not signed");
            return Ok("not signed".to_owned());
        };
        if keys.is_empty() {
            return Ok("signed (no --key given to check the signature with)".to_owned());
        }
        let trusted = keys
            .iter()
            .map(|k| {
                let text = std::fs::read_to_string(k)
                    .with_context(|| format!("reading {}", k.display()))?;
                crate::sign::PublicKey::from_pem(&text).with_context(|| format!("{}", k.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let key = crate::sign::verify(&opened.bytes, sig, &opened.manifest.host, &trusted)?;
        Ok(format!(
            "signed by key {key} for host `{}`",
            opened.manifest.host
        ))
    };
    match crate::bundle::verify(bundle) {
        Ok(problems) if problems.is_empty() => match signed() {
            Ok(how) => {
                println!(
                    "{}: every file matches the manifest; {how}",
                    bundle.display()
                );
                0
            }
            Err(e) => {
                eprintln!("error: {}: {e:#}", bundle.display());
                1
            }
        },
        Ok(problems) => {
            for p in &problems {
                eprintln!(
                    "error: {}",
                    printable(&format!("{}: {p}", bundle.display()))
                );
            }
            1
        }
        Err(e) => fail(&e),
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
        Err(e) => fail(&e),
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
