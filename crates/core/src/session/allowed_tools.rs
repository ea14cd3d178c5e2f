//! The seed API's `allowedTools`: patterns naming the tools a session may call. A call to
//! any other tool fails inside the script like a tool error, after its `tool_call` event,
//! and no handler runs.
//!
//! Patterns are the tool-name patterns of `tools::pattern` (`*` one segment, `**` any, `?`
//! one character other than `:`, everything else literal), compiled to one regex set.

use regex::RegexSet;

use crate::protocol::ErrorInfo;
use crate::tools::pattern::pattern_set;

/// Code of the error a disallowed call gets.
pub const TOOL_NOT_ALLOWED: &str = "TOOL_NOT_ALLOWED";

#[derive(Clone, Debug, Default)]
pub struct AllowedTools(Option<RegexSet>);

impl AllowedTools {
    /// Every tool (the default, and what the original does).
    pub fn all() -> AllowedTools {
        AllowedTools(None)
    }

    /// Only tools matching one of `patterns`; an empty list allows none.
    pub fn matching(patterns: &[String]) -> Result<AllowedTools, String> {
        let set = pattern_set(patterns)
            .map_err(|_| "allowedTools patterns must be non-empty strings".to_string())?;
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
