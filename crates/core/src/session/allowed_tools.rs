//! The seed API's `allowedTools`: glob patterns (`users:*`) naming the tools a session may
//! call. A call to any other tool fails inside the script like a tool error, after its
//! `tool_call` event, and no handler runs.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::protocol::ErrorInfo;

/// Code of the error a disallowed call gets.
pub const TOOL_NOT_ALLOWED: &str = "TOOL_NOT_ALLOWED";

#[derive(Clone, Debug, Default)]
pub struct AllowedTools(Option<GlobSet>);

impl AllowedTools {
    /// Every tool (the default, and what the original does).
    pub fn all() -> AllowedTools {
        AllowedTools(None)
    }

    /// Only tools matching one of `patterns` (`*`, `?`, `[abc]`, `{a,b}`); an empty list
    /// allows none.
    pub fn matching(patterns: &[String]) -> Result<AllowedTools, String> {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = Glob::new(pattern)
                .map_err(|e| format!("Invalid allowedTools pattern \"{pattern}\": {}", e.kind()))?;
            set.add(glob);
        }
        let set = set.build().map_err(|e| format!("Invalid allowedTools patterns: {e}"))?;
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
    fn globs_name_the_allowed_tools() {
        let users = patterns(&["users:*", "health"]);
        assert!(users.allows("users:list"));
        assert!(users.allows("users:"));
        assert!(users.allows("health"));
        assert!(!users.allows("admin:drop"));
        assert!(!users.allows("healthz"));
        assert!(!users.allows("my-users:list"));
        assert!(patterns(&["{a,b}:?"]).allows("b:x"));
        assert!(!patterns(&[]).allows("anything"));
        assert!(AllowedTools::all().allows("anything"));
    }

    #[test]
    fn a_bad_pattern_is_an_error_that_names_it() {
        let error = AllowedTools::matching(&["users:[".to_string()]).unwrap_err();
        assert!(error.starts_with("Invalid allowedTools pattern \"users:[\": "), "{error}");
    }
}
