//! SBOMs: every image of a build has an SPDX 2.3 document that the SPDX project's own validator
//! (`pyspdxtools`, `spdx-tools` on `PyPI`; `.ci/run` installs it) accepts, and that lists exactly the
//! packages in the image's layers: the lock's closure for the image, in order, each with the
//! digest of the layer it became, the layers above them being infragen's own (recipe, config).
//! Each listed package is what `dpkg-deb` (the real program) says its `.deb` is (`Package`,
//! `Version`, `Architecture`), the `.deb` hashes to the listed sha256, and the layer it names
//! holds that `.deb`'s files.

mod common;

use common::ok;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn pyspdxtools(file: &Path) -> std::process::Output {
    Command::new(std::env::var_os("INFRAGEN_PYSPDXTOOLS").unwrap_or_else(|| "pyspdxtools".into()))
        .arg("-i")
        .arg(file)
        .output()
        .expect("pyspdxtools (python3 -m venv v && v/bin/pip install spdx-tools; see .ci/run)")
}

/// `dpkg-deb`'s answer (stdout) to `dpkg-deb <option> <deb> <fields>`; panics with its stderr
/// when it fails.
fn dpkg_deb(option: &str, deb: &Path, fields: &[&str]) -> Vec<u8> {
    let o = Command::new("dpkg-deb")
        .arg(option)
        .arg(deb)
        .args(fields)
        .output()
        .expect("dpkg-deb (Debian package `dpkg`)");
    assert!(
        o.status.success(),
        "dpkg-deb {option} {}: {}",
        deb.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// What `dpkg-deb` says the `.deb` is: its `Package`, `Version` and `Architecture`.
fn dpkg_identity(deb: &Path) -> [String; 3] {
    ["Package", "Version", "Architecture"].map(|field| {
        let out = dpkg_deb("--field", deb, &[field]);
        String::from_utf8(out).unwrap().trim_end().to_owned()
    })
}

/// The regular files of a tar stream, hard links resolved: path without `./` → size.
fn tar_sizes(tar: impl std::io::Read) -> BTreeMap<String, u64> {
    let mut sizes = BTreeMap::new();
    let mut links = Vec::new();
    let plain = |p: &str| p.trim_start_matches("./").to_owned();
    for e in tar::Archive::new(tar).entries().unwrap() {
        let mut e = e.unwrap();
        let path = plain(&e.path().unwrap().to_string_lossy());
        match e.header().entry_type() {
            tar::EntryType::Regular => {
                let n = std::io::copy(&mut e, &mut std::io::sink()).unwrap();
                sizes.insert(path, n);
            }
            tar::EntryType::Link => {
                let target = plain(&e.link_name().unwrap().unwrap().to_string_lossy());
                links.push((path, target));
            }
            _ => {}
        }
    }
    for (path, target) in links {
        let n = sizes[&target];
        sizes.insert(path, n);
    }
    sizes
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn every_image_has_a_valid_sbom_listing_exactly_its_packages() {
    common::tier::binary(common::tier::Tier::Integration, "tests/sbom.rs");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = common::infragen()
        .args(["build", "--profile", "single-node", "--out"])
        .arg(&out)
        .arg("--lock")
        .arg(common::lock())
        .arg("--pki")
        .arg(dir.path().join("pki"))
        .output()
        .unwrap();
    ok(&o, "build");
    let lock = json(common::lock());
    let bundle = out.join("10.10.10.10");
    let manifest = json(&bundle.join("manifest.json"));
    let (mut checked, mut debs, mut files) = (0, 0, 0);
    for (c, m) in manifest["components"].as_object().unwrap() {
        let file = bundle.join(format!("sbom/infra-{c}.spdx.json"));
        let o = pyspdxtools(&file);
        assert!(
            o.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            manifest["files"]
                .as_object()
                .is_some_and(|f| f.contains_key(&format!("sbom/infra-{c}.spdx.json"))),
            "the manifest lists the SBOM of {c}"
        );
        let doc = json(&file);
        let packages = doc["packages"].as_array().unwrap();
        assert_eq!(packages[0]["versionInfo"], m["image"], "{c}: the image");
        // the lock's closure, in order, with exact versions and .deb digests
        let locked = lock["images"][c.as_str()]["packages"].as_array().unwrap();
        let listed = &packages[1..];
        assert_eq!(listed.len(), locked.len(), "{c}: one entry per package");
        let image: Value = serde_json::from_slice(
            &fs::read(
                bundle
                    .join("oci/blobs/sha256")
                    .join(m["image"].as_str().unwrap().trim_start_matches("sha256:")),
            )
            .unwrap(),
        )
        .unwrap();
        let layers = image["layers"].as_array().unwrap();
        assert_eq!(
            layers.len(),
            locked.len() + 2,
            "{c}: a layer per package, then the recipe's and the config's"
        );
        for ((p, l), layer) in listed.iter().zip(locked).zip(layers) {
            assert_eq!(p["name"], l["name"]);
            assert_eq!(p["versionInfo"], l["version"]);
            assert_eq!(p["checksums"][0]["checksumValue"], l["sha256"]);
            let comment = p["comment"].as_str().unwrap();
            let digest = layer["digest"].as_str().unwrap();
            assert!(
                comment.ends_with(&format!("layer {digest}")),
                "{c}: {comment}"
            );
            // The .deb it was built from (the build's cache, by sha256) is what is listed.
            let sha = p["checksums"][0]["checksumValue"].as_str().unwrap();
            let deb = common::test_cache_home()
                .join("infragen/debs")
                .join(format!("{sha}.deb"));
            let bytes = fs::read(&deb).unwrap_or_else(|e| panic!("{}: {e}", deb.display()));
            assert_eq!(infragen::digest::sha256_hex(&bytes), sha, "{c}");
            let [name, version, arch] = dpkg_identity(&deb);
            assert_eq!(p["name"], name.as_str(), "{c}: dpkg-deb's Package");
            assert_eq!(p["versionInfo"], version.as_str(), "{c}: {name}");
            let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap();
            assert!(purl.ends_with(&format!("?arch={arch}")), "{c}: {purl}");
            // Its layer holds the .deb's files (those the recipe keeps), at their sizes.
            let in_deb = tar_sizes(&dpkg_deb("--fsys-tarfile", &deb, &[])[..]);
            let blob = fs::read(bundle.join("oci/blobs/sha256").join(&digest[7..])).unwrap();
            let mut unzipped = Vec::new();
            flate2::read::GzDecoder::new(&blob[..])
                .read_to_end(&mut unzipped)
                .unwrap();
            for (path, size) in tar_sizes(&unzipped[..]) {
                assert_eq!(
                    in_deb.get(&path),
                    Some(&size),
                    "{c}: `{path}` of {name}'s layer"
                );
                files += 1;
            }
            debs += 1;
        }
        checked += 1;
    }
    assert!(checked >= 7, "{checked} images");
    assert!(
        debs >= 30 && files >= 100,
        "{debs} packages, {files} files compared"
    );

    // The validator can fail: a document with a malformed id is refused.
    let file = bundle.join("sbom/infra-nginx.spdx.json");
    let mut doc = json(&file);
    doc["packages"][1]["SPDXID"] = Value::from("not an id");
    let bad = dir.path().join("bad.spdx.json");
    fs::write(&bad, serde_json::to_vec(&doc).unwrap()).unwrap();
    assert!(!pyspdxtools(&bad).status.success(), "a broken SBOM passed");
}
