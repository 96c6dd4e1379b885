//! Identity end to end, and bounded dates (issue 15), on the packages the tests make
//! (`tests/common/hermetic.rs`: no network, no tool, so the fast tier).
//!
//! - A lock entry that carries another package's file (its sha256, size and pool path, as a
//!   lying Packages index would give it), a wrong size or a wrong version is refused before any
//!   layer is built, naming the entry and what the `.deb` says; nothing is written. With a warm
//!   cache too: a cached layer is held to the entry that asks for it.
//! - Every SBOM lists each package as its `.deb` describes itself: the test reads each `.deb`'s
//!   control file itself and checks that the layer the SBOM names holds that `.deb`'s files.
//! - `source_date_epoch` past 9999-12-31T23:59:59Z (in the lock or `$SOURCE_DATE_EPOCH`) is
//!   refused naming where it came from; the last allowed instant builds, and every date in the
//!   images and SBOMs is that instant in valid RFC 3339.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

/// The made repository and its lock, once for every test here.
fn hermetic() -> &'static common::hermetic::Repo {
    static REPO: std::sync::OnceLock<common::hermetic::Repo> = std::sync::OnceLock::new();
    REPO.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("infragen-identity-")
            .tempdir()
            .expect("temp dir")
            .keep();
        common::hermetic::repo(&dir)
    })
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .expect("json")
}

/// The made lock with `change` applied, written into `dir`.
fn lock_with(dir: &Path, change: impl FnOnce(&mut Value)) -> PathBuf {
    let mut lock = json(&hermetic().lock);
    change(&mut lock);
    let path = dir.join("infragen.lock");
    fs::write(&path, serde_json::to_vec_pretty(&lock).unwrap()).unwrap();
    path
}

/// The index of package `name` in image `image`'s closure, and the entry.
fn entry<'a>(lock: &'a mut Value, image: &str, name: &str) -> (usize, &'a mut Value) {
    lock["images"][image]["packages"]
        .as_array_mut()
        .expect("packages")
        .iter_mut()
        .enumerate()
        .find(|(_, p)| p["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` in image `{image}`"))
}

/// Builds our meta-style inventory from the made packages with `lock` into `out`, with the
/// cache `cache` and the committed throwaway PKI; `SOURCE_DATE_EPOCH` as given (unset by
/// default). Only the made repository serves the packages (a proxy that goes nowhere for the
/// rest).
fn build(lock: &Path, out: &Path, cache: &Path, epoch: Option<&str>) -> Output {
    let pki = out.with_file_name("pki");
    if !pki.exists() {
        common::pki::copy(&common::pki::committed(), &pki);
    }
    let mut cmd = common::infragen();
    cmd.args(["build", "--profile"])
        .arg(common::root().join("tests/fixtures/pigsty/meta.yml"))
        .arg("--out")
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .arg("--lock")
        .arg(lock)
        .arg("--pki")
        .arg(&pki)
        .arg("--repo")
        .arg(&hermetic().dir)
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9")
        .env_remove("SOURCE_DATE_EPOCH");
    if let Some(e) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", e);
    }
    cmd.output().expect("run infragen")
}

/// Every file below `dir` (relative paths), none when it does not exist.
fn files(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

/// Asserts that a build failed with one `error:` naming each of `parts`, and wrote nothing.
fn refused_naming(o: &Output, out: &Path, parts: &[&str]) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the build passed:\n{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for part in parts {
        assert!(stderr.contains(part), "`{part}` not in:\n{stderr}");
    }
    assert!(!out.exists(), "{} was written", out.display());
}

/// Asserts that a build failed with exactly `message` (the `error:` line and its hint) and
/// wrote nothing: no output directory, no staging directory beside it.
fn refused(o: &Output, out: &Path, message: &str) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the build passed:\n{stderr}");
    assert_eq!(stderr.trim_end(), format!("error: {message}"));
    assert!(!out.exists(), "{} was written", out.display());
    let parent = out.parent().unwrap();
    let left: Vec<_> = fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".infragen-build-"))
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
}

const HINT: &str = "hint: the lock (or the repository index it was resolved from) names another file under this package; run `infragen lock` and review the diff";

#[test]
fn a_lock_entry_carrying_another_packages_file_is_refused_before_any_layer() {
    let dir = tempfile::tempdir().unwrap();
    let made = json(&hermetic().lock);
    let lib = made["images"]["nginx"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "libinfragen-test0")
        .expect("the made library in nginx's closure")
        .clone();
    let mut at = 0;
    // What a Packages stanza for nginx pointing at the library's file gives: its pool path,
    // size and sha256 under nginx's name and version.
    let lock = lock_with(dir.path(), |l| {
        let (i, nginx) = entry(l, "nginx", "nginx");
        at = i;
        for field in ["filename", "size", "sha256"] {
            nginx[field] = lib[field].clone();
        }
    });
    let message = format!(
        "{}: `images.nginx.packages[{at}]` (package `nginx` 1.0-1 amd64) is not what its .deb says: its control file says Package `libinfragen-test0`, not `nginx`\n{HINT}",
        lock.display()
    );

    // An empty cache: every .deb is read and held to its entry before any layer is built.
    let cache = dir.path().join("cold");
    let out = dir.path().join("out");
    refused(&build(&lock, &out, &cache, None), &out, &message);
    assert_eq!(
        files(&cache.join("layers")),
        Vec::<String>::new(),
        "layers indexed"
    );
    assert_eq!(
        files(&cache.join("store/blobs")),
        Vec::<String>::new(),
        "blobs stored"
    );

    // A warm cache, where the library's layer is already built under the same recipe: it is
    // not reused under nginx's name.
    let warm = dir.path().join("warm");
    let honest = dir.path().join("honest/out");
    fs::create_dir_all(honest.parent().unwrap()).unwrap();
    common::ok(
        &build(&hermetic().lock, &honest, &warm, None),
        "the made lock",
    );
    let indexed = files(&warm.join("layers"));
    refused(&build(&lock, &out, &warm, None), &out, &message);
    assert_eq!(files(&warm.join("layers")), indexed, "a layer was built");

    // `repo sync` holds every file to the entries naming it too: the local repository is not
    // completed, and no Packages index is written.
    let sync = |lock: &Path, repo: &Path| {
        common::infragen()
            .args(["repo", "sync", "--dir"])
            .arg(repo)
            .arg("--lock")
            .arg(lock)
            .arg("--cache")
            .arg(dir.path().join("sync-cache"))
            .arg("--repo")
            .arg(&hermetic().dir)
            .env("http_proxy", "http://127.0.0.1:9")
            .env("https_proxy", "http://127.0.0.1:9")
            .output()
            .unwrap()
    };
    let honest = dir.path().join("www-honest");
    common::ok(
        &sync(&hermetic().lock, &honest),
        "repo sync of the made lock",
    );
    assert!(honest.join("repo_complete").is_file());
    let repo = dir.path().join("www");
    let o = sync(&lock, &repo);
    assert!(!o.status.success(), "repo sync passed");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim_end(),
        format!("error: {message}")
    );
    assert!(!repo.join("repo_complete").exists());
    assert!(!repo.join("Packages").exists());
}

/// A change to a lock entry.
type Change = fn(&mut Value);

#[test]
fn a_wrong_size_or_version_in_the_lock_is_refused_cold_and_warm() {
    let dir = tempfile::tempdir().unwrap();
    let warm = dir.path().join("warm");
    let honest = dir.path().join("honest/out");
    fs::create_dir_all(honest.parent().unwrap()).unwrap();
    common::ok(
        &build(&hermetic().lock, &honest, &warm, None),
        "the made lock",
    );
    let cases: [(&str, Change, &str, &str); 3] = [
        (
            "size",
            |p| p["size"] = Value::from(p["size"].as_u64().unwrap() + 1),
            "1.0-1 amd64",
            "it is {size} bytes, not {size+1}",
        ),
        (
            "version",
            |p| p["version"] = Value::from("1.0-2"),
            "1.0-2 amd64",
            "its control file says Version `1.0-1`, not `1.0-2`",
        ),
        (
            "architecture",
            |p| p["arch"] = Value::from("arm64"),
            "1.0-1 arm64",
            "its control file says Architecture `amd64`, not `arm64`",
        ),
    ];
    for (what, change, claimed, says) in cases {
        let case = dir.path().join(what);
        fs::create_dir_all(&case).unwrap();
        let (mut at, mut size) = (0, 0);
        let lock = lock_with(&case, |l| {
            let (i, dnsmasq) = entry(l, "dnsmasq", "dnsmasq-base");
            (at, size) = (i, dnsmasq["size"].as_u64().unwrap());
            change(dnsmasq);
        });
        let says = says
            .replace("{size+1}", &(size + 1).to_string())
            .replace("{size}", &size.to_string());
        let message = format!(
            "{}: `images.dnsmasq.packages[{at}]` (package `dnsmasq-base` {claimed}) is not what its .deb says: {says}\n{HINT}",
            lock.display()
        );
        let out = case.join("out");
        let cold = case.join("cache");
        // A wrong size is refused where the file is read (cold: the repository copy), naming
        // the package and both sizes, before the identity check; warm, by the identity check
        // of the cached layer.
        let check = |o: &Output| {
            if what == "size" {
                refused_naming(
                    o,
                    &out,
                    &[
                        "package `dnsmasq-base` 1.0-1",
                        &format!("{size} bytes"),
                        &(size + 1).to_string(),
                    ],
                );
            } else {
                refused(o, &out, &message);
            }
        };
        check(&build(&lock, &out, &cold, None));
        assert_eq!(files(&cold.join("layers")), Vec::<String>::new(), "{what}");
        let indexed = files(&warm.join("layers"));
        check(&build(&lock, &out, &warm, None));
        assert_eq!(files(&warm.join("layers")), indexed, "{what}: built");
    }
}

/// The members of an `ar` archive, read here (not by infragen's reader).
fn ar_members(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut rest = bytes.strip_prefix(b"!<arch>\n").expect("ar magic");
    let mut out = BTreeMap::new();
    while rest.len() >= 60 {
        let name = String::from_utf8_lossy(&rest[..16])
            .trim_end()
            .trim_end_matches('/')
            .to_owned();
        let size: usize = String::from_utf8_lossy(&rest[48..58])
            .trim()
            .parse()
            .expect("ar size");
        out.insert(name, rest[60..60 + size].to_vec());
        rest = rest.get(60 + size + (size & 1)..).unwrap_or_default();
    }
    out
}

/// Regular files of a tar archive, hard links included (path without `./` → content): which
/// of two linked paths holds the bytes is the archive writer's choice.
fn tar_files(tar: impl std::io::Read) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(tar);
    let mut out = BTreeMap::new();
    let mut links = Vec::new();
    let plain = |p: &str| p.trim_start_matches("./").to_owned();
    for e in archive.entries().expect("tar") {
        let mut e = e.expect("entry");
        let path = plain(&e.path().unwrap().to_string_lossy());
        match e.header().entry_type() {
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                out.insert(path, data);
            }
            tar::EntryType::Link => {
                let target = plain(&e.link_name().unwrap().unwrap().to_string_lossy());
                links.push((path, target));
            }
            _ => {}
        }
    }
    for (path, target) in links {
        let data = out[&target].clone();
        out.insert(path, data);
    }
    out
}

/// A made `.deb`'s control fields (uncompressed `control.tar`) and regular files.
fn made_deb(bytes: &[u8]) -> (BTreeMap<String, String>, BTreeMap<String, Vec<u8>>) {
    let members = ar_members(bytes);
    let control = tar_files(&members["control.tar"][..]);
    let fields = String::from_utf8(control["control"].clone())
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (fields, tar_files(&members["data.tar"][..]))
}

#[test]
fn every_sbom_lists_what_the_debs_in_its_layers_say() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    common::ok(
        &build(&hermetic().lock, &out, &dir.path().join("cache"), None),
        "build",
    );
    // Every made .deb by its sha256.
    let mut debs = BTreeMap::new();
    for e in fs::read_dir(&hermetic().dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "deb") {
            let bytes = fs::read(&path).unwrap();
            debs.insert(infragen::digest::sha256_hex(&bytes), bytes);
        }
    }
    let bundle = out.join("10.10.10.10");
    let manifest = json(&bundle.join("manifest.json"));
    let blob = |digest: &str| {
        fs::read(
            bundle
                .join("oci/blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let (mut listed, mut compared) = (0, 0);
    for (c, m) in manifest["components"].as_object().unwrap() {
        let doc = json(&bundle.join(format!("sbom/infra-{c}.spdx.json")));
        let image: Value = serde_json::from_slice(&blob(m["image"].as_str().unwrap())).unwrap();
        let layers = image["layers"].as_array().unwrap();
        let packages = &doc["packages"].as_array().unwrap()[1..];
        assert_eq!(packages.len() + 2, layers.len(), "{c}: a layer per package");
        for (p, layer) in packages.iter().zip(layers) {
            let sha = p["checksums"][0]["checksumValue"].as_str().unwrap();
            let bytes = debs
                .get(sha)
                .unwrap_or_else(|| panic!("{c}: {sha} is no made .deb"));
            let (control, data) = made_deb(bytes);
            assert_eq!(p["name"], control["Package"].as_str(), "{c}");
            assert_eq!(p["versionInfo"], control["Version"].as_str(), "{c}");
            let purl = format!(
                "pkg:deb/debian/{}@{}?arch={}",
                control["Package"],
                control["Version"].replace(':', "%3A").replace('+', "%2B"),
                control["Architecture"]
            );
            assert_eq!(p["externalRefs"][0]["referenceLocator"], purl.as_str());
            // The layer named is this image's layer at the package's place, and it holds this
            // .deb's files (those the recipe keeps), byte for byte.
            let digest = layer["digest"].as_str().unwrap();
            let comment = p["comment"].as_str().unwrap();
            assert!(comment.ends_with(&format!("; layer {digest}")), "{comment}");
            let held = tar_files(flate2::read::GzDecoder::new(&blob(digest)[..]));
            compared += held.len();
            for (path, content) in &held {
                assert_eq!(
                    data.get(path),
                    Some(content),
                    "{c}: `{path}` of the layer of {}",
                    control["Package"]
                );
            }
            listed += 1;
        }
    }
    assert!(listed >= 25, "{listed} packages listed");
    // what the made packages hold besides their (excluded) copyright files: the entrypoints,
    // the library and its links, `getent` and `kill`, in every image
    assert!(compared >= 30, "{compared} files compared");
}

#[test]
fn a_source_date_epoch_past_rfc3339_is_refused_naming_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cache = dir.path().join("cache");
    let last = "is after 9999-12-31T23:59:59Z (253402300799), the last instant RFC 3339 can write";
    for epoch in ["253402300800", "18446744073709551615"] {
        let lock = lock_with(dir.path(), |l| {
            l["source_date_epoch"] = Value::from(epoch.parse::<u64>().unwrap());
        });
        let message = format!(
            "{}: `source_date_epoch`: {epoch} {last}\nhint: run `infragen lock` (with `SOURCE_DATE_EPOCH` unset, or set to a time before then)",
            lock.display()
        );
        refused(&build(&lock, &out, &cache, None), &out, &message);
    }
    let digits = "is not a number of seconds since 1970-01-01T00:00:00Z (decimal digits only)";
    for (value, says) in [
        ("253402300800", format!("253402300800 {last}")),
        (
            "18446744073709551615",
            format!("18446744073709551615 {last}"),
        ),
        (
            "99999999999999999999999",
            format!("99999999999999999999999 {last}"),
        ),
        ("-1", format!("`-1` {digits}")),
        ("1e9", format!("`1e9` {digits}")),
        ("yesterday", format!("`yesterday` {digits}")),
    ] {
        let message = format!("`$SOURCE_DATE_EPOCH`: {says}");
        refused(
            &build(&hermetic().lock, &out, &cache, Some(value)),
            &out,
            &message,
        );
        // `infragen lock` refuses it too, before reading any index, and writes no lock.
        let lock = dir.path().join("new.lock");
        let o = common::infragen()
            .args(["lock", "--apt-dir"])
            .arg(&hermetic().apt)
            .arg("--lock")
            .arg(&lock)
            .env("SOURCE_DATE_EPOCH", value)
            .output()
            .unwrap();
        assert!(!o.status.success(), "lock with {value}");
        assert_eq!(
            String::from_utf8_lossy(&o.stderr).trim_end(),
            format!("error: {message}")
        );
        assert!(!lock.exists(), "a lock was written with {value}");
    }
    assert_eq!(files(&cache.join("layers")), Vec::<String>::new());
}

/// An RFC 3339 `date-time` (section 5.6) as infragen writes it, checked by the `time` crate's
/// parser and by its shape: four-digit year, `T`, `Z`.
fn rfc3339(what: &str, value: &Value) -> i64 {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {value} is not a string"));
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{what}: `{s}` is not RFC 3339: {e}"));
    assert_eq!(s.len(), 20, "{what}: {s}");
    t.unix_timestamp()
}

#[test]
fn the_last_allowed_epoch_gives_valid_rfc3339_dates_everywhere() {
    const LAST: i64 = 253_402_300_799;
    let dir = tempfile::tempdir().unwrap();
    let lock = lock_with(dir.path(), |l| l["source_date_epoch"] = Value::from(LAST));
    let out = dir.path().join("out");
    common::ok(
        &build(&lock, &out, &dir.path().join("cache"), None),
        "build at 9999-12-31T23:59:59Z",
    );
    let bundle = out.join("10.10.10.10");
    let blob = |digest: &str| {
        fs::read(
            bundle
                .join("oci/blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let manifest = json(&bundle.join("manifest.json"));
    let mut images = 0;
    for (c, m) in manifest["components"].as_object().unwrap() {
        let image: Value = serde_json::from_slice(&blob(m["image"].as_str().unwrap())).unwrap();
        let created = &image["annotations"]["org.opencontainers.image.created"];
        assert_eq!(rfc3339(&format!("{c}: annotation"), created), LAST);
        let config: Value =
            serde_json::from_slice(&blob(image["config"]["digest"].as_str().unwrap())).unwrap();
        assert_eq!(config["created"], "9999-12-31T23:59:59Z", "{c}");
        assert_eq!(rfc3339(&format!("{c}: config"), &config["created"]), LAST);
        for h in config["history"].as_array().unwrap() {
            assert_eq!(rfc3339(&format!("{c}: history"), &h["created"]), LAST);
        }
        let doc = json(&bundle.join(format!("sbom/infra-{c}.spdx.json")));
        let created = &doc["creationInfo"]["created"];
        assert_eq!(rfc3339(&format!("{c}: SBOM"), created), LAST);
        // Every tar entry of every layer carries the same instant as its mtime.
        for layer in image["layers"].as_array().unwrap() {
            let bytes = blob(layer["digest"].as_str().unwrap());
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
            for e in tar.entries().unwrap() {
                let e = e.unwrap();
                assert_eq!(e.header().mtime().unwrap(), LAST as u64, "{c}");
            }
        }
        images += 1;
    }
    assert_eq!(images, 8, "every Debian-sourced image");
}
