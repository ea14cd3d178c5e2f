//! A session's entry in the shared registry: who owns it, its state and timestamps, which
//! broker runs it and how much of its event log is stored. Kept as a Redis hash whose field
//! names are the ones below.

use std::collections::HashMap;

use crate::session::SessionState;

#[derive(Clone, Debug, PartialEq)]
pub struct SharedRecord {
    pub id: String,
    /// The owner principal as hooks see it (`Principal::to_json`).
    pub owner_json: String,
    /// `Principal::key` of the owner: what access checks compare.
    pub owner_key: String,
    pub state: SessionState,
    pub created_at: f64,
    pub expires_at: f64,
    /// The instance id of the broker running (or that ran) the session.
    pub broker: String,
    /// The last seq stored in the session's event log.
    pub last_seq: u64,
    pub tool_call_count: u64,
    /// Its stream is encrypted: the log holds the envelopes clients get.
    pub encrypted: bool,
}

impl SharedRecord {
    /// The hash's fields (as `HGETALL` answers them); `None` when the entry is missing or
    /// not one of ours.
    pub fn from_fields(fields: &HashMap<String, String>) -> Option<SharedRecord> {
        let text = |name: &str| fields.get(name).cloned();
        let number = |name: &str| fields.get(name).and_then(|v| v.parse::<f64>().ok());
        Some(SharedRecord {
            id: text("id")?,
            owner_json: text("owner")?,
            owner_key: text("ownerKey")?,
            state: fields.get("state").and_then(|s| SessionState::parse(s))?,
            created_at: number("createdAt")?,
            expires_at: number("expiresAt")?,
            broker: text("broker")?,
            last_seq: number("lastSeq").unwrap_or(0.0) as u64,
            tool_call_count: number("toolCallCount").unwrap_or(0.0) as u64,
            encrypted: fields.get("encrypted").is_some_and(|v| v == "1"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_fields_and_refuses_partial_entries() {
        let mut fields: HashMap<String, String> = [
            ("id", "s_1"),
            ("owner", r#"{"id":"anonymous","type":"anonymous"}"#),
            ("ownerKey", "anonymous"),
            ("state", "waiting_for_tool"),
            ("createdAt", "1000"),
            ("expiresAt", "61000"),
            ("broker", "b1"),
            ("lastSeq", "7"),
            ("toolCallCount", "2"),
            ("encrypted", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let record = SharedRecord::from_fields(&fields).unwrap();
        assert_eq!(record.state, SessionState::WaitingForTool);
        assert_eq!((record.last_seq, record.tool_call_count, record.encrypted), (7, 2, false));
        fields.remove("broker");
        assert_eq!(SharedRecord::from_fields(&fields), None);
    }
}
