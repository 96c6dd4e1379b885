//! Signed APT repositories made by a test: a throwaway `OpenPGP` key made with `gpg` in a
//! temporary `GNUPGHOME`, and repositories in the `dists/<suite>/` layout whose `InRelease` it
//! clearsigns, with the `Date`, `Valid-Until`, `Suite` and `Codename` the test chooses. Read
//! through `file:` sources, so no server is involved. Integration tier: it needs `gpg`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

/// A throwaway signing key: its `GNUPGHOME` and the public keyring `gpgv` reads.
pub struct Key {
    home: tempfile::TempDir,
    /// The public key, exported (binary), for `signed-by=`.
    pub keyring: PathBuf,
}

fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home)
        .args([
            "--batch",
            "--quiet",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
        ])
        .args(["--passphrase", ""]);
    c
}

fn run(c: &mut Command, what: &str) {
    let o = c
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (install the `gnupg` package)"));
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Key {
    /// A new ed25519 key named `name`, without passphrase or expiry.
    pub fn new(name: &str) -> Key {
        let home = tempfile::Builder::new()
            .prefix("infragen-gpg-")
            .tempdir()
            .unwrap();
        fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        run(
            gpg(home.path()).args([
                "--quick-generate-key",
                &format!("{name} <{name}@infragen.invalid>"),
                "ed25519",
                "sign",
                "never",
            ]),
            "gpg --quick-generate-key",
        );
        let keyring = home.path().join("public.gpg");
        run(
            gpg(home.path())
                .arg("--output")
                .arg(&keyring)
                .arg("--export"),
            "gpg --export",
        );
        Key { home, keyring }
    }

    /// Clearsigns `text` into `out` (an `InRelease`).
    pub fn clearsign(&self, text: &str, out: &Path) {
        let plain = out.with_file_name("Release");
        fs::write(&plain, text).unwrap();
        run(
            gpg(self.home.path())
                .args(["--yes", "--digest-algo", "SHA256", "--output"])
                .arg(out)
                .arg("--clearsign")
                .arg(&plain),
            "gpg --clearsign",
        );
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // The agent gpg started for this home ends with it.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// A Release date as Debian writes it (`Sat, 10 May 2025 09:28:38 UTC`).
pub fn date(seconds: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(seconds).unwrap();
    t.format(&Rfc2822).unwrap().replace("+0000", "UTC")
}

/// This machine's clock, in seconds since the epoch.
#[allow(clippy::disallowed_methods)] // the checks under test are against the real clock
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// What goes into one suite's Release.
pub struct Suite<'a> {
    /// The directory under `dists/`, the suite the source asks for.
    pub dir: &'a str,
    /// `Suite:` as written (`None` leaves the field out).
    pub name: Option<&'a str>,
    /// `Codename:` (`None` leaves the field out).
    pub codename: Option<&'a str>,
    /// `Date:`, seconds since the epoch.
    pub date: i64,
    /// `Valid-Until:`, when present.
    pub valid_until: Option<i64>,
}

/// Writes `root/dists/<suite.dir>/main/binary-amd64/Packages` (`packages`) and its Release,
/// clearsigned by `key` as `InRelease`. Returns the `Packages` path (a test may change it
/// after signing).
pub fn suite(root: &Path, s: &Suite<'_>, packages: &str, key: &Key) -> PathBuf {
    let dists = root.join("dists").join(s.dir);
    let index = dists.join("main/binary-amd64/Packages");
    fs::create_dir_all(index.parent().unwrap()).unwrap();
    fs::write(&index, packages).unwrap();
    let mut release = String::from("Origin: infragen-test\n");
    if let Some(v) = s.name {
        let _ = writeln!(release, "Suite: {v}");
    }
    if let Some(v) = s.codename {
        let _ = writeln!(release, "Codename: {v}");
    }
    let _ = writeln!(release, "Date: {}", date(s.date));
    if let Some(v) = s.valid_until {
        let _ = writeln!(release, "Valid-Until: {}", date(v));
    }
    let _ = write!(
        release,
        "Architectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n",
        infragen::digest::sha256_hex(packages.as_bytes()),
        packages.len()
    );
    key.clearsign(&release, &dists.join("InRelease"));
    fs::remove_file(dists.join("Release")).unwrap();
    index
}

/// The one-line source for `root`'s `suite`, verified against `keyring`.
pub fn source_line(root: &Path, suite: &str, keyring: &Path) -> String {
    format!(
        "deb [signed-by={}] file:{}/ {suite} main\n",
        keyring.display(),
        root.display()
    )
}
