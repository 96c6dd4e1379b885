//! SBOMs: every image of a build has an SPDX 2.3 document that the SPDX project's own validator
//! (`pyspdxtools`, `spdx-tools` on `PyPI`; `.ci/run` installs it) accepts, and that lists exactly the
//! packages in the image's layers: the lock's closure for the image, in order, each with the
//! digest of the layer it became, the layers above them being infragen's own (recipe, config).

mod common;

use common::ok;

use std::fs;
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
    let mut checked = 0;
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
            assert!(
                comment.ends_with(&format!("layer {}", layer["digest"].as_str().unwrap())),
                "{c}: {comment}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 7, "{checked} images");

    // The validator can fail: a document with a malformed id is refused.
    let file = bundle.join("sbom/infra-nginx.spdx.json");
    let mut doc = json(&file);
    doc["packages"][1]["SPDXID"] = Value::from("not an id");
    let bad = dir.path().join("bad.spdx.json");
    fs::write(&bad, serde_json::to_vec(&doc).unwrap()).unwrap();
    assert!(!pyspdxtools(&bad).status.success(), "a broken SBOM passed");
}
