//! The `enc` envelope that carries one encrypted stream event, and the per-direction
//! encryptor that numbers its nonces.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::Aes256Gcm;
use serde_json::Value;

use super::aead;
use super::encoding::{from_base64, json_string, to_base64};
use super::error::{CryptoError, ENCRYPTION_DECRYPTION_FAILED, ENCRYPTION_KEY_EXPIRED};
use super::nonce::{counter_nonce, random_nonce_prefix};
use super::{ENVELOPE_TYPE, MAX_MESSAGES_PER_KEY};
use crate::protocol::PROTOCOL_VERSION;

/// Encrypts `inner_event_json` (sent as-is, as the original's `JSON.stringify(innerEvent)`)
/// under an explicit nonce and wraps it in an envelope. For one-off messages and test
/// vectors; a stream should use [`EventEncryptor`], which never repeats a nonce.
pub fn seal_envelope(
    key: &[u8; 32],
    key_id: &str,
    session_id: &str,
    seq: u64,
    nonce: &[u8],
    inner_event_json: &str,
) -> Result<String, CryptoError> {
    let ciphertext = aead::encrypt(key, nonce, inner_event_json.as_bytes())?;
    Ok(envelope_text(session_id, seq, key_id, nonce, &ciphertext))
}

// Written by hand because clients of the original may compare envelopes as text, so the key
// order must be the original's object-literal order. `tagB64` is left out: the tag already
// ends the ciphertext and the original never sets it.
fn envelope_text(session_id: &str, seq: u64, key_id: &str, nonce: &[u8], ciphertext: &[u8]) -> String {
    format!(
        r#"{{"protocolVersion":{PROTOCOL_VERSION},"sessionId":{},"seq":{seq},"type":{},"payload":{{"kid":{},"nonceB64":{},"ciphertextB64":{}}}}}"#,
        json_string(session_id),
        json_string(ENVELOPE_TYPE),
        json_string(key_id),
        json_string(&to_base64(nonce)),
        json_string(&to_base64(ciphertext)),
    )
}

/// The inner event JSON text of an envelope (itself JSON text) under `key`. Every failure,
/// malformed envelope included, is `ENCRYPTION_DECRYPTION_FAILED`: to the reader they all
/// mean "this message cannot be trusted".
pub fn open_envelope(key: &[u8; 32], envelope_json: &str) -> Result<String, CryptoError> {
    let envelope: Value = serde_json::from_str(envelope_json).map_err(|_| malformed("not valid JSON"))?;
    if envelope.get("type").and_then(Value::as_str) != Some(ENVELOPE_TYPE) {
        return Err(malformed("type must be \"enc\""));
    }
    let payload =
        envelope.get("payload").filter(|p| p.is_object()).ok_or_else(|| malformed("missing payload"))?;
    let field = |name: &str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| malformed(&format!("payload.{name} must be a non-empty string")))
    };
    field("kid")?;
    let nonce =
        from_base64(field("nonceB64")?).ok_or_else(|| malformed("payload.nonceB64 is not valid base64"))?;
    let ciphertext = from_base64(field("ciphertextB64")?)
        .ok_or_else(|| malformed("payload.ciphertextB64 is not valid base64"))?;
    let plaintext = aead::decrypt(key, &nonce, &ciphertext)?;
    String::from_utf8(plaintext).map_err(|_| {
        CryptoError::new(ENCRYPTION_DECRYPTION_FAILED, "Decryption failed: plaintext is not valid UTF-8")
    })
}

fn malformed(detail: &str) -> CryptoError {
    CryptoError::new(ENCRYPTION_DECRYPTION_FAILED, format!("Invalid encrypted envelope: {detail}"))
}

/// Seals the events of one stream direction under one key, with counter nonces
/// (the original's `SessionEncryptionContext`). Shared by reference across tasks: the
/// counter is atomic, so concurrent callers still get distinct nonces.
pub struct EventEncryptor {
    cipher: Aes256Gcm,
    key_id: String,
    prefix: [u8; 8],
    sent: AtomicU64,
}

impl EventEncryptor {
    /// An encryptor with a random nonce prefix, so that a key accidentally shared by two
    /// encryptors still does not give two messages the same nonce.
    pub fn new(key: [u8; 32], key_id: String) -> Self {
        Self::with_prefix(key, key_id, random_nonce_prefix())
    }

    /// An encryptor with a chosen nonce prefix, for reproducible output in tests.
    pub fn with_prefix(key: [u8; 32], key_id: String, prefix: [u8; 8]) -> Self {
        Self { cipher: aead::cipher(&key), key_id, prefix, sent: AtomicU64::new(0) }
    }

    /// Skips ahead to `counter`, to reach the rotation limit without 2^30 encryptions.
    #[cfg(test)]
    fn with_counter(self, counter: u64) -> Self {
        self.sent.store(counter, Ordering::SeqCst);
        self
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// How many envelopes this key has sealed; also the counter of the next nonce.
    pub fn messages_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// True once the key has sealed [`MAX_MESSAGES_PER_KEY`] messages; `envelope` then fails.
    pub fn needs_rotation(&self) -> bool {
        self.messages_sent() >= MAX_MESSAGES_PER_KEY
    }

    /// Seals `inner_event_json` under the next counter nonce and returns the envelope text.
    /// Fails with `ENCRYPTION_KEY_EXPIRED` once the key has reached its message limit.
    pub fn envelope(
        &self,
        session_id: &str,
        seq: u64,
        inner_event_json: &str,
    ) -> Result<String, CryptoError> {
        // Claiming the counter with one compare-and-swap is what keeps nonces unique under
        // concurrency, and refusing at the limit keeps the counter from ever passing it.
        let counter = self
            .sent
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < MAX_MESSAGES_PER_KEY).then_some(n + 1))
            .map_err(|_| {
                CryptoError::new(ENCRYPTION_KEY_EXPIRED, "Key needs rotation: nonce limit reached")
            })?;
        let nonce = counter_nonce(&self.prefix, counter)?;
        let ciphertext = aead::seal(&self.cipher, &nonce, inner_event_json.as_bytes())?;
        Ok(envelope_text(session_id, seq, &self.key_id, &nonce, &ciphertext))
    }
}

// Neither the key nor its expanded schedule may reach a log.
impl fmt::Debug for EventEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventEncryptor")
            .field("key_id", &self.key_id)
            .field("messages_sent", &self.messages_sent())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::kdf::derive_session_keys;

    const HEARTBEAT: &str = r#"{"protocolVersion":2,"sessionId":"s_test","seq":1,"type":"heartbeat","payload":{"ts":"2025-01-01T00:00:00.000Z"}}"#;
    const ENVELOPE: &str = r#"{"protocolVersion":2,"sessionId":"s_test","seq":1,"type":"enc","payload":{"kid":"k_test","nonceB64":"AQIDBAUGBwgJCgsM","ciphertextB64":"jGdSi4GHVYeMdOMLbMSVjwmyHkTWNe7FiGZom5aG+Ky+ZSeYD8YIcS7cPRCty49kdfdJPRkCwsRMd5S3xRrKFlnnm6lNv9cqgzTsFtJ7h1v0fhQClgPv4drrYl5I4RiR5cPaynKdC7mzwSssgkZWtCScHw/TRa84IWLx9tgiYr7w"}}"#;
    const NONCE: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    fn s2c() -> [u8; 32] {
        derive_session_keys(&std::array::from_fn(|i| i as u8), "s_test").server_to_client
    }

    fn nonce_of(envelope: &str) -> Vec<u8> {
        let value: Value = serde_json::from_str(envelope).unwrap();
        from_base64(value["payload"]["nonceB64"].as_str().unwrap()).unwrap()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sealed_envelope_matches_the_contract_vector() {
        let envelope = seal_envelope(&s2c(), "k_test", "s_test", 1, &NONCE, HEARTBEAT).unwrap();
        assert_eq!(envelope, ENVELOPE);
    }

    #[test]
    fn contract_vector_opens() {
        assert_eq!(open_envelope(&s2c(), ENVELOPE).unwrap(), HEARTBEAT);
    }

    #[test]
    fn successive_envelopes_count_up_from_zero() {
        let enc = EventEncryptor::with_prefix(s2c(), "k_test".to_owned(), [0xaa; 8]);
        for expected in 0..3u32 {
            let envelope = enc.envelope("s_test", 1, HEARTBEAT).unwrap();
            let nonce = nonce_of(&envelope);
            assert_eq!(&nonce[..8], &[0xaa; 8]);
            assert_eq!(&nonce[8..], &expected.to_be_bytes());
            assert_eq!(open_envelope(&s2c(), &envelope).unwrap(), HEARTBEAT);
        }
        assert_eq!(enc.messages_sent(), 3);
    }

    #[test]
    fn counter_258_is_the_contract_nonce() {
        let enc = EventEncryptor::with_prefix(s2c(), "k_test".to_owned(), [0xaa; 8]).with_counter(258);
        let envelope = enc.envelope("s_test", 1, HEARTBEAT).unwrap();
        let nonce = nonce_of(&envelope);
        assert_eq!(hex(&nonce), "aaaaaaaaaaaaaaaa00000102");
        // Same bytes as sealing with that nonce directly: the counter path adds nothing else.
        assert_eq!(envelope, seal_envelope(&s2c(), "k_test", "s_test", 1, &nonce, HEARTBEAT).unwrap());
        assert_eq!(enc.messages_sent(), 259);
    }

    #[test]
    fn rotation_is_required_at_the_limit() {
        let enc = EventEncryptor::with_prefix(s2c(), "k_1".to_owned(), [0; 8])
            .with_counter(MAX_MESSAGES_PER_KEY - 1);
        assert!(!enc.needs_rotation());
        let last = enc.envelope("s_test", 1, "{}").unwrap();
        assert_eq!(hex(&nonce_of(&last)[8..]), "3fffffff");
        assert!(enc.needs_rotation());
        for _ in 0..2 {
            let err = enc.envelope("s_test", 2, "{}").unwrap_err();
            assert_eq!(err.code, ENCRYPTION_KEY_EXPIRED);
            assert_eq!(err.message, "Key needs rotation: nonce limit reached");
        }
        assert_eq!(enc.messages_sent(), MAX_MESSAGES_PER_KEY);
        assert_eq!(MAX_MESSAGES_PER_KEY, 1_073_741_824);
    }

    #[test]
    fn new_uses_a_random_prefix() {
        let a = EventEncryptor::new(s2c(), "k_1".to_owned());
        let b = EventEncryptor::new(s2c(), "k_1".to_owned());
        let na = nonce_of(&a.envelope("s", 1, "{}").unwrap());
        let nb = nonce_of(&b.envelope("s", 1, "{}").unwrap());
        assert_ne!(na[..8], nb[..8]);
        assert_eq!(na[8..], [0, 0, 0, 0]);
        assert_eq!(a.key_id(), "k_1");
    }

    #[test]
    fn concurrent_callers_get_distinct_nonces() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EventEncryptor>();

        let enc = EventEncryptor::with_prefix(s2c(), "k_1".to_owned(), [7; 8]);
        let mut counters: Vec<u32> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        (0..50)
                            .map(|_| {
                                let nonce = nonce_of(&enc.envelope("s", 1, "{}").unwrap());
                                u32::from_be_bytes(nonce[8..].try_into().unwrap())
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
        });
        counters.sort_unstable();
        assert_eq!(counters, (0..400).collect::<Vec<u32>>());
    }

    #[test]
    fn strings_are_escaped_and_key_order_is_fixed() {
        let session_id = "s_\"quoted\"\n\u{7}é";
        let kid = "k_\\odd";
        let enc = EventEncryptor::with_prefix(s2c(), kid.to_owned(), [0; 8]);
        let envelope = enc.envelope(session_id, 42, HEARTBEAT).unwrap();
        assert!(
            envelope.starts_with(
                r#"{"protocolVersion":2,"sessionId":"s_\"quoted\"\n\u0007é","seq":42,"type":"enc","payload":{"kid":"k_\\odd","nonceB64":"AAAAAAAAAAAAAAAA","ciphertextB64":""#
            ),
            "{envelope}"
        );
        let parsed: Value = serde_json::from_str(&envelope).unwrap();
        assert_eq!(parsed["sessionId"], session_id);
        assert_eq!(parsed["payload"]["kid"], kid);
        let keys: Vec<&str> = parsed["payload"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["kid", "nonceB64", "ciphertextB64"]);
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let mut envelope: Value = serde_json::from_str(ENVELOPE).unwrap();
        let mut sealed = from_base64(envelope["payload"]["ciphertextB64"].as_str().unwrap()).unwrap();
        sealed[10] ^= 0x20;
        envelope["payload"]["ciphertextB64"] = Value::String(to_base64(&sealed));
        let err = open_envelope(&s2c(), &envelope.to_string()).unwrap_err();
        assert_eq!(err.code, ENCRYPTION_DECRYPTION_FAILED);
        assert!(err.message.starts_with("Decryption failed: "), "{}", err.message);
        // And the untouched vector under another key.
        let mut other = s2c();
        other[0] ^= 1;
        assert_eq!(open_envelope(&other, ENVELOPE).unwrap_err().code, ENCRYPTION_DECRYPTION_FAILED);
    }

    #[test]
    fn wrong_nonce_length_in_an_envelope() {
        let envelope = ENVELOPE.replace("AQIDBAUGBwgJCgsM", "AQIDBAUGBwg=");
        let err = open_envelope(&s2c(), &envelope).unwrap_err();
        assert_eq!(err.code, ENCRYPTION_DECRYPTION_FAILED);
        assert_eq!(err.message, "Invalid nonce length: expected 12, got 8");
    }

    #[test]
    fn malformed_envelopes_are_rejected() {
        let cases = [
            ("{".to_owned(), "not valid JSON"),
            (ENVELOPE.replace(r#""type":"enc""#, r#""type":"heartbeat""#), "type must be \"enc\""),
            (r#"{"type":"enc","payload":[]}"#.to_owned(), "missing payload"),
            (ENVELOPE.replace(r#""kid":"k_test""#, r#""kid":"""#), "payload.kid must be a non-empty string"),
            (
                ENVELOPE.replace(r#""nonceB64":"AQIDBAUGBwgJCgsM","#, ""),
                "payload.nonceB64 must be a non-empty string",
            ),
            (
                ENVELOPE.replace("AQIDBAUGBwgJCgsM", "AQID*AUGBwgJCgsM"),
                "payload.nonceB64 is not valid base64",
            ),
            (
                ENVELOPE.replace(r#""ciphertextB64":"jG"#, r#""ciphertextB64":"-_"#),
                "payload.ciphertextB64 is not valid base64",
            ),
        ];
        for (envelope, detail) in cases {
            let err = open_envelope(&s2c(), &envelope).unwrap_err();
            assert_eq!(err.code, ENCRYPTION_DECRYPTION_FAILED, "{envelope}");
            assert_eq!(err.message, format!("Invalid encrypted envelope: {detail}"));
        }
    }

    #[test]
    fn non_utf8_plaintext_is_rejected() {
        let sealed = aead::encrypt(&s2c(), &NONCE, &[0xff, 0xfe]).unwrap();
        let envelope = envelope_text("s_test", 1, "k_test", &NONCE, &sealed);
        let err = open_envelope(&s2c(), &envelope).unwrap_err();
        assert_eq!(err.code, ENCRYPTION_DECRYPTION_FAILED);
        assert_eq!(err.message, "Decryption failed: plaintext is not valid UTF-8");
    }

    #[test]
    fn debug_hides_the_key() {
        let enc = EventEncryptor::with_prefix(s2c(), "k_1".to_owned(), [0; 8]);
        assert_eq!(format!("{enc:?}"), r#"EventEncryptor { key_id: "k_1", messages_sent: 0, .. }"#);
    }
}
