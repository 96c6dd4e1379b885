//! The built-in vmalert rule files (recording rules and alerts), written by us
//! (docs/content.md, "Alerts and recording rules"): one file per module every vmalert loads,
//! and files for the modules an inventory may have (`kafka`, `mysql`), loaded only when it has them.

use super::RuleFile;
use crate::plan::Targets;

/// Rule files every vmalert loads: `(file name, text)`.
const CORE: &[(&str, &str)] = &[
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

/// Rule files of optional modules: `(scrape target directory, file name, text)`. A file is
/// loaded when the inventory has a target of its module (`plan::targets`).
const MODULES: &[(&str, &str, &str)] = &[
    (
        "kafka",
        "kafka.yml",
        include_str!("../../images/vmalert/rules/kafka.yml"),
    ),
    (
        "mysql",
        "mysql.yml",
        include_str!("../../images/vmalert/rules/mysql.yml"),
    ),
];

fn file(name: &str, text: &str) -> RuleFile {
    RuleFile {
        name: name.into(),
        text: text.into(),
    }
}

/// The rule files every vmalert loads, whatever the inventory.
pub fn builtin() -> Vec<RuleFile> {
    CORE.iter().map(|(name, text)| file(name, text)).collect()
}

/// Every built-in rule file, the optional modules' too (for checks and the documentation).
pub fn every() -> Vec<RuleFile> {
    let mut all = builtin();
    all.extend(MODULES.iter().map(|(_, name, text)| file(name, text)));
    all
}

/// The built-in rule files of an inventory with scrape targets `targets`: the core files, and
/// each optional module's file when the inventory has a target of that module.
pub fn for_targets(targets: &Targets) -> Vec<RuleFile> {
    let mut all = builtin();
    all.extend(
        MODULES
            .iter()
            .filter(|(dir, _, _)| {
                targets
                    .get(*dir)
                    .is_some_and(|files| files.values().any(|groups| !groups.is_empty()))
            })
            .map(|(_, name, text)| file(name, text)),
    );
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::TargetGroup;

    fn names(files: &[RuleFile]) -> Vec<&str> {
        files.iter().map(|f| f.name.as_str()).collect()
    }

    fn with(dir: &str) -> Targets {
        let group = TargetGroup {
            labels: [("cls".to_owned(), "k".to_owned())].into(),
            targets: vec!["10.0.0.1:9308".into()],
        };
        [(dir.to_owned(), [("k-1".to_owned(), vec![group])].into())].into()
    }

    #[test]
    fn module_files_come_with_their_module_only() {
        let core = [
            "etcd.yml",
            "infra.yml",
            "minio.yml",
            "node.yml",
            "pgsql.yml",
            "redis.yml",
        ];
        assert_eq!(names(&for_targets(&Targets::new())), core);
        assert_eq!(names(&for_targets(&with("node"))), core);
        let kafka = for_targets(&with("kafka"));
        assert_eq!(names(&kafka)[6..], ["kafka.yml"]);
        assert_eq!(names(&for_targets(&with("mysql")))[6..], ["mysql.yml"]);
        let mut both = with("kafka");
        both.extend(with("mysql"));
        assert_eq!(names(&for_targets(&both))[6..], ["kafka.yml", "mysql.yml"]);
        // a directory without a target group loads nothing
        let mut empty = Targets::new();
        empty.insert("kafka".into(), [("k-1".to_owned(), vec![])].into());
        assert_eq!(names(&for_targets(&empty)), core);
        assert_eq!(names(&every())[6..], ["kafka.yml", "mysql.yml"]);
    }
}
