//! The built-in vmalert rule files (recording rules and alerts), written by us.

use super::RuleFile;

/// Static rule files shipped with the vmalert image.
const RULES: &[(&str, &str)] = &[
    (
        "etcd.yml",
        include_str!("../../images/vmalert/rules/etcd.yml"),
    ),
    (
        "infra.yml",
        include_str!("../../images/vmalert/rules/infra.yml"),
    ),
    (
        "minio.yml",
        include_str!("../../images/vmalert/rules/minio.yml"),
    ),
    (
        "node.yml",
        include_str!("../../images/vmalert/rules/node.yml"),
    ),
    (
        "pgsql.yml",
        include_str!("../../images/vmalert/rules/pgsql.yml"),
    ),
    (
        "redis.yml",
        include_str!("../../images/vmalert/rules/redis.yml"),
    ),
];

/// Every built-in rule file.
pub fn builtin() -> Vec<RuleFile> {
    RULES
        .iter()
        .map(|(name, text)| RuleFile {
            name: (*name).into(),
            text: (*text).into(),
        })
        .collect()
}
