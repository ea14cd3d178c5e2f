//! The seed API's `allowedTools`: patterns naming the tools a session may call. A call to
//! any other tool fails inside the script like a tool error, after its `tool_call` event,
//! and no handler runs.
//!
//! Tool names are `:`-separated segments (`users:list`, `user:profile:read`), and the seed's
//! access rules read `*` as one segment (`admin:*` covers `admin:delete`, not
//! `admin:x:delete`), which is also the safer reading for an allow list. So: `*` matches
//! within one segment, `**` across segments, `?` one character other than `:`; everything
//! else is literal. Patterns compile to one linear-time regex set.

use regex::RegexSet;

use crate::protocol::ErrorInfo;

/// Code of the error a disallowed call gets.
pub const TOOL_NOT_ALLOWED: &str = "TOOL_NOT_ALLOWED";

#[derive(Clone, Debug, Default)]
pub struct AllowedTools(Option<RegexSet>);

fn to_regex(pattern: &str) -> String {
    let mut out = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(".*");
            }
            '*' => out.push_str("[^:]*"),
            '?' => out.push_str("[^:]"),
            c => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out.push('$');
    out
}

impl AllowedTools {
    /// Every tool (the default, and what the original does).
    pub fn all() -> AllowedTools {
        AllowedTools(None)
    }

    /// Only tools matching one of `patterns`; an empty list allows none.
    pub fn matching(patterns: &[String]) -> Result<AllowedTools, String> {
        if patterns.iter().any(|p| p.is_empty()) {
            return Err("allowedTools patterns must be non-empty strings".into());
        }
        let set = RegexSet::new(patterns.iter().map(|p| to_regex(p)))
            .map_err(|e| format!("Invalid allowedTools patterns: {e}"))?;
        Ok(AllowedTools(Some(set)))
    }

    pub fn allows(&self, name: &str) -> bool {
        self.0.as_ref().is_none_or(|set| set.is_match(name))
    }

    pub fn refusal(name: &str) -> ErrorInfo {
        ErrorInfo::new(TOOL_NOT_ALLOWED, format!("Tool \"{name}\" is not allowed in this session"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> AllowedTools {
        AllowedTools::matching(&list.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn a_star_is_one_segment_and_two_stars_any() {
        let users = patterns(&["users:*", "health"]);
        assert!(users.allows("users:list"));
        assert!(users.allows("users:"));
        assert!(!users.allows("users:admin:drop"));
        assert!(users.allows("health"));
        assert!(!users.allows("healthz"));
        assert!(!users.allows("my-users:list"));
        assert!(patterns(&["users:**"]).allows("users:admin:drop"));
        assert!(patterns(&["user:*:read"]).allows("user:profile:read"));
        assert!(!patterns(&["user:*:read"]).allows("user:profile:write"));
        assert!(patterns(&["db:?"]).allows("db:x"));
        assert!(!patterns(&["db:?"]).allows("db::"));
        assert!(!patterns(&["*"]).allows("a:b"));
        assert!(!patterns(&[]).allows("anything"));
        assert!(AllowedTools::all().allows("anything"));
    }

    #[test]
    fn everything_else_is_literal() {
        let dotted = patterns(&["a.b", "(x|y)+"]);
        assert!(dotted.allows("a.b"));
        assert!(!dotted.allows("axb"));
        assert!(dotted.allows("(x|y)+"));
        assert!(!dotted.allows("xx"));
    }

    #[test]
    fn an_empty_pattern_is_an_error() {
        assert_eq!(
            AllowedTools::matching(&["users:*".to_string(), String::new()]).unwrap_err(),
            "allowedTools patterns must be non-empty strings"
        );
    }
}
