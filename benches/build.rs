//! Benchmark (not a test): building `three-node` with the release binary, against floors and a
//! peer measured in the same run, interleaved (A B C … A B C …, so a busy machine slows every
//! side alike), printing medians and the median and min–max of each ratio.
//!
//! `cargo bench --bench build` (docs/performance.md has the numbers and how to read them):
//!
//! 1. **Rebuilds** (`BENCH_REBUILDS` rounds, default 15), each round:
//!    - one-parameter rebuild: `vmetrics_scrape_interval` set to a value not used before, so
//!      its config layers are really built (6: vmetrics' and vmalert's on 3 hosts);
//!    - no-change rebuild: the same build again;
//!    - floor: the binary's own start-up, `infragen --version`;
//!    - floor: `find OUT -printf '%s %m'`, a stat of every output file.
//! 2. **Cold builds** (`BENCH_ROUNDS` rounds, default 3), each round on the same distinct layer
//!    tars (taken from the build itself) and the same `.deb`s:
//!    - A: `infragen build`, empty layer cache and store, warm package cache (`.deb`s present);
//!    - A-zstd: the same with `--compression zstd`, when the binary has that option;
//!    - floor: `gzip -6 -n` + `sha256sum` (of the tar and of the gzip) of every distinct layer,
//!      one process after another, one core;
//!    - floor: the same with `pigz -6 -p N`, and with `zstd -3 -T N` (N = the cores here);
//!    - floor: the xz decode of the same `.deb`s (`dpkg-deb --fsys-tarfile` to `/dev/null`);
//!    - peer: a `dpkg-deb --fsys-tarfile` + `umoci raw add-layer` pipeline building the same
//!      images from the same `.deb`s as a user would script it: per component an image of its
//!      packages' trees (`umoci new`, one `add-layer` per `.deb`), then per host a tag of it with
//!      the host's own two layers added (infragen's recipe and config layers, as tars).
//!
//! Needs: `gzip`, `pigz`, `zstd`, `dpkg-deb`, `umoci`, `find` (Debian packages of those
//! names; `pigz` and `umoci` are not in `.ci/deps`' minimal set for this: install them), a lock
//! (`INFRAGEN_BENCH_LOCK`, default the repository's `infragen.lock`; resolve a fresh one with
//! `infragen lock` when the mirror has moved on) and Debian's mirror or a warm package cache
//! (`$XDG_CACHE_HOME/infragen`, filled by the first build here).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(cmd: &mut Command, what: &str) -> Duration {
    let start = Instant::now();
    let o = cmd.stdout(Stdio::null()).output().unwrap();
    let took = start.elapsed();
    assert!(
        o.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    took
}

fn sh(script: &str, what: &str) -> Duration {
    run(Command::new("sh").args(["-c", script]), what)
}

/// The arguments of a build of `profile` into `dir/out` with its stores under `dir`.
fn build_cmd(bin: &str, profile: &Path, dir: &Path, lock: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args(["build", "-q", "--profile"])
        .arg(profile)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--cache")
        .arg(dir.join("cache"))
        .arg("--pki")
        .arg(dir.join("pki"))
        .arg("--lock")
        .arg(lock);
    c
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

/// Median and range of `a[i] / b[i]`.
fn ratios(a: &[Duration], b: &[Duration]) -> (f64, f64, f64) {
    let mut r: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
        .collect();
    r.sort_by(f64::total_cmp);
    (r[r.len() / 2], r[0], r[r.len() - 1])
}

#[allow(clippy::cast_precision_loss)] // sizes far below 2^52
fn mib(n: u64) -> f64 {
    n as f64 / 1_048_576.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn line(name: &str, v: &[Duration]) -> String {
    let (lo, hi) = (v.iter().min().unwrap(), v.iter().max().unwrap());
    format!(
        "  {name:<46} median {:>9.1} ms   (min {:.1}, max {:.1})",
        ms(median(v)),
        ms(*lo),
        ms(*hi)
    )
}

fn ratio_line(name: &str, a: &[Duration], b: &[Duration]) -> String {
    let (m, lo, hi) = ratios(a, b);
    format!("  {name:<46} {m:>6.2}x   (range {lo:.2}–{hi:.2})")
}

fn copy_dir(from: &Path, to: &Path) {
    let o = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(o.status.success(), "cp -a {}", from.display());
}

/// A fresh work directory: the package cache linked in, the PKI copied.
fn fresh(dir: &Path, warm: &Path, pki: &Path) {
    std::fs::create_dir_all(dir.join("cache")).unwrap();
    std::os::unix::fs::symlink(warm.join("debs"), dir.join("cache/debs")).unwrap();
    copy_dir(pki, &dir.join("pki"));
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Every image of the output: (host, component) → its layers' digests and media types, in order.
type Images = BTreeMap<(String, String), Vec<(String, String)>>;

fn images(out: &Path) -> Images {
    let mut all = Images::new();
    let digests = std::fs::read_to_string(out.join("digests.txt")).unwrap();
    for l in digests.lines() {
        let mut parts = l.split_whitespace();
        let (host, reference, digest) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let blobs = out.join(host).join("oci/blobs/sha256");
        let m = read_json(&blobs.join(digest.trim_start_matches("sha256:")));
        let layers = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["digest"].as_str().unwrap().to_owned(),
                    l["mediaType"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let c = reference.trim_start_matches("infra-").to_owned();
        all.insert((host.to_owned(), c), layers);
    }
    all
}

/// Writes the uncompressed tar of layer `digest` (from `store`) to `to`; its size.
fn untar(store: &Path, digest: &str, media_type: &str, to: &Path) -> u64 {
    let blob = store.join(digest.trim_start_matches("sha256:"));
    let mut tar = Vec::new();
    if media_type.ends_with("+zstd") {
        let o = Command::new("zstd")
            .args(["-d", "-q", "-c"])
            .arg(&blob)
            .output()
            .unwrap();
        assert!(o.status.success(), "zstd -d {}", blob.display());
        tar = o.stdout;
    } else {
        flate2::read::GzDecoder::new(std::fs::File::open(&blob).unwrap())
            .read_to_end(&mut tar)
            .unwrap();
    }
    std::fs::write(to, &tar).unwrap();
    tar.len() as u64
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_infragen");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lock = std::env::var_os("INFRAGEN_BENCH_LOCK")
        .map_or_else(|| root.join("infragen.lock"), PathBuf::from);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let text = include_str!("../profiles/three-node.yml");
    assert!(text.contains("vmetrics_scrape_interval: 10s"));
    let profile = t.join("pigsty.yml");
    std::fs::write(&profile, text).unwrap();

    // Warm the package cache (downloads what is missing) and make one PKI.
    let warm = std::env::var_os("XDG_CACHE_HOME")
        .filter(|x| !x.is_empty())
        .map_or_else(
            || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"),
            PathBuf::from,
        )
        .join("infragen");
    let mut c = Command::new(bin);
    c.args(["build", "-q", "--profile"])
        .arg(&profile)
        .arg("--out")
        .arg(t.join("prime/out"))
        .arg("--cache")
        .arg(&warm)
        .arg("--pki")
        .arg(t.join("pki"))
        .arg("--lock")
        .arg(&lock);
    run(&mut c, "priming build");
    let has_zstd = String::from_utf8_lossy(
        &Command::new(bin)
            .args(["build", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .contains("--compression");

    let mut report = String::new();
    let _ = writeln!(
        report,
        "machine: {cores} cores; load average before: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    rebuilds(bin, t, &warm, &lock, &mut report);
    cold(bin, t, &warm, &lock, cores, has_zstd, &mut report);
    let _ = writeln!(
        report,
        "load average after: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    print!("{report}");
}

fn rebuilds(bin: &str, t: &Path, warm: &Path, lock: &Path, report: &mut String) {
    let rounds = env_usize("BENCH_REBUILDS", 15);
    let dir = t.join("rebuild");
    fresh(&dir, warm, &t.join("pki"));
    let profile = dir.join("pigsty.yml");
    let text = include_str!("../profiles/three-node.yml");
    std::fs::write(&profile, text).unwrap();
    run(&mut build_cmd(bin, &profile, &dir, lock), "first build");
    let out = dir.join("out");
    let files = walkdir::WalkDir::new(&out).into_iter().count();
    let (mut one, mut none, mut start, mut walked) = (vec![], vec![], vec![], vec![]);
    for i in 0..rounds {
        let changed = text.replace(
            "vmetrics_scrape_interval: 10s",
            &format!("vmetrics_scrape_interval: {}s", 20 + i),
        );
        std::fs::write(&profile, changed).unwrap();
        one.push(run(
            &mut build_cmd(bin, &profile, &dir, lock),
            "one-parameter rebuild",
        ));
        none.push(run(
            &mut build_cmd(bin, &profile, &dir, lock),
            "no-change rebuild",
        ));
        start.push(run(
            Command::new(bin).arg("--version"),
            "infragen --version",
        ));
        walked.push(run(
            Command::new("find").arg(&out).args(["-printf", "%s %m\\n"]),
            "find",
        ));
    }
    let _ = writeln!(
        report,
        "\nrebuilds of three-node ({files} entries in out/), {rounds} rounds interleaved:"
    );
    for l in [
        line("A: no-change rebuild", &none),
        line("B: one-parameter rebuild (6 layers built)", &one),
        line("F1: floor, `infragen --version`", &start),
        line("F2: floor, `find out -printf` (stat each)", &walked),
        ratio_line("A/F1", &none, &start),
        ratio_line("A/F2", &none, &walked),
        ratio_line("B/F1", &one, &start),
        ratio_line("B/A", &one, &none),
    ] {
        let _ = writeln!(report, "{l}");
    }
    let _ = writeln!(
        report,
        "  acceptance: A median <= 30 ms: {}; B median <= 60 ms: {}",
        ms(median(&none)) <= 30.0,
        ms(median(&one)) <= 60.0
    );
}

/// The inputs of the floors and the peer, prepared from a first cold build: the distinct layer
/// tars, the `.deb`s of each component, and each image's own two layers as tars.
struct Inputs {
    tars: PathBuf,
    tar_bytes: u64,
    tar_count: usize,
    /// component → its `.deb`s, in the lock's order.
    debs: BTreeMap<String, Vec<PathBuf>>,
    /// (host, component) → its recipe and config layer tars.
    own: BTreeMap<(String, String), [PathBuf; 2]>,
}

fn inputs(t: &Path, built: &Path, warm: &Path, lock: &Path) -> Inputs {
    let out = built.join("out");
    let store = built.join("cache/store/blobs/sha256");
    let all = images(&out);
    let tars = t.join("tars");
    std::fs::create_dir_all(&tars).unwrap();
    let mut distinct = BTreeSet::new();
    let mut tar_bytes = 0;
    let mut own = BTreeMap::new();
    for ((host, c), layers) in &all {
        for (digest, media) in layers {
            if distinct.insert(digest.clone()) {
                let name = tars.join(format!("{}.tar", &digest[7..19]));
                tar_bytes += untar(&store, digest, media, &name);
            }
        }
        let n = layers.len();
        let mut pair = Vec::new();
        for (k, (digest, media)) in layers[n - 2..].iter().enumerate() {
            let p = t.join(format!("own-{host}-{c}-{k}.tar"));
            untar(&store, digest, media, &p);
            pair.push(p);
        }
        own.insert(
            (host.clone(), c.clone()),
            [pair[0].clone(), pair[1].clone()],
        );
    }
    let lock = read_json(lock);
    let mut debs = BTreeMap::new();
    for (_, c) in all.keys() {
        let list: Vec<PathBuf> = lock["images"][c.as_str()]["packages"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        warm.join("debs")
                            .join(format!("{}.deb", p["sha256"].as_str().unwrap()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for d in &list {
            assert!(d.is_file(), "{} is not in the package cache", d.display());
        }
        debs.insert(c.clone(), list);
    }
    Inputs {
        tars,
        tar_bytes,
        tar_count: distinct.len(),
        debs,
        own,
    }
}

/// The dpkg-deb + umoci pipeline, as a shell script building every image into `layout`.
fn umoci_script(i: &Inputs, layout: &Path) -> String {
    let q = |p: &Path| format!("'{}'", p.display());
    let mut s = format!(
        "set -e\numoci init --layout {l}\nT=$(mktemp -d)\n",
        l = q(layout)
    );
    for (c, debs) in &i.debs {
        let _ = writeln!(s, "umoci new --image {}:base-{c}", q(layout));
        for d in debs {
            let _ = writeln!(
                s,
                "dpkg-deb --fsys-tarfile {} > \"$T/l.tar\" && umoci raw add-layer --image {}:base-{c} \"$T/l.tar\"",
                q(d),
                q(layout)
            );
        }
        for ((host, c2), [recipe, config]) in &i.own {
            if c2 != c {
                continue;
            }
            let tag = format!("{}:{host}-{c}", q(layout));
            let _ = writeln!(
                s,
                "umoci tag --image {}:base-{c} {host}-{c}\numoci raw add-layer --image {tag} {}\numoci raw add-layer --image {tag} {}",
                q(layout),
                q(recipe),
                q(config)
            );
        }
    }
    s.push_str("rm -rf \"$T\"\n");
    s
}

#[allow(clippy::too_many_lines)] // one scenario list, printed in order
fn cold(
    bin: &str,
    t: &Path,
    warm: &Path,
    lock: &Path,
    cores: usize,
    has_zstd: bool,
    report: &mut String,
) {
    let rounds = env_usize("BENCH_ROUNDS", 3);
    let first = t.join("cold-first");
    fresh(&first, warm, &t.join("pki"));
    let profile = t.join("pigsty.yml");
    run(&mut build_cmd(bin, &profile, &first, lock), "cold build");
    let inp = inputs(t, &first, warm, lock);
    let tars = inp.tars.display().to_string();
    let floor = |compress: &str| {
        format!("for f in '{tars}'/*.tar; do sha256sum < \"$f\" >/dev/null; {compress} < \"$f\" | sha256sum >/dev/null; done")
    };
    let gzip = floor("gzip -6 -n -c");
    let pigz = floor(&format!("pigz -6 -n -p {cores} -c"));
    let zstd = floor(&format!("zstd -3 -q -T{cores} -c"));
    let distinct_debs: BTreeSet<&PathBuf> = inp.debs.values().flatten().collect();
    let xz: String = distinct_debs
        .iter()
        .map(|d| format!("dpkg-deb --fsys-tarfile '{}' >/dev/null\n", d.display()))
        .collect();
    let (mut a, mut az, mut fg, mut fp, mut fz, mut fx, mut pu) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for r in 0..rounds {
        let d = t.join(format!("cold-{r}"));
        fresh(&d, warm, &t.join("pki"));
        a.push(run(&mut build_cmd(bin, &profile, &d, lock), "cold build"));
        if has_zstd {
            let d = t.join(format!("cold-zstd-{r}"));
            fresh(&d, warm, &t.join("pki"));
            let mut c = build_cmd(bin, &profile, &d, lock);
            c.args(["--compression", "zstd"]);
            az.push(run(&mut c, "cold build, zstd"));
        }
        fg.push(sh(&gzip, "gzip floor"));
        fp.push(sh(&pigz, "pigz floor"));
        fz.push(sh(&zstd, "zstd floor"));
        fx.push(sh(&xz, "xz decode floor"));
        let layout = t.join(format!("umoci-{r}"));
        pu.push(sh(
            &umoci_script(&inp, &layout),
            "dpkg-deb + umoci pipeline",
        ));
        // Keep the disk from filling: each side's output is measured, then dropped.
        let _ = std::fs::remove_dir_all(&layout);
        let _ = std::fs::remove_dir_all(t.join(format!("cold-{r}")));
        let _ = std::fs::remove_dir_all(t.join(format!("cold-zstd-{r}")));
    }
    let images = inp.own.len();
    let debs = distinct_debs.len();
    let _ = writeln!(
        report,
        "\ncold builds of three-node ({images} images, {} distinct layers, {:.1} MiB of tar; {debs} distinct .debs), warm package cache, {rounds} rounds interleaved:",
        inp.tar_count,
        mib(inp.tar_bytes)
    );
    let zstd_floor: Vec<Duration> = fz.iter().zip(&fx).map(|(z, x)| *z + *x).collect();
    let mut lines = vec![
        line("A: infragen build (gzip)", &a),
        line("F1: gzip -6 + sha256, one core", &fg),
        line(&format!("F2: pigz -6 -p {cores} + sha256"), &fp),
        line(&format!("F3: zstd -3 -T{cores} + sha256"), &fz),
        line("F4: xz decode of the .debs (dpkg-deb)", &fx),
        line("P: dpkg-deb + umoci raw add-layer pipeline", &pu),
        ratio_line("A/F1 (acceptance: <= 0.7)", &a, &fg),
        ratio_line("A/F2", &a, &fp),
        ratio_line("A/F3", &a, &fz),
        ratio_line("A/P (acceptance: < 1)", &a, &pu),
    ];
    if has_zstd {
        lines.insert(1, line("A-zstd: infragen build --compression zstd", &az));
        lines.push(ratio_line(
            "A-zstd/(F3+F4) (acceptance: <= 2)",
            &az,
            &zstd_floor,
        ));
    } else {
        lines.push("  A-zstd: not measured, this binary has no `--compression`".to_owned());
    }
    for l in lines {
        let _ = writeln!(report, "{l}");
    }
}
