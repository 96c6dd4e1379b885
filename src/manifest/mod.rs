//! The bundle manifest: the contract between the build and a host, as one type.
//!
//! `build` writes it, `verify` and `activate` read it, and the signature covers its bytes.
//! Reading is strict: an unknown field, a missing one, a malformed digest, mode or id is an
//! error naming the field, never a default. Every value that becomes a host path is checked
//! here ([`Manifest::check`]), so nothing downstream trusts a string it did not type.

use std::collections::BTreeMap;
use std::path::{Component as PathComponent, Path};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Deserializer, Serialize};

pub use crate::digest::{is_hex64, Digest};

mod node;
pub use node::{HostFile, Node, NodeProbe, Place, When, MANAGED};

/// A state directory: host path, path in the root, owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// On the host.
    pub host: String,
    /// In the component's root.
    pub path: String,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Read-only for the component (nginx serves the web root, it does not write it).
    pub read_only: bool,
}

/// How a component is probed for health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Probe {
    /// `GET http://address/path` answers 2xx.
    Http {
        /// `ip:port`.
        address: String,
        /// Path.
        path: String,
    },
    /// A DNS query for `name` at `address` answers.
    Dns {
        /// `ip:port`.
        address: String,
        /// Name to resolve.
        name: String,
    },
    /// An NTP query at `address` answers.
    Ntp {
        /// `ip:port`.
        address: String,
    },
}

/// The manifest format this build writes for a bundle whose secrets are in clear (and reads).
pub const VERSION: u32 = 2;

/// The format of a bundle whose secrets are age files (`secrets/<c>/<name>.age`) encrypted to
/// [`Manifest::recipients`]. A host whose infragen reads only version 2 refuses it, rather than
/// installing ciphertext as credentials.
pub const VERSION_SEALED: u32 = 3;

/// An `Option` that must be present (as `null` when empty): serde would default a missing one.
fn required<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// File modes as octal strings (`"0644"`), so that a reader sees what they are.
mod octal {
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's `with` passes a reference
    pub fn serialize<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{mode:04o}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let s = String::deserialize(d)?;
        u32::from_str_radix(&s, 8)
            .ok()
            .filter(|m| s.len() == 4 && *m <= 0o777)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("`{s}` is not a file mode (0000 to 0777)"))
            })
    }
}

/// One file of the bundle: its digest, and the mode and owner it gets on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Content digest.
    pub digest: Digest,
    /// Permission bits on the host.
    #[serde(with = "octal")]
    pub mode: u32,
    /// Owner on the host.
    pub uid: u32,
    /// Group on the host.
    pub gid: u32,
}

/// The profile a bundle was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileRef {
    /// Its name: `builtin:<name>`, or `file` for a profile read from a file (never its path or
    /// file name: renaming a profile changes no digest).
    pub name: String,
    /// The digest of its text.
    pub digest: String,
}

/// A component's unit file per runtime (paths in the bundle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtimes {
    /// `units/infra-<c>.service`.
    pub unit: String,
    /// `nspawn/infra-<c>.nspawn`.
    pub nspawn: String,
    /// `portable/infra-<c>.service`.
    pub portable: String,
    /// `quadlet/infra-<c>.container`.
    pub podman: String,
}

impl Runtimes {
    /// The unit file for runtime `name` (`unit`, `nspawn`, `portable`, `podman`).
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            "unit" => Some(&self.unit),
            "nspawn" => Some(&self.nspawn),
            "portable" => Some(&self.portable),
            "podman" => Some(&self.podman),
            _ => None,
        }
    }
}

/// The user a component runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Name in the image.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
}

/// How a configuration change is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reload {
    /// The reload signal (`SIGHUP`), when the component has one (`null` otherwise: present).
    #[serde(deserialize_with = "required")]
    pub signal: Option<String>,
    /// `config` (reload on a configuration change) or `never`.
    pub on: String,
}

/// One component of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentEntry {
    /// The image manifest's digest.
    pub image: Digest,
    /// The image's reference in the bundle's OCI layout (`infra-<c>`).
    #[serde(rename = "ref")]
    pub reference: String,
    /// The root tree id (64 hex digits): every layer but the configuration layer, named by the
    /// sha256 of their `diff_id`s one per line (activation checks it before sharing the tree).
    pub root: String,
    /// The root tree's layers, in order.
    pub root_layers: Vec<Digest>,
    /// The configuration layer.
    pub config_layer: Digest,
    /// The configuration layer's `diff_id`.
    pub config: Digest,
    /// Configuration directories (`/etc/<x>`) bound from the live configuration.
    pub config_dirs: Vec<String>,
    /// The systemd unit name.
    pub unit: String,
    /// Unit files per runtime.
    pub runtimes: Runtimes,
    /// The user it runs as.
    pub user: User,
    /// State directories.
    pub data: Vec<Volume>,
    /// Secret file names (under `secrets/<c>/`).
    pub secrets: Vec<String>,
    /// Reload semantics.
    pub reload: Reload,
    /// Health probe (`null` when it has none: present all the same).
    #[serde(deserialize_with = "required")]
    pub health: Option<Probe>,
}

/// A bundle's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// The infragen version that built it.
    pub infragen: String,
    /// The host it is for (its inventory address).
    pub host: String,
    /// The profile it was built from.
    pub profile: ProfileRef,
    /// The profile's version string (`version`), for the downgrade check.
    pub version_string: String,
    /// Components by name.
    pub components: BTreeMap<String, ComponentEntry>,
    /// Images that could not be built.
    pub incomplete: Vec<String>,
    /// Every file of the bundle but `manifest.json` and its signature.
    pub files: BTreeMap<String, FileEntry>,
    /// The node part: host files of the host's own services and their probes (absent in a
    /// bundle that has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Node>,
    /// The age recipients (`age1…`) its secrets are encrypted to, the host's key first:
    /// present exactly in format [`VERSION_SEALED`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<String>>,
    /// The generation id: sha256 of the canonical manifest without this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
}

fn plain_absolute(s: &str) -> bool {
    let p = Path::new(s);
    p.is_absolute()
        && p.components()
            .all(|c| matches!(c, PathComponent::RootDir | PathComponent::Normal(_)))
        && !s.contains('\0')
}

/// A bundle file's path as infragen writes one: relative, no empty, `.` or `..` component, no
/// trailing `/`, and no control character (a hostile name must not reach a terminal as escape
/// sequences through progress lines or messages).
pub(crate) fn plain_relative(s: &str) -> bool {
    !s.is_empty()
        && !s.chars().any(char::is_control)
        && !s.contains("//")
        && s.split('/').all(|c| c != "." && c != "..")
        && !s.ends_with('/')
        && Path::new(s)
            .components()
            .all(|c| matches!(c, PathComponent::Normal(_)))
}

impl Manifest {
    /// Parses manifest bytes strictly and checks every value that becomes a host path.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let m: Self = serde_json::from_slice(bytes).context("manifest.json")?;
        m.check().context("manifest.json")?;
        Ok(m)
    }

    /// The canonical bytes of this manifest (what is written, hashed and signed).
    pub fn to_canonical(&self) -> Vec<u8> {
        crate::oci::json::canonical(&serde_json::to_value(self).expect("serialisable"))
    }

    /// The generation id this manifest's content hashes to.
    pub fn compute_generation(&self) -> String {
        let mut without = self.clone();
        without.generation = None;
        crate::digest::sha256_hex(&without.to_canonical())
    }

    /// Whether its secrets are age files (format [`VERSION_SEALED`]).
    pub fn sealed(&self) -> bool {
        self.recipients.is_some()
    }

    /// The bundle file of secret `name` of `component` (`secrets/<c>/<name>`, `.age` when
    /// sealed).
    pub fn secret_file(&self, component: &str, name: &str) -> String {
        let suffix = if self.sealed() {
            crate::secrets::SUFFIX
        } else {
            ""
        };
        format!("secrets/{component}/{name}{suffix}")
    }

    /// The generation id (checked by [`Manifest::check`]).
    pub fn id(&self) -> &str {
        self.generation.as_deref().unwrap_or("")
    }

    /// Checks what the types cannot: the version, ids of 64 hex digits, component names of
    /// lowercase letters and digits, bundle paths relative and plain, host paths absolute and
    /// plain, every path a component names listed in `files`.
    pub fn check(&self) -> Result<()> {
        if self.version != VERSION && self.version != VERSION_SEALED {
            bail!(
                "format version {} (this infragen reads versions {VERSION} and {VERSION_SEALED}); rebuild the bundle with this infragen",
                self.version
            );
        }
        self.check_recipients()?;
        if !self.generation.as_deref().is_some_and(is_hex64) {
            bail!("`generation`: not 64 lowercase hex digits");
        }
        if self.host.is_empty() || !self.host.bytes().all(|b| b.is_ascii_graphic()) {
            bail!("`host`: `{}` is not a host name or address", self.host);
        }
        for (path, f) in &self.files {
            self.check_file(path, f)?;
        }
        for (name, c) in &self.components {
            self.check_component(name, c)?;
        }
        if let Some(n) = &self.node {
            n.check(&|f| self.files.contains_key(f))?;
        }
        Ok(())
    }

    /// `recipients`: present, not empty and parsing exactly in a sealed bundle.
    fn check_recipients(&self) -> Result<()> {
        match (&self.recipients, self.version == VERSION_SEALED) {
            (None, false) => {}
            (Some(_), false) => bail!("`recipients`: only in format version {VERSION_SEALED}"),
            (None, true) => bail!("`recipients`: missing (format version {VERSION_SEALED})"),
            (Some(list), true) => {
                if list.is_empty() {
                    bail!("`recipients`: empty");
                }
                for r in list {
                    crate::age::Recipient::parse(r).context("`recipients`")?;
                }
            }
        }
        Ok(())
    }

    /// One entry of `files`: a plain relative path, a blob named by its digest, secrets sealed
    /// as the version says, a mode no group or other may write.
    fn check_file(&self, path: &str, f: &FileEntry) -> Result<()> {
        let sealed = self.version == VERSION_SEALED;
        if !plain_relative(path) || path == "manifest.json" || path == SIGNATURE {
            bail!(
                "`files`: `{}` is not a plain relative path of a bundle file",
                path.escape_debug()
            );
        }
        // A blob is named by its digest: the store files it under that name.
        if let Some(name) = path.strip_prefix("oci/blobs/sha256/") {
            if name != f.digest.hex() {
                bail!("`files`: `{path}` is not named by its digest {}", f.digest);
            }
        }
        // Secrets are all encrypted (version 3) or all in clear (version 2).
        if path.starts_with("secrets/") && path.ends_with(crate::secrets::SUFFIX) != sealed {
            bail!(
                "`files`: `{path}`: secrets are {} in format version {}",
                if sealed { "`.age` files" } else { "in clear" },
                self.version
            );
        }
        if f.mode & 0o022 != 0 {
            bail!(
                "`files.{path}`: mode {:04o} is group- or world-writable",
                f.mode
            );
        }
        Ok(())
    }

    /// One entry of `components`: its name and the names derived from it, plain paths, and every
    /// file it refers to (secrets, units, blobs) among the bundle's files.
    fn check_component(&self, name: &str, c: &ComponentEntry) -> Result<()> {
        let at = |field: &str| format!("`components.{name}.{field}`");
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            bail!("component name `{name}` is not lowercase letters and digits");
        }
        if !is_hex64(&c.root) {
            bail!("{}: not 64 lowercase hex digits", at("root"));
        }
        if c.reference != format!("infra-{name}") {
            bail!("{}: `{}` is not `infra-{name}`", at("ref"), c.reference);
        }
        if c.unit != format!("infra-{name}.service") {
            bail!("{}: `{}` is not `infra-{name}.service`", at("unit"), c.unit);
        }
        for v in &c.data {
            for (field, p) in [("data.host", &v.host), ("data.path", &v.path)] {
                if !plain_absolute(p) {
                    bail!("{}: `{p}` is not a plain absolute path", at(field));
                }
            }
        }
        for d in &c.config_dirs {
            if !plain_absolute(d) {
                bail!("{}: `{d}` is not a plain absolute path", at("config_dirs"));
            }
        }
        self.check_component_files(name, c, &at)?;
        if !matches!(c.reload.on.as_str(), "config" | "never") {
            bail!(
                "{}: `{}` is not `config` or `never`",
                at("reload.on"),
                c.reload.on
            );
        }
        Ok(())
    }

    /// The files component `name` refers to: its secrets, its units, its image's blobs.
    fn check_component_files(
        &self,
        name: &str,
        c: &ComponentEntry,
        at: &dyn Fn(&str) -> String,
    ) -> Result<()> {
        for s in &c.secrets {
            if !plain_relative(s) || s.contains('/') {
                bail!("{}: `{s}` is not a plain file name", at("secrets"));
            }
            let path = self.secret_file(name, s);
            if !self.files.contains_key(&path) {
                bail!(
                    "{}: `{path}` is not among the bundle's files",
                    at("secrets")
                );
            }
        }
        let r = &c.runtimes;
        for (field, path) in [
            ("runtimes.unit", &r.unit),
            ("runtimes.nspawn", &r.nspawn),
            ("runtimes.portable", &r.portable),
            ("runtimes.podman", &r.podman),
        ] {
            if !self.files.contains_key(path) {
                bail!("{}: `{path}` is not among the bundle's files", at(field));
            }
        }
        for d in std::iter::once(&c.image)
            .chain(&c.root_layers)
            .chain(std::iter::once(&c.config_layer))
        {
            let path = format!("oci/blobs/sha256/{}", d.hex());
            if !self.files.contains_key(&path) {
                bail!("{}: blob {d} is not among the bundle's files", at("image"));
            }
        }
        Ok(())
    }
}

/// The signature file beside `manifest.json`.
pub const SIGNATURE: &str = "manifest.sig";

#[cfg(test)]
mod tests {
    use super::{Digest, FileEntry, Manifest};
    use serde_json::json;

    /// A small manifest that checks, as JSON.
    fn good() -> serde_json::Value {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let file = |dg: String, mode: &str| json!({"digest": dg, "mode": mode, "uid": 0, "gid": 0});
        let mut files = serde_json::Map::new();
        for (p, m) in [
            ("units/infra-nginx.service", "0644"),
            ("nspawn/infra-nginx.nspawn", "0644"),
            ("portable/infra-nginx.service", "0644"),
            ("quadlet/infra-nginx.container", "0644"),
            ("secrets/nginx/key", "0600"),
        ] {
            files.insert(p.into(), file(d('e'), m));
        }
        for c in ['a', 'b', 'c'] {
            files.insert(
                format!("oci/blobs/sha256/{}", c.to_string().repeat(64)),
                file(d(c), "0644"),
            );
        }
        let mut m = json!({
            "version": 2, "infragen": "0.1.0", "host": "127.0.0.1",
            "profile": {"name": "p", "digest": "x"}, "version_string": "v1",
            "incomplete": [], "files": files,
            "components": {"nginx": {
                "image": d('a'), "ref": "infra-nginx", "root": "f".repeat(64),
                "root_layers": [d('b')], "config_layer": d('c'), "config": d('d'),
                "config_dirs": ["/etc/nginx"], "unit": "infra-nginx.service",
                "runtimes": {"unit": "units/infra-nginx.service", "nspawn": "nspawn/infra-nginx.nspawn",
                             "portable": "portable/infra-nginx.service", "podman": "quadlet/infra-nginx.container"},
                "user": {"name": "nginx", "uid": 990, "gid": 990},
                "data": [{"host": "/data/nginx", "path": "/var/log/nginx", "uid": 990, "gid": 990, "read_only": false}],
                "secrets": ["key"], "reload": {"signal": "SIGHUP", "on": "config"},
                "health": {"kind": "http", "address": "127.0.0.1:80", "path": "/"}}},
        });
        let typed: Manifest = serde_json::from_value(m.clone()).unwrap();
        m["generation"] = typed.compute_generation().into();
        m
    }

    fn parse(v: &serde_json::Value) -> anyhow::Result<Manifest> {
        Manifest::parse(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn bundle_file_names_with_control_characters_or_dot_components_are_refused() {
        for name in [
            "units/\u{1b}]0;x\u{7}.service",
            "units/a\nb",
            "units/./x",
            "units/x/.",
        ] {
            let mut bad = good();
            let f = bad["files"]["units/infra-nginx.service"].clone();
            bad["files"][name] = f;
            let e = format!("{:#}", parse(&bad).unwrap_err());
            assert!(e.contains("is not a plain relative path"), "{name:?}: {e}");
            assert!(
                !e.contains('\u{1b}') && !e.contains('\n'),
                "{name:?}: {e:?}"
            );
        }
    }

    #[test]
    fn manifest_values_that_become_host_paths_are_checked() {
        parse(&good()).unwrap();
        for (path, value) in [
            ("/components/nginx/data/0/host", json!("/data/../etc")),
            ("/components/nginx/data/0/path", json!("var/log")),
            ("/components/nginx/config_dirs/0", json!("/etc/./nginx/..")),
            ("/components/nginx/root", json!("../../etc")),
            ("/components/nginx/ref", json!("infra-other")),
            ("/components/nginx/secrets/0", json!("../../etc/shadow")),
            ("/components/nginx/image", json!("sha256:zz")),
            ("/files/secrets~1nginx~1key/mode", json!("0666")),
            ("/generation", json!("x")),
            ("/version", json!(1)),
            ("/host", json!("a b")),
        ] {
            let mut bad = good();
            *bad.pointer_mut(path).unwrap() = value;
            assert!(parse(&bad).is_err(), "{path} accepted");
        }
        let mut bad = good();
        bad["files"][format!("oci/blobs/sha256/{}", "a".repeat(64))]["digest"] =
            json!(format!("sha256:{}", "b".repeat(64)));
        assert!(parse(&bad).is_err(), "a blob not named by its digest");
        let mut bad = good();
        bad["components"]["../x"] = bad["components"]["nginx"].clone();
        assert!(parse(&bad).is_err(), "a component name with a slash");
        let mut bad = good();
        bad["files"]["../escape"] = bad["files"]["secrets/nginx/key"].clone();
        assert!(parse(&bad).is_err(), "a bundle path with `..`");
        let mut bad = good();
        bad["components"]["nginx"]["extra"] = json!(1);
        assert!(parse(&bad).is_err(), "an unknown field");
        let mut bad = good();
        bad["components"]["nginx"]
            .as_object_mut()
            .unwrap()
            .remove("health");
        assert!(parse(&bad).is_err(), "a missing field");
    }

    /// `good()` as format 3: its secret sealed, encrypted to one recipient.
    fn sealed() -> serde_json::Value {
        let mut m = good();
        let files = m["files"].as_object_mut().unwrap();
        let entry = files.remove("secrets/nginx/key").unwrap();
        files.insert("secrets/nginx/key.age".into(), entry);
        m["version"] = json!(3);
        m["recipients"] = json!(["age1ylgu2lxt9jzzf8qejm2hqe02t5vjm34u42ufejtdp98s0c9mpscsu5lcn3"]);
        m.as_object_mut().unwrap().remove("generation");
        let typed: Manifest = serde_json::from_value(m.clone()).unwrap();
        m["generation"] = typed.compute_generation().into();
        m
    }

    #[test]
    fn sealed_secrets_go_with_format_3_and_its_recipients() {
        let m = parse(&sealed()).unwrap();
        assert_eq!(m.secret_file("nginx", "key"), "secrets/nginx/key.age");
        assert_eq!(
            parse(&good()).unwrap().secret_file("nginx", "key"),
            "secrets/nginx/key"
        );
        let refused = |v: &serde_json::Value| format!("{:#}", parse(v).unwrap_err());
        let mut bad = sealed();
        bad.as_object_mut().unwrap().remove("recipients");
        assert!(refused(&bad).ends_with("`recipients`: missing (format version 3)"));
        let mut bad = sealed();
        bad["recipients"] = json!([]);
        assert!(refused(&bad).ends_with("`recipients`: empty"));
        let mut bad = sealed();
        bad["recipients"] = json!(["age1notakey"]);
        assert!(refused(&bad).contains("`age1notakey` is not an age X25519 recipient"));
        let mut bad = sealed();
        bad["version"] = json!(2);
        assert!(refused(&bad).ends_with("`recipients`: only in format version 3"));
        // A clear secret in a sealed bundle, a sealed one in a clear bundle.
        let mut bad = sealed();
        bad["files"]["secrets/nginx/other"] = bad["files"]["secrets/nginx/key.age"].clone();
        assert!(refused(&bad).contains("`secrets/nginx/other`: secrets are `.age` files"));
        let mut bad = good();
        bad["files"]["secrets/nginx/key.age"] = bad["files"]["secrets/nginx/key"].clone();
        assert!(refused(&bad).contains("`secrets/nginx/key.age`: secrets are in clear"));
        let mut bad = sealed();
        bad["version"] = json!(4);
        assert!(refused(&bad).contains("format version 4 (this infragen reads versions 2 and 3)"));
    }

    #[test]
    fn digests_and_modes_are_strict() {
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(64))).is_ok());
        for bad in [
            "sha256:".to_owned(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha512:{}", "a".repeat(64)),
            "a".repeat(64),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad}");
        }
        let d = format!("sha256:{}", "a".repeat(64));
        let ok: FileEntry = serde_json::from_str(&format!(
            r#"{{"digest":"{d}","mode":"0640","uid":0,"gid":0}}"#
        ))
        .unwrap();
        assert_eq!(ok.mode, 0o640);
        for bad in [
            format!(r#"{{"digest":"{d}","mode":"4755","uid":0,"gid":0}}"#),
            format!(r#"{{"digest":"{d}","mode":"644","uid":0,"gid":0}}"#),
            format!(r#"{{"digest":"{d}","mode":"0644","uid":0}}"#),
            format!(r#"{{"digest":"{d}","mode":"0644","uid":0,"gid":0,"x":1}}"#),
        ] {
            assert!(serde_json::from_str::<FileEntry>(&bad).is_err(), "{bad}");
        }
    }
}
