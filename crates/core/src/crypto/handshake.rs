//! The key agreement: a ClientHello in, a ServerHello out, and the same two session keys
//! on both ends.

use serde_json::Value;

use super::KEY_ID_PREFIX;
use super::ecdh::EphemeralKeyPair;
use super::error::CryptoError;
use super::hello::{parse_client_hello, parse_server_hello, server_hello_json};
use super::kdf::{SessionKeys, derive_session_keys};

/// What the server keeps after a handshake. The server's ephemeral secret is already gone:
/// only the derived keys are needed from here on, and dropping it early limits exposure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHandshake {
    pub key_id: String,
    pub server_hello_json: String,
    pub keys: SessionKeys,
}

/// What a client keeps after reading the ServerHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHandshake {
    pub key_id: String,
    pub keys: SessionKeys,
}

/// `k_` + a lowercase UUID v4, the original's key id format.
pub fn new_key_id() -> String {
    format!("{KEY_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

/// The server side: validates the ClientHello, answers with a fresh ephemeral key and key id,
/// and derives the session keys salted with `session_id`.
pub fn accept_client_hello(client_hello: &Value, session_id: &str) -> Result<ServerHandshake, CryptoError> {
    accept_client_hello_with(client_hello, session_id, &EphemeralKeyPair::generate(), new_key_id())
}

// Split out so tests can pin the server key and key id and compare exact bytes.
fn accept_client_hello_with(
    client_hello: &Value,
    session_id: &str,
    server: &EphemeralKeyPair,
    key_id: String,
) -> Result<ServerHandshake, CryptoError> {
    let hello = parse_client_hello(client_hello)?;
    let secret = server.shared_secret(&hello.client_ephemeral_pub_key_b64)?;
    Ok(ServerHandshake {
        server_hello_json: server_hello_json(&server.public_key_b64(), &key_id),
        key_id,
        keys: derive_session_keys(&secret, session_id),
    })
}

/// The client side: validates the ServerHello and derives the same session keys the server did.
pub fn accept_server_hello(
    client: &EphemeralKeyPair,
    server_hello: &Value,
    session_id: &str,
) -> Result<ClientHandshake, CryptoError> {
    let hello = parse_server_hello(server_hello)?;
    let secret = client.shared_secret(&hello.server_ephemeral_pub_key_b64)?;
    Ok(ClientHandshake { key_id: hello.key_id, keys: derive_session_keys(&secret, session_id) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::envelope::{EventEncryptor, open_envelope};
    use crate::crypto::error::*;
    use crate::crypto::hello::client_hello_json;
    use crate::crypto::kdf::derive_key;
    use crate::crypto::{HKDF_INFO_CLIENT_TO_SERVER, HKDF_INFO_SERVER_TO_CLIENT};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    fn client_hello_for(client: &EphemeralKeyPair) -> Value {
        serde_json::from_str(&client_hello_json(&client.public_key_b64())).unwrap()
    }

    fn pair_from_jwk_d(d: &str) -> EphemeralKeyPair {
        let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(d).unwrap().try_into().unwrap();
        EphemeralKeyPair::from_secret_bytes(&bytes).unwrap()
    }

    #[test]
    fn full_round_trip() {
        let session_id = "s_9b2f0c64-5d7e-4a57-8f3e-0e6b6d3a1c22";
        let client = EphemeralKeyPair::generate();

        let server = accept_client_hello(&client_hello_for(&client), session_id).unwrap();
        let server_hello: Value = serde_json::from_str(&server.server_hello_json).unwrap();
        assert_eq!(server_hello["keyId"], server.key_id.as_str());

        let client_side = accept_server_hello(&client, &server_hello, session_id).unwrap();
        assert_eq!(client_side.key_id, server.key_id);
        assert_eq!(client_side.keys, server.keys);

        let inner = r#"{"protocolVersion":2,"sessionId":"s_x","seq":3,"type":"final","payload":{"ok":true}}"#;
        let s2c = EventEncryptor::new(server.keys.server_to_client, server.key_id.clone());
        let envelope = s2c.envelope(session_id, 3, inner).unwrap();
        assert_eq!(open_envelope(&client_side.keys.server_to_client, &envelope).unwrap(), inner);
        // The other direction's key must not open it.
        assert_eq!(
            open_envelope(&client_side.keys.client_to_server, &envelope).unwrap_err().code,
            ENCRYPTION_DECRYPTION_FAILED
        );
    }

    #[test]
    fn server_side_is_exact_for_known_keys() {
        // The contract's ECDH vector, carried through the handshake.
        let client = pair_from_jwk_d("p5ojTF7I9N_a2JmdJnhABIfpvZCmlZ1Anzx2TjgCkx0");
        let server = pair_from_jwk_d("tVOH1gUaNCv30_ExUMQeuERNg6lOCkWK2HPssKP2bR4");
        let done =
            accept_client_hello_with(&client_hello_for(&client), "s_test", &server, "k_test".to_owned())
                .unwrap();
        assert_eq!(
            done.server_hello_json,
            r#"{"protocolVersion":2,"serverEphemeralPubKeyB64":"BGlLzL402ccyOXPKMLAyXD3QL/CDHlxKccmbe8TxfAcu5fXFYPfMlmxk1RhCjCXDH0goLkDGKafGjzvZ/HBiw3I=","curve":"P-256","selectedAlgorithm":"AES-GCM-256","kdf":"HKDF-SHA-256","keyId":"k_test"}"#
        );
        let shared = crate::crypto::from_base64("3oVRGet5MZIxa8KiViGskZ+QiUoCw9SrpUNT6Vt34sA=").unwrap();
        assert_eq!(
            done.keys.client_to_server,
            derive_key(&shared, Some(b"s_test"), HKDF_INFO_CLIENT_TO_SERVER)
        );
        assert_eq!(
            done.keys.server_to_client,
            derive_key(&shared, Some(b"s_test"), HKDF_INFO_SERVER_TO_CLIENT)
        );
    }

    #[test]
    fn session_id_salts_the_keys() {
        let client = EphemeralKeyPair::generate();
        let server = EphemeralKeyPair::generate();
        let hello = client_hello_for(&client);
        let a = accept_client_hello_with(&hello, "s_a", &server, "k_1".to_owned()).unwrap();
        let b = accept_client_hello_with(&hello, "s_b", &server, "k_1".to_owned()).unwrap();
        assert_ne!(a.keys, b.keys);
        let server_hello: Value = serde_json::from_str(&a.server_hello_json).unwrap();
        // A client that thinks it is in another session ends up with other keys.
        let wrong = accept_server_hello(&client, &server_hello, "s_b").unwrap();
        assert_ne!(wrong.keys, a.keys);
    }

    #[test]
    fn key_ids_are_k_plus_uuid_v4() {
        let id = new_key_id();
        assert_eq!(id.len(), 38);
        let uuid = uuid::Uuid::parse_str(id.strip_prefix("k_").unwrap()).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(id, id.to_lowercase());
        assert_ne!(new_key_id(), id);
    }

    fn accept_err(hello: Value) -> CryptoError {
        accept_client_hello(&hello, "s_test").unwrap_err()
    }

    fn valid_hello() -> Value {
        client_hello_for(&EphemeralKeyPair::generate())
    }

    #[test]
    fn rejects_bad_base64_key() {
        let mut hello = valid_hello();
        hello["clientEphemeralPubKeyB64"] = json!("%%%");
        let err = accept_err(hello);
        assert_eq!(err.code, ENCRYPTION_INVALID_PUBLIC_KEY);
        assert!(err.message.starts_with("Failed to import public key: "), "{}", err.message);
    }

    #[test]
    fn rejects_point_off_the_curve() {
        let mut point = [0u8; 65];
        point[0] = 0x04;
        point[32] = 1;
        point[64] = 1;
        let mut hello = valid_hello();
        hello["clientEphemeralPubKeyB64"] = json!(crate::crypto::to_base64(&point));
        let err = accept_err(hello);
        assert_eq!(err.code, ENCRYPTION_INVALID_PUBLIC_KEY);
        assert_eq!(err.message, "Failed to import public key: point is not on the P-256 curve");
    }

    #[test]
    fn rejects_wrong_curve_and_missing_algorithm() {
        let mut hello = valid_hello();
        hello["curve"] = json!("P-384");
        assert_eq!(accept_err(hello).code, ENCRYPTION_UNSUPPORTED_ALGORITHM);
        let mut hello = valid_hello();
        hello["supportedAlgorithms"] = json!(["AES-CBC-256"]);
        assert_eq!(accept_err(hello).code, ENCRYPTION_UNSUPPORTED_ALGORITHM);
    }

    #[test]
    fn rejects_missing_fields_and_wrong_version() {
        for key in ["protocolVersion", "clientEphemeralPubKeyB64", "curve", "supportedAlgorithms"] {
            let mut hello = valid_hello();
            hello.as_object_mut().unwrap().remove(key);
            let err = accept_err(hello);
            assert_eq!(err.code, ENCRYPTION_HANDSHAKE_FAILED, "{key}");
            assert_eq!(err.message, format!("Invalid ClientHello: missing {key}"));
        }
        let mut hello = valid_hello();
        hello["protocolVersion"] = json!(1);
        assert_eq!(accept_err(hello).code, ENCRYPTION_HANDSHAKE_FAILED);
        assert_eq!(accept_err(json!(null)).code, ENCRYPTION_HANDSHAKE_FAILED);
    }

    #[test]
    fn client_rejects_a_bad_server_hello() {
        let client = EphemeralKeyPair::generate();
        let server = accept_client_hello(&client_hello_for(&client), "s_1").unwrap();
        let mut hello: Value = serde_json::from_str(&server.server_hello_json).unwrap();
        hello["serverEphemeralPubKeyB64"] = json!("AAAA");
        let err = accept_server_hello(&client, &hello, "s_1").unwrap_err();
        assert_eq!(err.code, ENCRYPTION_INVALID_PUBLIC_KEY);
        hello["selectedAlgorithm"] = json!("AES-GCM-128");
        let err = accept_server_hello(&client, &hello, "s_1").unwrap_err();
        assert_eq!(err.code, ENCRYPTION_UNSUPPORTED_ALGORITHM);
    }
}
