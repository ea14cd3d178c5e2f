//! The few JavaScript value rules the original's filter depends on, for values that arrive
//! as JSON: string lengths in UTF-16 code units, `String(value)` and `JSON.stringify`.

use serde_json::Value;

/// `string.length` in JavaScript.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The first `max` UTF-16 code units of `s` (what `s.slice(0, max)` keeps, whole characters).
pub fn utf16_prefix(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &s[..i];
        }
    }
    s
}

/// `String(value)` for a value read from JSON (`undefined` when absent).
pub fn js_string(value: Option<&Value>) -> String {
    match value {
        None => "undefined".into(),
        Some(Value::Null) => "null".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => js_number(n),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Null => String::new(),
                v => js_string(Some(v)),
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(_)) => "[object Object]".into(),
    }
}

fn js_number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{}", f as i128),
        Some(f) => f.to_string(),
        None => n.to_string(),
    }
}

/// How `typeof` names a JSON value (`undefined` when absent).
pub fn type_of(value: Option<&Value>) -> &'static str {
    match value {
        None => "undefined",
        Some(Value::String(_)) => "string",
        Some(Value::Number(_)) => "number",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Null | Value::Array(_) | Value::Object(_)) => "object",
    }
}

/// V8's text for reading `property` of `value` when that throws (null or undefined), or for
/// calling a missing method `path.property(...)`.
pub fn read_error(path: &str, value: Option<&Value>, property: &str) -> String {
    match value {
        None => format!("Cannot read properties of undefined (reading '{property}')"),
        Some(Value::Null) => format!("Cannot read properties of null (reading '{property}')"),
        Some(_) => format!("{path}.{property} is not a function"),
    }
}

/// Whether `for (const x of value)` works on a JSON value, and the V8 text when it does not.
pub fn iterable<'v>(path: &str, value: Option<&'v Value>) -> Result<Vec<IterItem<'v>>, String> {
    match value {
        Some(Value::Array(items)) => Ok(items.iter().map(IterItem::Value).collect()),
        Some(Value::String(s)) => Ok(s.chars().map(|_| IterItem::Char).collect()),
        _ => Err(format!("{path} is not iterable")),
    }
}

/// One element of an iterated JSON value: arrays give values, strings characters (which
/// have no fields).
#[derive(Clone, Copy, Debug)]
pub enum IterItem<'v> {
    Value(&'v Value),
    Char,
}

impl<'v> IterItem<'v> {
    pub fn value(self) -> Option<&'v Value> {
        match self {
            IterItem::Value(v) => Some(v),
            IterItem::Char => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coercions_follow_javascript() {
        assert_eq!(js_string(Some(&json!(42))), "42");
        assert_eq!(js_string(Some(&json!(1.5))), "1.5");
        assert_eq!(js_string(Some(&json!(["a", null, 1]))), "a,,1");
        assert_eq!(js_string(None), "undefined");
        assert_eq!(utf16_len("a😀"), 3);
        assert_eq!(utf16_prefix("ab😀c", 3), "ab");
        assert_eq!(utf16_prefix("abc", 5), "abc");
    }
}
