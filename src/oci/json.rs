//! Canonical JSON for OCI documents: object keys sorted by their UTF-8 bytes at every depth,
//! no insignificant whitespace, numbers and string escapes as `serde_json` prints them.
//!
//! Every document whose digest is published (image config, manifest, index) goes through
//! here, so the same value always has the same digest whatever order its maps were built in.
//! It does not decide what the documents contain: that is `layout`.

use serde::Serialize;
use serde_json::Value;

use super::blob::OciError;

/// The canonical bytes of `value`.
pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

/// The canonical bytes of any serialisable value, through [`serde_json::to_value`].
pub fn to_canonical<T: Serialize>(v: &T) -> Result<Vec<u8>, OciError> {
    Ok(canonical(&serde_json::to_value(v)?))
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // `str`'s `Ord` is byte order of the UTF-8 encoding.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                scalar(&Value::String(key.clone()), out);
                out.push(b':');
                write(item, out);
            }
            out.push(b'}');
        }
        scalar_value => scalar(scalar_value, out),
    }
}

/// Null, booleans, numbers and strings: exactly as `serde_json` prints them.
fn scalar(value: &Value, out: &mut Vec<u8>) {
    // Writing a scalar `Value` into a `Vec` cannot fail.
    serde_json::to_writer(out, value).expect("a JSON scalar serialises");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    #[test]
    fn nested_maps_are_sorted_without_whitespace() {
        let v = json!({
            "b": {"z": 1, "a": [ {"y": null, "x": true} ]},
            "a": "é\n\"",
            "B": 1.5,
            "aa": -3
        });
        assert_eq!(
            String::from_utf8(canonical(&v)).unwrap(),
            r#"{"B":1.5,"a":"é\n\"","aa":-3,"b":{"a":[{"x":true,"y":null}],"z":1}}"#
        );
    }

    #[test]
    fn keys_sort_by_bytes() {
        // 'Z' (0x5a) < '_' (0x5f) < 'a' (0x61) < 'é' (0xc3 0xa9).
        let v = json!({"é": 1, "a": 2, "_": 3, "Z": 4});
        assert_eq!(
            String::from_utf8(canonical(&v)).unwrap(),
            r#"{"Z":4,"_":3,"a":2,"é":1}"#
        );
    }

    #[test]
    fn construction_order_does_not_matter() {
        let keys = [
            "config",
            "layers",
            "mediaType",
            "schemaVersion",
            "annotations",
        ];
        let build = |seed: usize| {
            let mut order: Vec<usize> = (0..keys.len()).collect();
            // A different rotation and direction per seed: 20 distinct insertion orders.
            order.rotate_left(seed % keys.len());
            if seed / keys.len() % 2 == 1 {
                order.reverse();
            }
            if seed / (2 * keys.len()) == 1 {
                order.swap(0, 1);
            }
            let mut top = Map::new();
            for &i in &order {
                let mut inner = Map::new();
                for &j in order.iter().rev() {
                    inner.insert(keys[j].to_owned(), json!(j));
                }
                top.insert(keys[i].to_owned(), Value::Object(inner));
            }
            (order, canonical(&Value::Object(top)))
        };
        let (_, first) = build(0);
        let mut orders = std::collections::BTreeSet::new();
        for seed in 0..20 {
            let (order, bytes) = build(seed);
            orders.insert(order);
            assert_eq!(bytes, first, "seed {seed}");
        }
        assert_eq!(orders.len(), 20, "the 20 constructions must differ");
    }

    #[test]
    fn to_canonical_goes_through_a_value() {
        #[derive(Serialize)]
        struct Doc {
            z: u8,
            a: Vec<&'static str>,
        }
        let bytes = to_canonical(&Doc { z: 1, a: vec!["x"] }).unwrap();
        assert_eq!(bytes, br#"{"a":["x"],"z":1}"#.to_vec());
    }
}
