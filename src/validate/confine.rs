//! A checker's confinement: the command that runs it where it sees only what it must.
//!
//! Each checker runs in fresh user, mount, network and PID namespaces (`unshare`), inside a
//! root that holds nothing of this machine but:
//!
//! - the component's rendered tree (its sandbox directory, read-write, at the same path),
//! - the checker program, its `#!` interpreter when it is a script, their shared libraries as
//!   `ldd` lists them, and `/etc/ld.so.cache`, each bound read-only at its own path; `umount`
//!   and its libraries likewise (it detaches the old root),
//! - `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random` and `/dev/urandom`,
//! - an `/etc/passwd` and `/etc/group` naming root and nobody only (nginx looks its user up),
//!   and an empty `/tmp`.
//!
//! That root is a `tmpfs` mounted inside the namespace over an empty directory of the run's
//! scratch, so it vanishes with the namespace and nothing of it is ever on disk. It becomes
//! the namespace's root by `pivot_root`, and the old root is unmounted: nothing of this machine
//! is left in the namespace to return to. Its network namespace has only a loopback
//! carrying the host's address (`nginx -t` binds its listen sockets). The checker is the namespace's PID 1 and dies with `unshare`, which `setpriv
//! --pdeathsig` kills when infragen dies; a guard run after the `prctl` goes on only if
//! infragen is still its parent, which closes the window between the fork and the `prctl`: a
//! `kill -9` of infragen at any moment leaves no checker running.
//!
//! The libraries come from `ldd` rather than from reading the ELF's needed list: `ldd` is the
//! loader's own answer (its search path, `ld.so.cache`, `$ORIGIN`, transitive needs), which a
//! reimplementation would only approximate. The checkers are this machine's own programs, run
//! right after: `ldd` runs nothing they would not.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Sets the root up inside the namespaces, makes it the namespace's root (`pivot_root`, the
/// old one detached), then runs the checker in it. Arguments: the root (an empty directory),
/// the rendered tree, the host's address, `umount` (bound in the root with its libraries: the
/// one program that runs there besides the checker), the files to bind read-only, `--`, then
/// the checker's command line.
const SETUP: &str = r#"set -eu
root=$1 tree=$2 host=$3 umount=$4
shift 4
ip link set lo up
ip addr add "$host" dev lo
mount -t tmpfs -o mode=0755,size=64m infragen-checker "$root"
mkdir -p "$root/dev" "$root/etc" "$root/tmp" "$root/.old" "$root$tree"
chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
for d in null zero full random urandom; do
  : >"$root/dev/$d"
  mount --bind "/dev/$d" "$root/dev/$d"
done
mount --bind "$tree" "$root$tree"
while [ "$1" != -- ]; do
  mkdir -p "$root${1%/*}"
  : >"$root$1"
  mount --bind "$1" "$root$1"
  mount -o remount,bind,ro,nosuid,nodev "$root$1"
  shift
done
shift
mkdir "$root/proc"
mount -t proc proc "$root/proc"
cd "$root"
pivot_root . .old
"$umount" -l /.old
"$umount" -l /proc
exec "$@"
"#;

/// The programs confinement needs on this machine.
pub(super) const TOOLS: [&str; 7] = [
    "setpriv",
    "unshare",
    "ip",
    "mount",
    "umount",
    "pivot_root",
    "ldd",
];

/// Run by `setpriv` once the parent-death signal is set: it goes on only if infragen (`$1`) is
/// still its parent. Without it, a `kill -9` of infragen between the fork and `setpriv`'s
/// `prctl` would leave a checker that no signal and no time limit ever stops.
const GUARD: &str = r#"[ "$PPID" = "$1" ] || exit 125
shift
exec "$@"
"#;

/// `setpriv` with the guard that kills the checker when infragen dies: the head of every
/// confined command line.
fn guarded() -> Command {
    guarded_for(std::process::id())
}

/// The guard for a parent `pid`.
fn guarded_for(pid: u32) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--pdeathsig", "KILL", "sh", "-c", GUARD, "infragen-guard"])
        .arg(pid.to_string());
    cmd
}

/// The namespaces, after the guard.
const UNSHARE: [&str; 7] = [
    "unshare",
    "--user",
    "--map-root-user",
    "--mount",
    "--net",
    "--pid",
    "--fork",
];

/// Whether this machine can confine a checker: the namespaces, a `tmpfs`, a read-only bind, a
/// loopback address and `pivot_root`, tried once in a throwaway namespace. `Err` says why not.
pub(super) fn probe() -> Result<(), String> {
    let out = guarded()
        .args(UNSHARE)
        .args(["--kill-child", "sh", "-c"])
        .arg(
            "ip link set lo up && ip addr add 127.0.0.2 dev lo && mount --bind /dev/null /dev/null \
             && mount -o remount,bind,ro,nosuid,nodev /dev/null && mount -t tmpfs probe /tmp \
             && cd /tmp && mkdir .old && pivot_root . .old",
        )
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "user, mount, network and PID namespaces are unavailable (`unshare`: {})",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("`setpriv` could not run: {e}")),
    }
}

/// The command that runs `program args` confined to `tree`, with `root` (an empty directory of
/// the run's scratch) as the mount point of its root, `host` on its loopback, and `umount`
/// (this machine's) to detach the old root.
pub(super) fn command(
    root: &Path,
    tree: &Path,
    host: &str,
    umount: &Path,
    program: &Path,
    args: &[String],
) -> Result<Command> {
    let mut binds = needs(program)?;
    binds.extend(needs(umount)?);
    binds.sort();
    binds.dedup();
    let mut cmd = guarded();
    cmd.args(UNSHARE)
        .args(["--kill-child", "sh", "-c", SETUP, "infragen-checker"])
        .arg(root)
        .arg(tree)
        .arg(host)
        .arg(umount)
        .args(binds)
        .arg("--")
        .arg(program)
        .args(args);
    Ok(cmd)
}

/// The files `program` needs to run: itself, its `#!` interpreter, their libraries and the
/// loader's cache; sorted, each once.
pub(super) fn needs(program: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![program.to_path_buf()];
    let binary = match interpreter(program)? {
        Some(i) => {
            files.push(i.clone());
            i
        }
        None => program.to_path_buf(),
    };
    let libs = libraries(&binary)?;
    let cache = Path::new("/etc/ld.so.cache");
    if !libs.is_empty() && cache.is_file() {
        files.push(cache.to_path_buf());
    }
    files.extend(libs);
    files.sort();
    files.dedup();
    Ok(files)
}

/// The interpreter a `#!` script names, or `None` for a binary.
fn interpreter(program: &Path) -> Result<Option<PathBuf>> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(program)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("reading {}", program.display()))?;
    let Some(line) = head[..n].strip_prefix(b"#!") else {
        return Ok(None);
    };
    let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
    let text = String::from_utf8_lossy(line);
    let Some(path) = text.split_whitespace().next() else {
        bail!("{}: `#!` names no interpreter", program.display());
    };
    if !path.starts_with('/') {
        bail!(
            "{}: `#!` interpreter `{path}` is not an absolute path",
            program.display()
        );
    }
    if interpreter(Path::new(path))?.is_some() {
        bail!(
            "{}: `#!` interpreter `{path}` is a script itself",
            program.display()
        );
    }
    Ok(Some(PathBuf::from(path)))
}

/// The shared libraries of `binary` and its loader, as `ldd` resolves them; none for a static
/// binary.
fn libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .env("LC_ALL", "C")
        .output()
        .context("running `ldd`")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // Static: `ldd` says "not a dynamic executable" (on stdout or stderr, by version).
        let both = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
        if both.contains("not a dynamic executable") || both.contains("statically linked") {
            return Ok(Vec::new());
        }
        bail!("`ldd {}` failed: {}", binary.display(), both.trim());
    }
    Ok(parse_ldd(&text))
}

/// The paths in `ldd`'s output: `name => /path (addr)` and `/path (addr)` lines; the vDSO and
/// libraries `ldd` could not find have none.
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = line.split_once("=> ").map_or(line, |(_, p)| p);
            let path = path.split(" (").next().unwrap_or_default().trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_the_library_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffc)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f5e)\n\
                    \tlibgone.so.1 => not found\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f5e)\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }

    #[test]
    fn the_guard_goes_on_only_under_its_parent() {
        let out = guarded().args(["echo", "ran"]).output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"ran\n");
        // A parent that is not the one named: infragen died before the `prctl`.
        let out = guarded_for(std::process::id() + 1)
            .args(["echo", "ran"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125));
        assert_eq!(out.stdout, b"");
    }

    #[test]
    fn a_script_needs_its_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("checker");
        std::fs::write(&script, "#!/bin/sh -e\nexit 0\n").unwrap();
        assert_eq!(
            interpreter(&script).unwrap(),
            Some(PathBuf::from("/bin/sh"))
        );
        std::fs::write(&script, "#!sh\n").unwrap();
        let e = interpreter(&script).unwrap_err().to_string();
        assert!(
            e.ends_with("`#!` interpreter `sh` is not an absolute path"),
            "{e}"
        );
        std::fs::write(&script, "\x7fELF").unwrap();
        assert_eq!(interpreter(&script).unwrap(), None);
    }
}
