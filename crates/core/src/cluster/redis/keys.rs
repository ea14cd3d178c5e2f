//! Key and channel names. Everything of one session shares the hash tag `{s:<id>}` and
//! everything of one broker `{b:<id>}`, so a Redis Cluster keeps each group in one slot
//! (the Lua scripts touch one group at a time). The two indexes are single keys.
//!
//! | name | type | what |
//! |---|---|---|
//! | `<p>{s:<id>}:session` | hash | the registry entry (`record.rs`), expiring at the session's `expiresAt` |
//! | `<p>{s:<id>}:events` | stream | the event log: one entry per written batch, id `<last seq>-0`, fields `<seq>:<type>` → the line clients get |
//! | `<p>{s:<id>}:events` | channel | the last stored seq, published after each batch (wakes remote streams) |
//! | `<p>sessions` | sorted set | every session id, scored by `expiresAt` (expired ones pruned every minute) |
//! | `<p>{o:<sha256 of owner key>}:sessions` | sorted set | one principal's session ids, scored by `expiresAt`, expiring with the newest |
//! | `<p>brokers` | hash | broker id → `{"renewedAt", "leaseMs"}` |
//! | `<p>{b:<id>}:lease` | string | the broker's lease, expiring `leaseMs` after its last renewal |
//! | `<p>{b:<id>}:sessions` | set | ids of the sessions the broker runs and has not finished |
//! | `<p>{b:<id>}:lost` | string | set by the broker that finished a lost broker's sessions |
//! | `<p>{b:<id>}:reaper` | string | who is finishing a lost broker's sessions (a lock) |
//! | `<p>{b:<id>}:inbox` | channel | commands for the broker (`inbox.rs`) |
//! | `<p>{r:<sha256 of bucket and key>}` | string | a rate-limit counter, expiring with its window |
//! | `<p>salt` | string | the salt of credential principals, the same on every broker |

use sha2::{Digest, Sha256};

pub struct Keys {
    prefix: String,
}

fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys { prefix: prefix.to_string() }
    }

    pub fn session(&self, id: &str) -> String {
        format!("{}{{s:{id}}}:session", self.prefix)
    }

    /// The event log; also the name of the channel its writes are announced on.
    pub fn events(&self, id: &str) -> String {
        format!("{}{{s:{id}}}:events", self.prefix)
    }

    pub fn all_sessions(&self) -> String {
        format!("{}sessions", self.prefix)
    }

    pub fn owned_sessions(&self, owner_key: &str) -> String {
        format!("{}{{o:{}}}:sessions", self.prefix, digest(&[owner_key]))
    }

    pub fn brokers(&self) -> String {
        format!("{}brokers", self.prefix)
    }

    pub fn lease(&self, broker: &str) -> String {
        format!("{}{{b:{broker}}}:lease", self.prefix)
    }

    pub fn broker_sessions(&self, broker: &str) -> String {
        format!("{}{{b:{broker}}}:sessions", self.prefix)
    }

    pub fn lost(&self, broker: &str) -> String {
        format!("{}{{b:{broker}}}:lost", self.prefix)
    }

    pub fn reaper(&self, broker: &str) -> String {
        format!("{}{{b:{broker}}}:reaper", self.prefix)
    }

    pub fn inbox(&self, broker: &str) -> String {
        format!("{}{{b:{broker}}}:inbox", self.prefix)
    }

    pub fn counter(&self, bucket: &str, key: &str) -> String {
        format!("{}{{r:{}}}", self.prefix, digest(&[bucket, key]))
    }

    pub fn salt(&self) -> String {
        format!("{}salt", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag Redis Cluster slots a key by.
    fn tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = open + key[open..].find('}').unwrap();
        &key[open + 1..close]
    }

    #[test]
    fn a_session_and_a_broker_each_keep_to_one_slot() {
        let keys = Keys::new("enclave:");
        for id in ["s_1", "odd}id", "a{b"] {
            assert_eq!(tag(&keys.session(id)), tag(&keys.events(id)));
        }
        assert_eq!(keys.session("s_1"), "enclave:{s:s_1}:session");
        let b = "b_1";
        let group = [keys.lease(b), keys.broker_sessions(b), keys.lost(b), keys.reaper(b), keys.inbox(b)];
        assert!(group.iter().all(|k| tag(k) == "b:b_1"));
        // Bucket and key are length-prefixed: no pair can pose as another.
        assert_ne!(keys.counter("ab", "c"), keys.counter("a", "bc"));
        assert_ne!(keys.owned_sessions("user:\"a\""), keys.owned_sessions("anonymous"));
    }
}
