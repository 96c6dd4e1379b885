//! A small JSON Schema checker for `docs/json-schema.json`: the keywords that file uses
//! (`$ref` to `#/$defs/…`, `oneOf`, `type`, `const`, `enum`, `properties`, `required`,
//! `additionalProperties`, `items`, `minimum`). A keyword it does not know fails the check, so
//! that the schema cannot grow a rule this checker would silently ignore.

use serde_json::Value;

/// The documented schema.
pub fn documented() -> Value {
    let path = super::root().join("docs/json-schema.json");
    serde_json::from_slice(&std::fs::read(&path).expect("read docs/json-schema.json"))
        .expect("docs/json-schema.json is JSON")
}

/// Checks every line of `stdout` against the schema: each must be one JSON object the schema
/// accepts, and the last one the `result`. Returns the objects.
pub fn check_lines(schema: &Value, stdout: &str) -> Vec<Value> {
    let mut objects = Vec::new();
    for (i, line) in stdout.lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {}: not JSON ({e}): {line}", i + 1));
        if let Err(why) = check(schema, schema, &v) {
            panic!("line {}: {why}\n{line}", i + 1);
        }
        objects.push(v);
    }
    let last = objects.last().expect("at least the result line");
    assert_eq!(last["event"], "result", "the last line is the result");
    assert_eq!(
        objects.iter().filter(|o| o["event"] == "result").count(),
        1,
        "exactly one result line"
    );
    objects
}

/// Whether `v` satisfies `s` (`root` holds the `$defs`); the reason when it does not.
pub fn check(root: &Value, s: &Value, v: &Value) -> Result<(), String> {
    let Some(obj) = s.as_object() else {
        return Err(format!("schema is not an object: {s}"));
    };
    for (k, rule) in obj {
        match k.as_str() {
            "$schema" | "title" | "description" | "$defs" => {}
            "$ref" => {
                let name = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .ok_or_else(|| format!("unsupported $ref {rule}"))?;
                check(root, &root["$defs"][name], v).map_err(|e| format!("{name}: {e}"))?;
            }
            "oneOf" => {
                let options = rule.as_array().ok_or("oneOf is not an array")?;
                let mut why = Vec::new();
                let matched = options
                    .iter()
                    .filter(|o| match check(root, o, v) {
                        Ok(()) => true,
                        Err(e) => {
                            why.push(e);
                            false
                        }
                    })
                    .count();
                if matched != 1 {
                    return Err(format!(
                        "matches {matched} of oneOf, not one:\n  {}",
                        why.join("\n  ")
                    ));
                }
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(format!("bad type {rule}")),
                };
                if !types.iter().any(|t| is_type(v, t)) {
                    return Err(format!("{v} is not of type {rule}"));
                }
            }
            "const" => {
                if v != rule {
                    return Err(format!("{v} is not {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().is_some_and(|a| a.contains(v)) {
                    return Err(format!("{v} is not one of {rule}"));
                }
            }
            "minimum" => {
                if v.as_f64().zip(rule.as_f64()).is_some_and(|(x, m)| x < m) {
                    return Err(format!("{v} is below {rule}"));
                }
            }
            "required" => {
                for name in rule.as_array().into_iter().flatten() {
                    let name = name.as_str().unwrap_or_default();
                    if v.is_object() && v.get(name).is_none() {
                        return Err(format!("no `{name}`"));
                    }
                }
            }
            "properties" => {
                if let Some(o) = v.as_object() {
                    for (name, value) in o {
                        if let Some(p) = rule.get(name) {
                            check(root, p, value).map_err(|e| format!("`{name}`: {e}"))?;
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(o) = v.as_object() {
                    let known = obj.get("properties");
                    for (name, value) in o {
                        if known.and_then(|k| k.get(name)).is_some() {
                            continue;
                        }
                        match rule {
                            Value::Bool(false) => {
                                return Err(format!("unknown field `{name}`"));
                            }
                            Value::Bool(true) => {}
                            _ => check(root, rule, value).map_err(|e| format!("`{name}`: {e}"))?,
                        }
                    }
                }
            }
            "items" => {
                for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                    check(root, rule, item).map_err(|e| format!("[{i}]: {e}"))?;
                }
            }
            other => return Err(format!("schema keyword `{other}` is not supported")),
        }
    }
    Ok(())
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}
