//! Lenient readers over `serde_json::Value`: null, absent, `{}` and wrong types all read as "none".

use serde_json::Value;

/// The first key of `keys` that holds a non-empty string.
pub(crate) fn str_any<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()))
}

/// [`str_any`] as an owned string.
pub(crate) fn string_any(v: &Value, keys: &[&str]) -> Option<String> {
    str_any(v, keys).map(str::to_string)
}

/// The first key of `keys` that holds an object.
pub(crate) fn obj_any<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| v.get(k).filter(|o| o.is_object()))
}

/// A number, or a string holding one (`"8.0"`).
pub(crate) fn f64_any(v: &Value, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| match v.get(k)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A boolean, or a string holding one (`"true"`).
pub(crate) fn bool_any(v: &Value, keys: &[&str]) -> Option<bool> {
    keys.iter().find_map(|k| match v.get(k)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    })
}

/// The elements of a CloudTrail set, which appears as `{"items": [...]}`, as `[...]`, and (for
/// EC2 calls logged from their XML) as `{"item": [...]}` or `{"item": {...}}`.
pub fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        Value::Object(_) => match v.get("items").or_else(|| v.get("item")) {
            Some(Value::Array(a)) => a,
            Some(one @ Value::Object(_)) => std::slice::from_ref(one),
            _ => &[],
        },
        _ => &[],
    }
}

/// Moves the value under `key` out of an object, leaving nothing behind; `Null` when absent.
pub(crate) fn take(v: &mut Value, key: &str) -> Value {
    match v {
        Value::Object(map) => map.remove(key).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readers_tolerate_every_shape() {
        let v = json!({"a": "", "b": "x", "n": "8.5", "t": "TRUE", "o": {}, "s": {"items": [1, 2]}, "l": [3]});
        assert_eq!(str_any(&v, &["a", "b"]), Some("x"));
        assert_eq!(str_any(&v, &["o"]), None);
        assert_eq!(f64_any(&v, &["n"]), Some(8.5));
        assert_eq!(bool_any(&v, &["t"]), Some(true));
        assert!(obj_any(&v, &["b", "o"]).is_some());
        assert_eq!(items(&v["s"]).len(), 2);
        assert_eq!(items(&v["l"]).len(), 1);
        assert_eq!(items(&v["missing"]).len(), 0);
        assert_eq!(items(&v["o"]).len(), 0);
        assert_eq!(items(&json!({"item": [1, 2]})).len(), 2);
        assert_eq!(items(&json!({"item": {"a": 1}})).len(), 1);
    }
}

/// The values at a dotted path. A segment ending in `[]` walks every element of a CloudTrail
/// set (`{"items": [...]}` or `[...]`); `[key=value]` walks only the elements whose `key` is
/// `value`. `responseElements.instancesSet[].instanceId` yields each instance id.
pub fn select<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![v];
    for segment in path.split('.') {
        let (name, filter) = match segment.split_once('[') {
            Some((name, rest)) => (name, Some(rest.trim_end_matches(']'))),
            None => (segment, None),
        };
        let mut next = Vec::new();
        for value in current {
            let Some(child) = value.get(name) else {
                continue;
            };
            match filter {
                None => next.push(child),
                Some("") => next.extend(items(child)),
                Some(condition) => {
                    let (key, want) = condition.split_once('=').unwrap_or((condition, ""));
                    // XML-converted requests log a one-element list as the element itself.
                    let elements = match child {
                        Value::Object(m) if !m.contains_key("items") && !m.contains_key("item") => {
                            std::slice::from_ref(child)
                        }
                        _ => items(child),
                    };
                    next.extend(
                        elements
                            .iter()
                            .filter(|e| e.get(key).and_then(Value::as_str) == Some(want)),
                    );
                }
            }
        }
        current = next;
    }
    current.retain(|v| !v.is_null());
    current
}

/// The strings at a path (empty strings and other types skipped).
pub fn select_strings<'a>(v: &'a Value, path: &str) -> Vec<&'a str> {
    select(v, path)
        .into_iter()
        .filter_map(Value::as_str)
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod select_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_walk_sets_and_filter_them() {
        let v = json!({
            "responseElements": {"instancesSet": {"items": [
                {"instanceId": "i-1", "networkInterfaceSet": {"items": [{"networkInterfaceId": "eni-1"}]}},
                {"instanceId": "i-2", "networkInterfaceSet": {"items": [{"networkInterfaceId": "eni-2"}]}}
            ]}},
            "requestParameters": {"tagSpecificationSet": {"items": [
                {"resourceType": "instance", "tags": [{"key": "a", "value": "1"}]},
                {"resourceType": "volume", "tags": [{"key": "b", "value": "2"}]}
            ]}}
        });
        assert_eq!(
            select_strings(&v, "responseElements.instancesSet[].instanceId"),
            ["i-1", "i-2"]
        );
        assert_eq!(
            select_strings(
                &v,
                "responseElements.instancesSet[].networkInterfaceSet[].networkInterfaceId"
            ),
            ["eni-1", "eni-2"]
        );
        let volume_tags = select(&v, "requestParameters.tagSpecificationSet[resourceType=volume].tags");
        assert_eq!(volume_tags, [&json!([{"key": "b", "value": "2"}])]);
        assert!(select(&v, "responseElements.missing[].x").is_empty());
        assert!(select(&json!({"a": null}), "a").is_empty());
    }
}
