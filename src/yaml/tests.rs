//! Unit tests of reading (resolution, duplicates, anchors, merge keys, positions, limits) and
//! writing (byte for byte what `serde_yaml` 0.9 wrote).

use super::*;

fn v(text: &str) -> Value {
    from_str(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"))
}

#[test]
fn plain_scalars_resolve_as_ansible_reads_them() {
    for (text, want) in [
        ("true", Value::Bool(true)),
        ("True", Value::Bool(true)),
        ("TRUE", Value::Bool(true)),
        ("yes", Value::Bool(true)),
        ("Yes", Value::Bool(true)),
        ("YES", Value::Bool(true)),
        ("on", Value::Bool(true)),
        ("On", Value::Bool(true)),
        ("ON", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("no", Value::Bool(false)),
        ("No", Value::Bool(false)),
        ("NO", Value::Bool(false)),
        ("off", Value::Bool(false)),
        ("Off", Value::Bool(false)),
        ("OFF", Value::Bool(false)),
        // Not booleans in YAML 1.1 either (PyYAML agrees), nor mixed casings.
        ("y", Value::from("y")),
        ("n", Value::from("n")),
        ("yEs", Value::from("yEs")),
        ("~", Value::Null),
        ("null", Value::Null),
        ("", Value::Null),
        ("8080", Value::from(8080)),
        ("-5", Value::from(-5)),
        ("+5", Value::from(5)),
        ("0x1f", Value::from(31)),
        ("0o17", Value::from(15)),
        ("1.5", Value::from(1.5)),
        ("1e3", Value::from(1000.0)),
        // A leading zero keeps digits a string, as in YAML 1.2 (and as before).
        ("0755", Value::from("0755")),
        ("10.10.10.10", Value::from("10.10.10.10")),
        ("10s", Value::from("10s")),
    ] {
        assert_eq!(v(&format!("k: {text}"))["k"], want, "{text:?}");
    }
    // Quoted scalars are strings whatever they spell.
    assert_eq!(v("k: 'yes'")["k"], Value::from("yes"));
    assert_eq!(v("k: \"8080\"")["k"], Value::from("8080"));
    assert_eq!(v("k: !!str on")["k"], Value::from("on"));
    // Keys resolve the same way.
    assert_eq!(
        v("on: 1").as_mapping().unwrap().keys().next(),
        Some(&Value::Bool(true))
    );
}

#[test]
fn duplicate_keys_are_refused_naming_both_positions() {
    let e = parse(
        "all:\n  vars:\n    a: 1\n    b: 2\n    a: 3\n",
        Limits::NONE,
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::Duplicate {
            path: "all.vars.a".into(),
            first: Pos { line: 3, column: 5 },
            second: Pos { line: 5, column: 5 },
        }
    );
    assert_eq!(
        e.to_string(),
        "all.vars.a: duplicate key; it is first set at line 3, column 5"
    );
    // In a flow mapping inside a list too; `1` and `"1"` are different keys.
    let e = parse("x: [ { a: 1, a: 2 } ]", Limits::NONE).unwrap_err();
    assert!(
        matches!(&e, Error::Duplicate { path, .. } if path == "x[0].a"),
        "{e:?}"
    );
    assert!(parse("{1: a, '1': b}", Limits::NONE).is_ok());
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let doc = v("base: &b { port: 80, host: a }\nsame: *b\nmerged:\n  <<: *b\n  port: 81\nlist:\n  <<: [ { x: 1 }, { x: 2, y: 2 } ]\nquoted: { '<<': 1 }\n");
    assert_eq!(doc["same"], doc["base"]);
    assert_eq!(doc["merged"]["port"], Value::from(81));
    assert_eq!(doc["merged"]["host"], Value::from("a"));
    assert_eq!(doc["list"]["x"], Value::from(1));
    assert_eq!(doc["list"]["y"], Value::from(2));
    assert_eq!(doc["quoted"]["<<"], Value::from(1));
    let e = parse("a: { <<: 1 }", Limits::NONE).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Merge {
                found: "a number",
                ..
            }
        ),
        "{e:?}"
    );
    let e = parse("a: *nowhere", Limits::NONE).unwrap_err();
    assert!(matches!(e, Error::Syntax { .. }), "{e:?}");
}

#[test]
fn tags_and_documents() {
    let doc = v("a: !vault [1]\nb: !t x\n");
    let Value::Tagged(t) = &doc["b"] else {
        panic!("{doc:?}")
    };
    assert_eq!((t.tag.as_str(), &t.value), ("!t", &Value::from("x")));
    let e = parse("a: 1\n---\nb: 2\n", Limits::NONE).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Syntax {
                at: Pos { line: 2, .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(v(""), Value::Null);
    assert_eq!(v("# only a comment\n"), Value::Null);
}

#[test]
fn positions_by_key_path() {
    let text = "all:\n  hosts:\n    10.0.0.1: { seq: 1 }\n  vars:\n    port: 99999\n    list:\n      - a\n      - { b: 2 }\n";
    let (value, spans) = parse(text, Limits::NONE).unwrap();
    let p = Positions::new(&value, &spans);
    let at = |path: &str, key: bool| p.locate(path, key).map(|p| (p.line, p.column));
    assert_eq!(at("all.vars.port", false), Some((5, 11)));
    assert_eq!(at("all.vars.port", true), Some((5, 5)));
    assert_eq!(at(r#"all.hosts."10.0.0.1".seq"#, false), Some((3, 22)));
    assert_eq!(at("all.vars.list[1].b", false), Some((8, 14)));
    assert_eq!(at("all.vars.list[0]", false), Some((7, 9)));
    // A missing key: its nearest ancestor's value.
    assert_eq!(at("all.vars.missing", true), Some((5, 5)));
    assert_eq!(at(r#"all.hosts."10.0.0.1".x.y"#, false), Some((3, 15)));
    assert_eq!(at("", false), Some((1, 1)));
}

#[test]
fn limits_stop_the_parse_where_they_are_crossed() {
    let tight = Limits {
        depth: 3,
        values: 10,
        aliased: usize::MAX,
    };
    let e = parse("a:\n  b:\n    c: [1]\n", tight).unwrap_err();
    assert_eq!(
        e,
        Error::Depth {
            at: Pos { line: 3, column: 8 }
        }
    );
    let e = parse("a: &a [1, 2, 3, 4]\nb: *a\n", tight).unwrap_err();
    assert_eq!(
        e,
        Error::Values {
            at: Pos { line: 2, column: 4 }
        }
    );
}

/// Parsing time grows with the size, not faster: ten times the hosts (3.8 MB) take about ten
/// times as long (a large mapping looks its keys up through an index, not a scan). A 50 MB
/// profile is loaded by `tests/big_profile.rs`, timed by `benches/big_profile.rs`.
#[test]
fn a_large_document_parses_in_linear_time() {
    let host = |i: usize| {
        format!(
            "    10.{}.{}.{}: {{ pg_seq: {i}, pg_role: replica, note: \"a quoted note\" }}\n",
            i >> 16 & 255,
            i >> 8 & 255,
            i & 255
        )
    };
    let doc = |n: usize| "all:\n  hosts:\n".to_owned() + &(0..n).map(host).collect::<String>();
    let time = |text: &str| {
        let start = std::time::Instant::now();
        let (value, _) = parse(text, Limits::NONE).unwrap();
        assert!(value["all"]["hosts"].as_mapping().is_some());
        start.elapsed()
    };
    let small = doc(5_000);
    let large = doc(50_000);
    let (t1, t10) = (time(&small), time(&large));
    eprintln!(
        "{} bytes in {t1:?}, {} bytes in {t10:?}",
        small.len(),
        large.len()
    );
    assert!(t10 < t1 * 30, "{t1:?} for 5,000 hosts, {t10:?} for 50,000");
}

#[test]
fn strings_are_written_as_serde_yaml_wrote_them() {
    // (string, `{"k": string}` as serde_yaml 0.9.34 wrote it), except `yes`: YAML 1.1 reads
    // it as a boolean, so it is quoted now.
    let cases = [
        ("", "k: ''\n"),
        ("a", "k: a\n"),
        ("true", "k: 'true'\n"),
        ("yes", "k: 'yes'\n"),
        ("null", "k: 'null'\n"),
        ("~", "k: '~'\n"),
        ("1", "k: '1'\n"),
        ("-1", "k: '-1'\n"),
        ("0x1f", "k: '0x1f'\n"),
        ("0755", "k: '0755'\n"),
        ("1.5", "k: '1.5'\n"),
        (".inf", "k: '.inf'\n"),
        ("1e3", "k: '1e3'\n"),
        ("a b", "k: a b\n"),
        (" lead", "k: ' lead'\n"),
        ("trail ", "k: 'trail '\n"),
        ("a: b", "k: 'a: b'\n"),
        ("a:b", "k: a:b\n"),
        ("- x", "k: '- x'\n"),
        ("-x", "k: -x\n"),
        ("# c", "k: '# c'\n"),
        ("a #c", "k: 'a #c'\n"),
        ("a#c", "k: a#c\n"),
        ("[x]", "k: '[x]'\n"),
        ("x]", "k: x]\n"),
        ("{", "k: '{'\n"),
        ("&a", "k: '&a'\n"),
        ("*a", "k: '*a'\n"),
        ("!t", "k: '!t'\n"),
        ("|", "k: '|'\n"),
        ("'q'", "k: '''q'''\n"),
        ("\"d\"", "k: '\"d\"'\n"),
        ("%", "k: '%'\n"),
        ("@", "k: '@'\n"),
        ("`", "k: '`'\n"),
        ("a\nb", "k: |-\n  a\n  b\n"),
        ("a\nb\n", "k: |\n  a\n  b\n"),
        ("a\n\nb\n", "k: |\n  a\n\n  b\n"),
        ("a\n\n", "k: |+\n  a\n\n"),
        ("\nlead", "k: |2-\n\n  lead\n"),
        (" x\ny", "k: |2-\n   x\n  y\n"),
        ("tab\tx", "k: \"tab\\tx\"\n"),
        ("x\u{1}", "k: \"x\\x01\"\n"),
        ("é ü", "k: é ü\n"),
        ("---", "k: '---'\n"),
        ("?x", "k: ?x\n"),
        ("? x", "k: '? x'\n"),
        (":x", "k: :x\n"),
        ("a,b", "k: a,b\n"),
        ("it's", "k: it's\n"),
        ("up{job=\"x\"} < 1", "k: up{job=\"x\"} < 1\n"),
        ("10.0.0.1:9100", "k: 10.0.0.1:9100\n"),
        ("http://x:80/", "k: http://x:80/\n"),
        ("$1:9100", "k: $1:9100\n"),
        ("word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word ", "k: 'word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word '\n"),
    ];
    for (s, want) in cases {
        assert_eq!(
            to_string(&serde_json::json!({ "k": s })).unwrap(),
            want,
            "{s:?}"
        );
    }
}

#[test]
fn structure_is_written_as_serde_yaml_wrote_it() {
    let doc = serde_json::json!({
        "list": ["x", ["x", {"k": "x"}], {"a": ["x"], "b": {}}, []],
        "nested": {"deep": {"deeper": "x", "n": 1, "f": 1.5, "t": true, "z": null}},
    });
    let want = "list:\n- x\n- - x\n  - k: x\n- a:\n  - x\n  b: {}\n- []\nnested:\n  deep:\n    deeper: x\n    n: 1\n    f: 1.5\n    t: true\n    z: null\n";
    assert_eq!(to_string(&doc).unwrap(), want);
    // What is written reads back as the same value.
    assert_eq!(serde_json::to_value(v(want)).unwrap(), doc);
}
