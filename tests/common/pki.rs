//! PKI state directories for tests: the committed throwaway one copied with the modes infragen
//! demands (git keeps only 0644 and 0755, and a CA key others can read is refused), and a CA
//! pair that does not belong together.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// The committed throwaway PKI of the golden builds (`tests/cases/meta/pki`, see its README).
pub fn committed() -> std::path::PathBuf {
    super::root().join("tests/cases/meta/pki")
}

/// Copies the PKI state directory `from` to `to`, as infragen would have left it: every key
/// (`*.key`) 0600, every directory 0700, the rest 0644.
pub fn copy(from: &Path, to: &Path) {
    super::copy_tree(from, to);
    for e in walkdir::WalkDir::new(to) {
        let e = e.unwrap();
        let mode = if e.file_type().is_dir() {
            0o700
        } else if e.path().extension().is_some_and(|x| x == "key") {
            0o600
        } else {
            0o644
        };
        fs::set_permissions(e.path(), fs::Permissions::from_mode(mode)).unwrap();
    }
}
