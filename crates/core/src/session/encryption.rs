//! A session's stream encryption, negotiated when it is created (the seed protocol's opt-in
//! handshake; the original broker never enables it). The request carries an
//! `EncryptionRequest {mode, clientHello?}`; the session then announces `{enabled: true,
//! keyId, serverHello}` in its (plaintext) `session_init`, and every later event of its
//! streams goes out as an `enc` envelope under the server-to-client key.

use serde_json::Value;

use crate::crypto::{self, CryptoError, EventEncryptor};

pub struct SessionEncryption {
    pub key_id: String,
    pub server_hello_json: String,
    pub encryptor: EventEncryptor,
}

impl std::fmt::Debug for SessionEncryption {
    // Key material stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionEncryption").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// Why a request's encryption could not be honoured: a malformed request (HTTP 400 with
/// `INVALID_REQUEST`) or a failed handshake that the client required (its crypto code).
#[derive(Debug, Clone, PartialEq)]
pub enum EncryptionRefusal {
    Invalid(String),
    Handshake(CryptoError),
}

/// `request` is the body's `encryption` value; `None` means plaintext. With mode `optional`
/// a handshake that fails falls back to plaintext, which `session_init` then says.
pub fn negotiate(
    request: Option<&Value>,
    session_id: &str,
) -> Result<Option<SessionEncryption>, EncryptionRefusal> {
    let request = match request {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(request)) => request,
        Some(_) => return Err(EncryptionRefusal::Invalid("\"encryption\" must be an object".into())),
    };
    let required = match request.get("mode").and_then(Value::as_str) {
        Some("disabled") => return Ok(None),
        Some("optional") => false,
        Some("required") => true,
        _ => {
            return Err(EncryptionRefusal::Invalid(
                "\"encryption.mode\" must be 'disabled', 'optional' or 'required'".into(),
            ));
        }
    };
    let handshake = match request.get("clientHello") {
        None | Some(Value::Null) => Err(CryptoError {
            code: "ENCRYPTION_HANDSHAKE_FAILED",
            message: "Encryption is required but the request has no clientHello".into(),
        }),
        Some(hello) => crypto::accept_client_hello(hello, session_id),
    };
    match handshake {
        Ok(handshake) => Ok(Some(SessionEncryption {
            encryptor: EventEncryptor::new(handshake.keys.server_to_client, handshake.key_id.clone()),
            key_id: handshake.key_id,
            server_hello_json: handshake.server_hello_json,
        })),
        Err(error) if required => Err(EncryptionRefusal::Handshake(error)),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::crypto::{EphemeralKeyPair, accept_server_hello, client_hello_json, open_envelope};

    fn hello(client: &EphemeralKeyPair) -> Value {
        serde_json::from_str(&client_hello_json(&client.public_key_b64())).unwrap()
    }

    #[test]
    fn a_required_handshake_gives_the_client_the_same_keys() {
        let client = EphemeralKeyPair::generate();
        let request = json!({"mode": "required", "clientHello": hello(&client)});
        let encryption = negotiate(Some(&request), "s_1").unwrap().expect("encrypted");
        let server_hello: Value = serde_json::from_str(&encryption.server_hello_json).unwrap();
        let keys = accept_server_hello(&client, &server_hello, "s_1").unwrap();
        assert_eq!(keys.key_id, encryption.key_id);
        let envelope = encryption.encryptor.envelope("s_1", 2, r#"{"seq":2}"#).unwrap();
        assert_eq!(open_envelope(&keys.keys.server_to_client, &envelope).unwrap(), r#"{"seq":2}"#);
    }

    #[test]
    fn plaintext_unless_asked_and_optional_falls_back() {
        let client = EphemeralKeyPair::generate();
        assert!(negotiate(None, "s_1").unwrap().is_none());
        assert!(negotiate(Some(&Value::Null), "s_1").unwrap().is_none());
        let disabled = json!({"mode": "disabled", "clientHello": hello(&client)});
        assert!(negotiate(Some(&disabled), "s_1").unwrap().is_none());
        let broken = json!({"mode": "optional", "clientHello": {"protocolVersion": 2}});
        assert!(negotiate(Some(&broken), "s_1").unwrap().is_none());
        assert!(negotiate(Some(&json!({"mode": "optional"})), "s_1").unwrap().is_none());
    }

    #[test]
    fn bad_requests_and_failed_required_handshakes_are_refused() {
        let invalid = |v: Value| match negotiate(Some(&v), "s_1") {
            Err(EncryptionRefusal::Invalid(message)) => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(invalid(json!("yes")), "\"encryption\" must be an object");
        assert_eq!(
            invalid(json!({"mode": "always"})),
            "\"encryption.mode\" must be 'disabled', 'optional' or 'required'"
        );
        match negotiate(Some(&json!({"mode": "required"})), "s_1") {
            Err(EncryptionRefusal::Handshake(e)) => assert_eq!(e.code, "ENCRYPTION_HANDSHAKE_FAILED"),
            other => panic!("{other:?}"),
        }
        let bad_key = json!({"mode": "required", "clientHello": {
            "protocolVersion": 2, "clientEphemeralPubKeyB64": "AAAA", "curve": "P-256", "supportedAlgorithms": ["AES-GCM-256"]}});
        match negotiate(Some(&bad_key), "s_1") {
            Err(EncryptionRefusal::Handshake(e)) => assert_eq!(e.code, "ENCRYPTION_INVALID_PUBLIC_KEY"),
            other => panic!("{other:?}"),
        }
    }
}
