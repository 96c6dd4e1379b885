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

pub(super) fn activate(bundle: &Path, opts: &Options) -> i32 {
    let result = crate::activate::activate(bundle, opts);
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

/// `infragen key generate --out DIR`.
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

pub(super) fn key_generate(out: &Path) -> i32 {
    let run = || -> anyhow::Result<(std::path::PathBuf, String)> {
        use anyhow::Context as _;
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let (private, key) = crate::sign::SigningKey::generate()?;
        let key_path = out.join("infragen.key");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .with_context(|| {
                format!(
                    "creating {} (an existing key is never overwritten)",
                    key_path.display()
                )
            })?;
        f.write_all(private.as_bytes())?;
        f.sync_all()?;
        let pub_path = out.join("infragen.pub");
        std::fs::write(&pub_path, key.public.to_pem())
            .with_context(|| format!("writing {}", pub_path.display()))?;
        Ok((pub_path, key.public.id.to_string()))
    };
    match run() {
        Ok((p, id)) => {
            println!(
                "wrote {} and {} (key {id})",
                out.join("infragen.key").display(),
                p.display()
            );
            println!(
                "hosts trust it when it is in /etc/infragen/trusted/ (any name ending in .pub)"
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
