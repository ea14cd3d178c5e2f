//! References in tool arguments, resolved on the host at the `callTool` boundary (the
//! original's `ReferenceResolver`): a whole reference string becomes its data, a composite
//! handle (`{__type: 'composite', __parts}`, from concatenating a reference) the join of its
//! resolved parts. The size the arguments would reach is predicted first, without building
//! anything, and checked against `maxResolvedSize`; references deeper than
//! `maxResolutionDepth` are not looked for. Tool results that are one large string are
//! lifted into the sidecar in turn (`lift_result`).

use serde_json::Value;

use super::store::{Sidecar, is_reference_id};
use crate::protocol::ErrorInfo;

pub const REFERENCE_RESOLUTION_LIMIT: &str = "REFERENCE_RESOLUTION_LIMIT";
pub const REFERENCE_RESOLUTION_FAILED: &str = "REFERENCE_RESOLUTION_FAILED";

fn composite_parts(value: &Value) -> Option<&Vec<Value>> {
    let object = value.as_object()?;
    if object.get("__type").and_then(Value::as_str) != Some("composite") {
        return None;
    }
    object.get("__parts").and_then(Value::as_array)
}

enum Failure {
    /// Too deep: a limit of the resolver (reported as `Failed to resolve references ...`).
    Limit(String),
    Other(String),
}

struct Resolver<'s> {
    sidecar: &'s Sidecar,
    max_depth: usize,
}

impl Resolver<'_> {
    fn contains(&self, value: &Value, depth: usize) -> bool {
        if depth > self.max_depth {
            return false;
        }
        if composite_parts(value).is_some() {
            return true;
        }
        match value {
            Value::String(s) => is_reference_id(s),
            Value::Array(items) => items.iter().any(|v| self.contains(v, depth + 1)),
            Value::Object(map) => map.values().any(|v| self.contains(v, depth + 1)),
            _ => false,
        }
    }

    /// Bytes the value reaches once resolved; `None` past the depth limit.
    fn predict(&self, value: &Value, depth: usize) -> Option<usize> {
        if depth > self.max_depth {
            return None;
        }
        if let Some(parts) = composite_parts(value) {
            return parts
                .iter()
                .try_fold(0usize, |sum, p| Some(sum.saturating_add(self.predict(p, depth + 1)?)));
        }
        Some(match value {
            Value::String(s) if is_reference_id(s) => self.sidecar.size(s).unwrap_or(s.len()),
            Value::String(s) => s.len(),
            Value::Array(items) => items
                .iter()
                .try_fold(0usize, |sum, v| Some(sum.saturating_add(self.predict(v, depth + 1)?)))?,
            Value::Object(map) => map
                .values()
                .try_fold(0usize, |sum, v| Some(sum.saturating_add(self.predict(v, depth + 1)?)))?,
            Value::Number(_) => 8,
            Value::Bool(_) => 1,
            Value::Null => 0,
        })
    }

    fn resolve(&self, value: Value, depth: usize) -> Result<Value, Failure> {
        if depth > self.max_depth {
            return Err(Failure::Limit(format!(
                "Maximum resolution depth exceeded during resolution ({})",
                self.max_depth
            )));
        }
        if composite_parts(&value).is_some() {
            let Value::Object(mut map) = value else { unreachable!() };
            let Some(Value::Array(parts)) = map.remove("__parts") else { unreachable!() };
            let mut out = String::new();
            for part in parts {
                match self.resolve(part, depth + 1)? {
                    Value::String(s) => out.push_str(&s),
                    other => {
                        let kind = match other {
                            Value::Null => "object",
                            Value::Bool(_) => "boolean",
                            Value::Number(_) => "number",
                            _ => "object",
                        };
                        return Err(Failure::Other(format!("Composite part resolved to non-string: {kind}")));
                    }
                }
            }
            return Ok(Value::String(out));
        }
        match value {
            Value::String(s) if is_reference_id(&s) => match self.sidecar.get(&s) {
                Some(data) => Ok(Value::String(data.to_string())),
                None => Err(Failure::Other(format!("Unknown reference: {s}"))),
            },
            Value::Array(items) => items
                .into_iter()
                .map(|v| self.resolve(v, depth + 1))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| Ok((k, self.resolve(v, depth + 1)?)))
                .collect::<Result<_, _>>()
                .map(Value::Object),
            other => Ok(other),
        }
    }
}

/// The arguments with their references resolved (`None`: there were none, use them as
/// they are), or the error the script's `callTool` rejects with.
pub fn resolve_arguments(sidecar: &Sidecar, args_json: &str) -> Result<Option<String>, ErrorInfo> {
    // Every reference and composite handle spells one of these.
    if !args_json.contains("__REF_") && !args_json.contains("\"__type\"") {
        return Ok(None);
    }
    let Ok(args) = serde_json::from_str::<Value>(args_json) else { return Ok(None) };
    let resolver = Resolver { sidecar, max_depth: sidecar.config().max_resolution_depth };
    if !resolver.contains(&args, 0) {
        return Ok(None);
    }
    match resolver.predict(&args, 0) {
        Some(size) if size <= sidecar.config().max_resolved_size => {}
        _ => {
            return Err(ErrorInfo::new(
                REFERENCE_RESOLUTION_LIMIT,
                "Arguments would exceed maximum resolved size when references are expanded. Reduce the amount of data passed to the tool.",
            ));
        }
    }
    match resolver.resolve(args, 0) {
        Ok(resolved) => Ok(Some(serde_json::to_string(&resolved).unwrap_or_default())),
        Err(Failure::Limit(message)) => Err(ErrorInfo::new(
            REFERENCE_RESOLUTION_FAILED,
            format!("Failed to resolve references in tool arguments: {message}"),
        )),
        Err(Failure::Other(message)) => Err(ErrorInfo::new(REFERENCE_RESOLUTION_FAILED, message)),
    }
}

/// A tool result that is one string of at least the extraction threshold, as the JSON of
/// its reference string (`None`: keep the result; also when the sidecar is full, as the
/// original keeps the value then).
pub fn lift_result(sidecar: &Sidecar, result_json: &str) -> Option<String> {
    let threshold = sidecar.config().extraction_threshold;
    // JSON text is at least as long as the UTF-8 of the string it holds, plus its quotes.
    if !result_json.starts_with('"') || result_json.len() < threshold.saturating_add(2) {
        return None;
    }
    // Without escapes the JSON text is the string between its quotes (the usual case, and a
    // scan instead of a decode for large text).
    let inner = result_json.get(1..result_json.len().saturating_sub(1)).unwrap_or("");
    let text: String = if result_json.len() >= 2 && result_json.ends_with('"') && !inner.contains('\\') {
        inner.to_string()
    } else {
        serde_json::from_str(result_json).ok()?
    };
    if text.len() < threshold {
        return None;
    }
    let id = sidecar.store(text).ok()?;
    Some(format!("\"{id}\""))
}

#[cfg(test)]
mod tests {
    use super::super::config::ReferenceConfig;
    use super::*;

    fn sidecar() -> Sidecar {
        Sidecar::new(ReferenceConfig {
            extraction_threshold: 4,
            max_resolved_size: 100,
            max_resolution_depth: 3,
            ..ReferenceConfig::for_level("STANDARD")
        })
    }

    #[test]
    fn references_and_composites_resolve_in_place() {
        let s = sidecar();
        let id = s.store("hello".into()).unwrap();
        let args = format!(
            r#"{{"doc":"{id}","n":1,"list":[{{"x":"{id}"}}],"c":{{"__type":"composite","__operation":"concat","__parts":["<","{id}",">"],"__estimatedSize":0}}}}"#
        );
        let resolved = resolve_arguments(&s, &args).unwrap().unwrap();
        assert_eq!(resolved, r#"{"doc":"hello","n":1,"list":[{"x":"hello"}],"c":"<hello>"}"#);
        assert_eq!(resolve_arguments(&s, r#"{"plain":"text"}"#).unwrap(), None);
    }

    #[test]
    fn the_predicted_size_and_unknown_references_fail_with_the_originals_messages() {
        let s = sidecar();
        let big = s.store("x".repeat(60)).unwrap();
        let err = resolve_arguments(&s, &format!(r#"{{"a":"{big}","b":"{big}"}}"#)).unwrap_err();
        assert_eq!(err.code, REFERENCE_RESOLUTION_LIMIT);
        assert!(err.message.starts_with("Arguments would exceed maximum resolved size"));
        let missing = "__REF_123e4567-e89b-42d3-a456-426614174000__";
        let err = resolve_arguments(&s, &format!(r#"{{"a":"{missing}"}}"#)).unwrap_err();
        assert_eq!(err.message, format!("Unknown reference: {missing}"));
        // Deeper than maxResolutionDepth: not looked for, passed on as written.
        let deep = format!(r#"{{"a":{{"b":{{"c":{{"d":"{big}"}}}}}}}}"#);
        assert_eq!(resolve_arguments(&s, &deep).unwrap(), None);
    }

    #[test]
    fn only_whole_large_string_results_are_lifted() {
        let s = sidecar();
        let lifted = lift_result(&s, r#""abcdef""#).unwrap();
        assert_eq!(s.get(lifted.trim_matches('"')).as_deref(), Some("abcdef"));
        assert_eq!(lift_result(&s, r#""abc""#), None);
        assert_eq!(lift_result(&s, r#"["abcdef"]"#), None);
        assert_eq!(lift_result(&s, r#"{"a":"abcdef"}"#), None);
        // Escapes are decoded: the reference holds the string, not its JSON.
        let escaped = lift_result(&s, r#""a\"b\\c\u00e9""#).unwrap();
        assert_eq!(s.get(escaped.trim_matches('"')).as_deref(), Some("a\"b\\cé"));
    }
}
