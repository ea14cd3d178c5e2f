//! Reading one field of an event from its JSON text, as the original's `getFieldValue` and
//! `stringify` read it from the parsed event: a dot path from the event root (`payload.args.id`,
//! array indexes and `length` included), where a missing key, a `null` or a non-object on
//! the way means "no value"; the value's text is the string itself, `''` for `null`, and
//! the JSON of anything else. Only the path is parsed: other values are skipped, never
//! built, so a large event costs one scan.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A map key, borrowed from the text unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// One step of a path: the value under `key` of an object (the last one when repeated),
/// or an array's element or length.
enum Step<'de> {
    Value(&'de RawValue),
    Length(usize),
}

struct Lookup<'k>(&'k str);

impl<'de> Visitor<'de> for Lookup<'_> {
    type Value = Option<Step<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if key.0 == self.0 {
                found = Some(Step::Value(map.next_value::<&'de RawValue>()?));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let index = array_index(self.0);
        let mut found = None;
        let mut count = 0;
        loop {
            if Some(count) == index {
                match seq.next_element::<&'de RawValue>()? {
                    Some(value) => found = Some(Step::Value(value)),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            count += 1;
        }
        Ok(if self.0 == "length" { Some(Step::Length(count)) } else { found })
    }
}

impl<'de> DeserializeSeed<'de> for Lookup<'_> {
    type Value = Option<Step<'de>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// `"3"` names element 3 of an array; `"03"` or `"-1"` name nothing.
fn array_index(key: &str) -> Option<usize> {
    if key == "0" || (!key.starts_with('0') && !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit())) {
        key.parse().ok()
    } else {
        None
    }
}

fn step<'de>(json: &'de str, key: &str) -> Option<Step<'de>> {
    match json.trim_start().as_bytes().first() {
        Some(b'{' | b'[') => {}
        // null, strings, numbers and booleans have no fields here.
        _ => return None,
    }
    let mut de = serde_json::Deserializer::from_str(json);
    Lookup(key).deserialize(&mut de).ok().flatten()
}

/// The text a pattern matches for a JSON value: the string, `''` for null, else its JSON.
pub fn value_text(json: &str) -> Cow<'_, str> {
    let trimmed = json.trim();
    if trimmed.starts_with('"') {
        if let Ok(s) = serde_json::from_str::<&str>(trimmed) {
            return Cow::Borrowed(s);
        }
        return serde_json::from_str::<String>(trimmed).map_or(Cow::Borrowed(""), Cow::Owned);
    }
    if trimmed == "null" { Cow::Borrowed("") } else { Cow::Borrowed(trimmed) }
}

/// The text of the field at `path` of the JSON object `json`, or None when it has no value.
pub fn field_text<'e>(json: &'e str, path: &[String]) -> Option<Cow<'e, str>> {
    let mut current: &'e str = json;
    for key in path {
        match step(current, key)? {
            Step::Value(raw) => current = raw.get(),
            Step::Length(n) => {
                // A number has no fields: the path must end here.
                return (std::ptr::eq(key, path.last()?)).then(|| Cow::Owned(n.to_string()));
            }
        }
    }
    Some(value_text(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str, path: &str) -> Option<String> {
        let path: Vec<String> = path.split('.').map(str::to_string).collect();
        field_text(json, &path).map(Cow::into_owned)
    }

    #[test]
    fn paths_read_like_the_original() {
        let e = r#"{"type":"tool_call","payload":{"toolName":"users:get","args":{"id":7,"tags":["Admin","ops"],"note":null,"s":"a\"b"}}}"#;
        assert_eq!(read(e, "type").as_deref(), Some("tool_call"));
        assert_eq!(read(e, "payload.toolName").as_deref(), Some("users:get"));
        assert_eq!(read(e, "payload.args.tags.1").as_deref(), Some("ops"));
        assert_eq!(read(e, "payload.args.tags").as_deref(), Some(r#"["Admin","ops"]"#));
        assert_eq!(read(e, "payload.args.tags.length").as_deref(), Some("2"));
        assert_eq!(read(e, "payload.args.id").as_deref(), Some("7"));
        assert_eq!(read(e, "payload.args.note").as_deref(), Some(""));
        assert_eq!(read(e, "payload.args.s").as_deref(), Some("a\"b"));
        assert_eq!(read(e, "payload.args.note.x"), None);
        assert_eq!(read(e, "payload.toolName.length"), None);
        assert_eq!(read(e, "payload.args.tags.01"), None);
        assert_eq!(read(e, "payload.nothing"), None);
        assert_eq!(read(r#"{"a":1,"a":2}"#, "a").as_deref(), Some("2"));
    }
}
