//! Identifier formats: `s_` + UUID v4 for sessions, `c_` + UUID v4 for tool calls.

pub const SESSION_ID_PREFIX: &str = "s_";
pub const CALL_ID_PREFIX: &str = "c_";

pub fn generate_session_id() -> String {
    format!("{SESSION_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

pub fn generate_call_id() -> String {
    format!("{CALL_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_v4(id: &str, prefix: &str) {
        let rest = id.strip_prefix(prefix).expect("prefix");
        let uuid = uuid::Uuid::parse_str(rest).expect("uuid");
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(rest, rest.to_lowercase());
        assert_eq!(id.len(), prefix.len() + 36);
    }

    #[test]
    fn session_and_call_ids_are_prefixed_lowercase_v4() {
        assert_v4(&generate_session_id(), "s_");
        assert_v4(&generate_call_id(), "c_");
        assert_ne!(generate_session_id(), generate_session_id());
    }
}
