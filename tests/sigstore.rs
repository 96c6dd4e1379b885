//! Sigstore attachment signatures against real tools: skopeo signs with the key
//! `infragen key generate` writes and we verify what it wrote; we sign and skopeo's
//! `sigstoreSigned` policy verifies what we wrote, and refuses an unsigned image, another key's
//! signature and a signature moved onto another image — as our verification does.
//!
//! The skopeo is `$INFRAGEN_SKOPEO_SIGSTORE`, else `/opt/infragen-ci/skopeo/bin/skopeo` when it
//! exists (both what `.ci/skopeo-sigstore` installs: Debian 13's skopeo, whose sigstore code is
//! enabled, with its own libraries), else `skopeo` on `PATH`. Debian 12's skopeo 1.9.3 is built
//! with sigstore disabled ("Debian-local change: sigstore disabled", in both signing and policy
//! checks): against it, the parts that need skopeo's sigstore code print a loud SKIPPED line
//! naming `.ci/skopeo-sigstore` (they would otherwise fail, or pass vacuously since such a
//! skopeo refuses everything); our signing and verification through the real registry still run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::distribution::{oci_layout, tools_present, Distribution};
use infragen::manifest::Digest;
use infragen::sign::attach::{self, Identity};
use infragen::sign::{PublicKey, SigningKey};

const REPO: &str = "test/img";

/// Where `.ci/skopeo-sigstore` installs a sigstore-capable skopeo.
const CI_SKOPEO: &str = "/opt/infragen-ci/skopeo/bin/skopeo";

/// The skopeo these tests run: `$INFRAGEN_SKOPEO_SIGSTORE` (which must exist when set), else
/// [`CI_SKOPEO`] when it exists, else `skopeo` on `PATH`.
fn skopeo() -> PathBuf {
    if let Some(p) = std::env::var_os("INFRAGEN_SKOPEO_SIGSTORE").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "INFRAGEN_SKOPEO_SIGSTORE={} does not exist\nhint: run .ci/skopeo-sigstore",
            p.display()
        );
        return p;
    }
    if Path::new(CI_SKOPEO).is_file() {
        return CI_SKOPEO.into();
    }
    "skopeo".into()
}

fn tools(test: &str) -> bool {
    let mut needed = vec![("docker-registry", "docker-registry")];
    if skopeo() == Path::new("skopeo") {
        needed.push(("skopeo", "skopeo"));
    }
    tools_present(test, &needed)
}

/// What Debian's skopeo says instead of signing or verifying a sigstore signature.
const DISABLED: &str = "sigstore disabled";

fn skipped(what: &str) {
    common::tier::loud(&format!(
        "SKIPPED integration part ({what}): {} has sigstore disabled (Debian 12's build); \
         run .ci/skopeo-sigstore (installs Debian 13's skopeo into /opt/infragen-ci/skopeo) \
         or set INFRAGEN_SKOPEO_SIGSTORE to an upstream skopeo >= 1.9",
        skopeo().display()
    ));
}

/// A scratch directory with `registries.d` enabling attachments for `host`.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(host: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("registries.d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(
            d.join("infragen.yaml"),
            format!("docker:\n  {host}:\n    use-sigstore-attachments: true\n"),
        )
        .unwrap();
        // Pushes read a policy too: this one, never the machine's /etc/containers/policy.json.
        std::fs::write(
            dir.path().join("accept.json"),
            "{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}",
        )
        .unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn skopeo(&self, args: &[&str]) -> Output {
        Command::new(skopeo())
            .arg("--registries.d")
            .arg(self.path("registries.d"))
            .args(args)
            .output()
            .expect("running skopeo")
    }

    /// Pushes a distinct one-layer image to `docker://<host>/test/img:<tag>`, signed with
    /// `sign` (key, passphrase file) if given; false if this skopeo cannot sign.
    fn push(&self, host: &str, tag: &str, sign: Option<(&Path, &Path)>) -> bool {
        let layout = self.path(&format!("layout-{tag}"));
        oci_layout(&layout, tag);
        let src = format!("oci:{}:t", layout.display());
        let dst = format!("docker://{host}/{REPO}:{tag}");
        let accept = self.path("accept.json").display().to_string();
        let mut args = vec!["copy", "--dest-tls-verify=false", "--policy", &accept];
        let (k, p);
        if let Some((key, pass)) = sign {
            (k, p) = (key.display().to_string(), pass.display().to_string());
            args.extend([
                "--sign-by-sigstore-private-key",
                &k,
                "--sign-passphrase-file",
                &p,
            ]);
        }
        args.extend([src.as_str(), dst.as_str()]);
        let out = self.skopeo(&args);
        if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains(DISABLED) {
            return false;
        }
        common::ok(&out, &format!("skopeo copy to {dst}"));
        true
    }

    /// `skopeo copy` of `tag` out of the registry under a policy trusting only `key`.
    fn pull(&self, host: &str, tag: &str, key: &Path) -> Output {
        let policy = self.path("policy.json");
        std::fs::write(
            &policy,
            format!(
                "{{\"default\":[{{\"type\":\"reject\"}}],\"transports\":{{\"docker\":{{\"{host}\":\
                 [{{\"type\":\"sigstoreSigned\",\"keyPath\":\"{}\",\"signedIdentity\":\
                 {{\"type\":\"matchRepository\"}}}}]}}}}}}",
                key.display()
            ),
        )
        .unwrap();
        let out = self.path(&format!("pulled-{tag}"));
        let _ = std::fs::remove_dir_all(&out);
        self.skopeo(&[
            "copy",
            "--src-tls-verify=false",
            // The policy is checked on the source either way; an OCI layout takes no signatures.
            "--remove-signatures",
            "--policy",
            policy.to_str().unwrap(),
            &format!("docker://{host}/{REPO}:{tag}"),
            &format!("oci:{}:t", out.display()),
        ])
    }
}

/// `infragen key generate --out DIR [--passphrase-file F]`: (sigstore key, public key).
fn generate(dir: &Path, pass: Option<&Path>) -> (PathBuf, PublicKey) {
    let mut cmd = common::infragen();
    cmd.args(["key", "generate", "--out"]).arg(dir);
    if let Some(p) = pass {
        cmd.arg("--passphrase-file").arg(p);
    }
    common::ok(&cmd.output().unwrap(), "infragen key generate");
    let public = PublicKey::from_pem(&std::fs::read_to_string(dir.join("infragen.pub")).unwrap());
    (dir.join("infragen.sigstore.key"), public.unwrap())
}

fn digest_of(reg: &Distribution, tag: &str) -> Digest {
    Digest::of(&reg.get_manifest(REPO, tag).expect("the image"))
}

fn verify(
    reg: &Distribution,
    tag: &str,
    trusted: &[PublicKey],
) -> anyhow::Result<attach::Verified> {
    let signed = digest_of(reg, tag);
    let Some(manifest) = reg.get_manifest(REPO, &attach::tag(&signed)) else {
        anyhow::bail!("not signed: no attachment `{}`", attach::tag(&signed));
    };
    let identity = Identity::MatchRepository(format!("{}/{REPO}:{tag}", reg.host));
    attach::verify_attachment(
        &manifest,
        |d| reg.get_blob(REPO, d.as_str()),
        &signed,
        &identity,
        trusted,
    )
}

fn refused(r: anyhow::Result<attach::Verified>) -> String {
    format!("{:#}", r.expect_err("refused"))
}

#[test]
fn skopeo_signs_with_our_encrypted_key_and_we_verify_its_attachment() {
    common::tier::binary(common::tier::Tier::Integration, "tests/sigstore.rs");
    if !tools("skopeo_signs_with_our_encrypted_key_and_we_verify_its_attachment") {
        return;
    }
    let reg = Distribution::start(1);
    let s = Scratch::new(&reg.host);
    let pass = s.path("pass");
    std::fs::write(&pass, "correct horse\n").unwrap();
    let (key, public) = generate(&s.path("keys"), Some(&pass));
    // A key written without --passphrase-file opens with an empty passphrase file.
    let empty = s.path("empty");
    std::fs::write(&empty, "").unwrap();
    let (bare_key, bare_public) = generate(&s.path("bare"), None);
    let other = SigningKey::generate().unwrap().1.public;

    if !s.push(&reg.host, "1", Some((&key, &pass))) {
        skipped("skopeo signing with our key");
        return;
    }
    assert!(s.push(&reg.host, "2", Some((&bare_key, &empty))));

    let v = verify(&reg, "1", std::slice::from_ref(&public)).unwrap();
    assert_eq!(
        (v.key, v.docker_reference),
        (public.id.clone(), format!("{}/{REPO}:1", reg.host))
    );
    assert_eq!(
        verify(&reg, "2", std::slice::from_ref(&bare_public))
            .unwrap()
            .key,
        bare_public.id
    );
    assert_eq!(
        refused(verify(&reg, "1", std::slice::from_ref(&other))),
        "the signature is refused: layer 1: the signature verifies with none of the 1 trusted keys"
    );

    // What skopeo wrote has the shape we write: the config, the manifest (less our key
    // annotation) and the payload's fields.
    let signed = digest_of(&reg, "1");
    let m = reg.get_manifest(REPO, &attach::tag(&signed)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&m).unwrap();
    let layer = &v["layers"][0];
    let (payload_digest, sig) = (
        layer["digest"].as_str().unwrap(),
        &layer["annotations"][attach::SIGNATURE_ANNOTATION],
    );
    let config = reg
        .get_blob(REPO, v["config"]["digest"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(config.clone()).unwrap(),
        format!("{{\"architecture\":\"\",\"os\":\"\",\"config\":{{}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"{payload_digest}\"]}}}}")
    );
    let body = reg.get_blob(REPO, payload_digest).unwrap();
    assert_eq!(
        String::from_utf8(m).unwrap(),
        format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
             \"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{}\",\"size\":{}}},\
             \"layers\":[{{\"mediaType\":\"application/vnd.dev.cosign.simplesigning.v1+json\",\"digest\":\"{payload_digest}\",\
             \"size\":{},\"annotations\":{{\"dev.cosignproject.cosign/signature\":{sig}}}}}]}}",
            Digest::of(&config),
            config.len(),
            body.len()
        )
    );
    let p: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        p["critical"],
        serde_json::json!({
            "identity": {"docker-reference": format!("{}/{REPO}:1", reg.host)},
            "image": {"docker-manifest-digest": signed},
            "type": "cosign container image signature",
        })
    );
    assert!(p["optional"]["creator"]
        .as_str()
        .unwrap()
        .starts_with("containers/image "));
}

/// Signs `tag` with `key` by appending to its attachment, uploaded as a registry client would.
fn sign(reg: &Distribution, tag: &str, key: &SigningKey) {
    let signed = digest_of(reg, tag);
    let existing = reg.get_manifest(REPO, &attach::tag(&signed));
    let reference = format!("{}/{REPO}:{tag}", reg.host);
    let a = attach::sign_attachment(key, &reference, &signed, existing.as_deref()).unwrap();
    for (d, bytes) in &a.blobs {
        reg.put_blob(REPO, d.as_str(), bytes);
    }
    reg.put_manifest(REPO, &a.tag, a.media_type, &a.manifest);
}

#[test]
fn we_sign_and_skopeo_accepts_only_what_we_accept() {
    common::tier::binary(common::tier::Tier::Integration, "tests/sigstore.rs");
    if !tools("we_sign_and_skopeo_accepts_only_what_we_accept") {
        return;
    }
    let reg = Distribution::start(2);
    let s = Scratch::new(&reg.host);
    let key = SigningKey::generate().unwrap().1;
    let other = SigningKey::generate().unwrap().1;
    let key_path = s.path("our.pub");
    std::fs::write(&key_path, key.public.to_pem()).unwrap();
    let trusted = std::slice::from_ref(&key.public);
    for tag in ["1", "2", "3", "4", "5"] {
        assert!(s.push(&reg.host, tag, None));
    }
    // Signed by us: accepted by both (and whether this skopeo checks sigstore at all).
    sign(&reg, "1", &key);
    assert_eq!(verify(&reg, "1", trusted).unwrap().key, key.public.id);
    let out = s.pull(&reg.host, "1", &key_path);
    let skopeo = !String::from_utf8_lossy(&out.stderr).contains(DISABLED);
    if skopeo {
        common::ok(&out, "skopeo copy of a signed image");
    } else {
        skipped("skopeo's verification of our signatures");
    }
    // skopeo refuses `tag`, for the reason `says` (what skopeo 1.18's policy check says).
    let denied = |tag: &str, why: &str, says: &str| {
        if !skopeo {
            return;
        }
        let out = s.pull(&reg.host, tag, &key_path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "skopeo accepted {tag} ({why})");
        assert!(
            stderr.contains("Source image rejected") && stderr.contains(says),
            "skopeo refused {tag} ({why}) but not by its policy saying `{says}`: {stderr}"
        );
        eprintln!("skopeo refuses {tag} ({why}): {}", stderr.trim());
    };

    // Unsigned.
    assert!(refused(verify(&reg, "5", trusted)).starts_with("not signed"));
    denied("5", "unsigned", "no signature exists");

    // Signed by another key only.
    sign(&reg, "2", &other);
    denied("2", "another key", "signature verification failed");
    assert_eq!(
        refused(verify(&reg, "2", trusted)),
        format!(
            "the signature is refused: layer 1: signed by key {} (as the layer says), which is not \
             among the 1 trusted keys",
            other.public.id
        )
    );

    // Image 1's attachment put at image 3's signature tag.
    let one = reg
        .get_manifest(REPO, &attach::tag(&digest_of(&reg, "1")))
        .unwrap();
    let three = digest_of(&reg, "3");
    reg.put_manifest(
        REPO,
        &attach::tag(&three),
        attach::MANIFEST_MEDIA_TYPE,
        &one,
    );
    denied("3", "image 1's signature re-tagged", "does not match");
    let err = refused(verify(&reg, "3", trusted));
    assert!(
        err.ends_with(&format!("not this one ({three}): re-tagged or substituted")),
        "{err}"
    );

    // Another key's signature first, ours appended: both accept (skopeo appends the same way).
    sign(&reg, "4", &other);
    sign(&reg, "4", &key);
    assert_eq!(verify(&reg, "4", trusted).unwrap().layer, 1);
    if skopeo {
        let out = s.pull(&reg.host, "4", &key_path);
        common::ok(&out, "skopeo copy with two signatures");
    }
}

/// The attachment manifest of `tag`, parsed.
fn attachment(reg: &Distribution, tag: &str) -> serde_json::Value {
    let m = reg
        .get_manifest(REPO, &attach::tag(&digest_of(reg, tag)))
        .expect("an attachment");
    serde_json::from_slice(&m).unwrap()
}

#[test]
fn skopeo_and_we_append_to_each_others_attachments() {
    common::tier::binary(common::tier::Tier::Integration, "tests/sigstore.rs");
    if !tools("skopeo_and_we_append_to_each_others_attachments") {
        return;
    }
    let reg = Distribution::start(3);
    let s = Scratch::new(&reg.host);
    let empty = s.path("empty");
    std::fs::write(&empty, "").unwrap();
    let (skopeo_key, skopeo_public) = generate(&s.path("keys"), None);
    let ours = SigningKey::generate().unwrap().1;
    let (ours_pub, skopeo_pub) = (s.path("ours.pub"), s.path("keys/infragen.pub"));
    std::fs::write(&ours_pub, ours.public.to_pem()).unwrap();
    let both = [ours.public.clone(), skopeo_public.clone()];

    // Ours first, then skopeo signs the image again (a copy onto itself): it keeps our layer,
    // byte for byte, and appends its own.
    assert!(s.push(&reg.host, "1", None));
    sign(&reg, "1", &ours);
    let before = attachment(&reg, "1");
    let src = format!("docker://{}/{REPO}:1", reg.host);
    let accept = s.path("accept.json");
    let out = s.skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--policy",
        accept.to_str().unwrap(),
        "--sign-by-sigstore-private-key",
        skopeo_key.to_str().unwrap(),
        "--sign-passphrase-file",
        empty.to_str().unwrap(),
        &src,
        &src,
    ]);
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains(DISABLED) {
        skipped("skopeo appending to our attachment");
        return;
    }
    common::ok(
        &out,
        "skopeo copy --sign-by-sigstore-private-key onto itself",
    );
    let after = attachment(&reg, "1");
    assert_eq!(after["layers"].as_array().unwrap().len(), 2, "{after}");
    assert_eq!(after["layers"][0], before["layers"][0]);
    assert_eq!(
        after["layers"][0]["annotations"][attach::KEY_ANNOTATION],
        ours.public.id.as_str()
    );
    assert_eq!(verify(&reg, "1", &both[..1]).unwrap().layer, 0);
    assert_eq!(verify(&reg, "1", &both[1..]).unwrap().layer, 1);

    // skopeo first, then ours appended: skopeo's layer stays as skopeo wrote it.
    assert!(s.push(&reg.host, "2", Some((&skopeo_key, &empty))));
    let before = attachment(&reg, "2");
    sign(&reg, "2", &ours);
    let after = attachment(&reg, "2");
    assert_eq!(after["layers"].as_array().unwrap().len(), 2, "{after}");
    assert_eq!(after["layers"][0], before["layers"][0]);
    assert_eq!(verify(&reg, "2", &both[1..]).unwrap().layer, 0);
    assert_eq!(verify(&reg, "2", &both[..1]).unwrap().layer, 1);
    // The config names both layers, as containers/image writes it.
    for (tag, a) in [("1", attachment(&reg, "1")), ("2", after)] {
        let config = reg
            .get_blob(REPO, a["config"]["digest"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(config).unwrap(),
            format!(
                "{{\"architecture\":\"\",\"os\":\"\",\"config\":{{}},\"rootfs\":{{\"type\":\"layers\",\
                 \"diff_ids\":[{},{}]}}}}",
                a["layers"][0]["digest"], a["layers"][1]["digest"]
            ),
            "the config of {tag}'s attachment"
        );
    }

    // skopeo's policy accepts either key's signature in either attachment.
    for tag in ["1", "2"] {
        for key in [&ours_pub, &skopeo_pub] {
            let out = s.pull(&reg.host, tag, key);
            common::ok(
                &out,
                &format!("skopeo copy of {tag} trusting {}", key.display()),
            );
        }
    }
}

#[test]
fn we_sign_with_a_key_skopeo_generated_and_skopeo_verifies() {
    common::tier::binary(common::tier::Tier::Integration, "tests/sigstore.rs");
    if !tools("we_sign_with_a_key_skopeo_generated_and_skopeo_verifies") {
        return;
    }
    let reg = Distribution::start(4);
    let s = Scratch::new(&reg.host);
    for (tag, passphrase) in [("1", "correct horse\n"), ("2", "")] {
        let pass = s.path(&format!("pass-{tag}"));
        std::fs::write(&pass, passphrase.trim_end()).unwrap();
        let prefix = s.path(&format!("skopeo-{tag}"));
        let out = s.skopeo(&[
            "generate-sigstore-key",
            "--output-prefix",
            prefix.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Debian 12's skopeo has no `generate-sigstore-key --output-prefix` either.
        if !out.status.success() && (stderr.contains(DISABLED) || stderr.contains("unknown flag")) {
            skipped("skopeo generate-sigstore-key");
            return;
        }
        common::ok(&out, "skopeo generate-sigstore-key");
        let (private, public) = (
            prefix.with_extension("private"),
            prefix.with_extension("pub"),
        );
        let key = SigningKey::load_with(
            &private,
            Some(&infragen::sign::sealed::read_passphrase_file(&pass).unwrap()),
        )
        .unwrap_or_else(|e| panic!("the key skopeo generated: {e:#}"));
        let pem = PublicKey::from_pem(&std::fs::read_to_string(&public).unwrap()).unwrap();
        assert_eq!(key.public.id, pem.id);

        assert!(s.push(&reg.host, tag, None));
        sign(&reg, tag, &key);
        assert_eq!(
            verify(&reg, tag, std::slice::from_ref(&pem)).unwrap().key,
            pem.id
        );
        common::ok(
            &s.pull(&reg.host, tag, &public),
            "skopeo copy of an image we signed with skopeo's key",
        );
    }
}
