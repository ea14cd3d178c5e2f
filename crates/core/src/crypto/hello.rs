//! The ClientHello and ServerHello messages: their exact JSON text and their validation.
//!
//! Validation follows the original's schemas (`ClientHelloSchema`, `ServerHelloSchema`):
//! unknown keys are ignored, a missing or mistyped field is a failed handshake, and a curve
//! or algorithm we do not speak is an unsupported algorithm. The public key itself is only
//! checked when it is used, in the ECDH step.

use serde_json::{Map, Value};

use super::encoding::json_string;
use super::error::{CryptoError, ENCRYPTION_HANDSHAKE_FAILED, ENCRYPTION_UNSUPPORTED_ALGORITHM};
use super::{ALGORITHM_AES_GCM_256, CURVE_P256, KDF_HKDF_SHA256};
use crate::protocol::PROTOCOL_VERSION;

/// A ClientHello that passed validation: P-256, protocol 2, and AES-GCM-256 among the
/// offered algorithms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    pub client_ephemeral_pub_key_b64: String,
    pub supported_algorithms: Vec<String>,
}

/// A ServerHello that passed validation: P-256, AES-GCM-256, HKDF-SHA-256, protocol 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    pub server_ephemeral_pub_key_b64: String,
    pub key_id: String,
}

/// The ClientHello text the original's `createClientHello` produces, in its key order.
pub fn client_hello_json(client_pub_key_b64: &str) -> String {
    format!(
        r#"{{"protocolVersion":{PROTOCOL_VERSION},"clientEphemeralPubKeyB64":{},"curve":{},"supportedAlgorithms":[{}]}}"#,
        json_string(client_pub_key_b64),
        json_string(CURVE_P256),
        json_string(ALGORITHM_AES_GCM_256),
    )
}

/// The ServerHello text the original's `createServerHello` produces, in its key order.
/// `signatureB64` is left out because the original never sets it.
pub fn server_hello_json(server_pub_key_b64: &str, key_id: &str) -> String {
    format!(
        r#"{{"protocolVersion":{PROTOCOL_VERSION},"serverEphemeralPubKeyB64":{},"curve":{},"selectedAlgorithm":{},"kdf":{},"keyId":{}}}"#,
        json_string(server_pub_key_b64),
        json_string(CURVE_P256),
        json_string(ALGORITHM_AES_GCM_256),
        json_string(KDF_HKDF_SHA256),
        json_string(key_id),
    )
}

pub fn parse_client_hello(value: &Value) -> Result<ClientHello, CryptoError> {
    let hello = Fields::of(value, "ClientHello")?;
    hello.protocol_version()?;
    let client_ephemeral_pub_key_b64 = hello.string("clientEphemeralPubKeyB64")?.to_owned();
    hello.curve()?;
    let supported_algorithms = hello.strings("supportedAlgorithms")?;
    if !supported_algorithms.iter().any(|a| a == ALGORITHM_AES_GCM_256) {
        return Err(CryptoError::new(
            ENCRYPTION_UNSUPPORTED_ALGORITHM,
            format!(
                "Unsupported algorithms: client offers [{}], server requires {ALGORITHM_AES_GCM_256}",
                supported_algorithms.join(", ")
            ),
        ));
    }
    Ok(ClientHello { client_ephemeral_pub_key_b64, supported_algorithms })
}

pub fn parse_server_hello(value: &Value) -> Result<ServerHello, CryptoError> {
    let hello = Fields::of(value, "ServerHello")?;
    hello.protocol_version()?;
    let server_ephemeral_pub_key_b64 = hello.string("serverEphemeralPubKeyB64")?.to_owned();
    hello.curve()?;
    hello.expect_supported("selectedAlgorithm", ALGORITHM_AES_GCM_256)?;
    hello.expect_supported("kdf", KDF_HKDF_SHA256)?;
    let key_id = hello.string("keyId")?.to_owned();
    Ok(ServerHello { server_ephemeral_pub_key_b64, key_id })
}

/// Field access with the error messages both hellos share.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    what: &'static str,
}

impl<'a> Fields<'a> {
    fn of(value: &'a Value, what: &'static str) -> Result<Self, CryptoError> {
        match value {
            Value::Object(object) => Ok(Self { object, what }),
            _ => Err(handshake_failed(what, "expected a JSON object")),
        }
    }

    // `null` counts as absent: a JS client that sets a field to `undefined` or `null`
    // means the same thing.
    fn get(&self, name: &str) -> Result<&'a Value, CryptoError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Err(handshake_failed(self.what, &format!("missing {name}"))),
            Some(value) => Ok(value),
        }
    }

    fn protocol_version(&self) -> Result<(), CryptoError> {
        let version = self.get("protocolVersion")?;
        // `as_f64` so that `2.0`, which is `2` to JavaScript, passes too.
        if version.as_f64() == Some(f64::from(PROTOCOL_VERSION)) {
            Ok(())
        } else {
            Err(handshake_failed(
                self.what,
                &format!("unsupported protocolVersion {version}, expected {PROTOCOL_VERSION}"),
            ))
        }
    }

    fn string(&self, name: &str) -> Result<&'a str, CryptoError> {
        match self.get(name)? {
            Value::String(text) if !text.is_empty() => Ok(text),
            _ => Err(handshake_failed(self.what, &format!("{name} must be a non-empty string"))),
        }
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, CryptoError> {
        let bad = || handshake_failed(self.what, &format!("{name} must be a non-empty array of strings"));
        let Value::Array(items) = self.get(name)? else {
            return Err(bad());
        };
        if items.is_empty() {
            return Err(bad());
        }
        items.iter().map(|item| item.as_str().map(str::to_owned).ok_or_else(bad)).collect()
    }

    fn curve(&self) -> Result<(), CryptoError> {
        let curve = self.string("curve")?;
        if curve == CURVE_P256 {
            Ok(())
        } else {
            Err(CryptoError::new(ENCRYPTION_UNSUPPORTED_ALGORITHM, format!("Unsupported curve: {curve}")))
        }
    }

    fn expect_supported(&self, name: &str, supported: &str) -> Result<(), CryptoError> {
        let value = self.string(name)?;
        if value == supported {
            Ok(())
        } else {
            Err(CryptoError::new(ENCRYPTION_UNSUPPORTED_ALGORITHM, format!("Unsupported {name}: {value}")))
        }
    }
}

fn handshake_failed(what: &str, detail: &str) -> CryptoError {
    CryptoError::new(ENCRYPTION_HANDSHAKE_FAILED, format!("Invalid {what}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PUB: &str =
        "BB+Sa/O3WOC8u0rkOpQc7tSvc3LE+T9XuhxzINyoG39EQ43oAR9evb5DuptAoArTSoPj33AhOUz60hqzrOqysUM=";

    fn client_hello() -> Value {
        serde_json::from_str(&client_hello_json(PUB)).unwrap()
    }

    fn server_hello() -> Value {
        serde_json::from_str(&server_hello_json(PUB, "k_1")).unwrap()
    }

    fn with(mut hello: Value, key: &str, value: Option<Value>) -> Value {
        let object = hello.as_object_mut().unwrap();
        match value {
            Some(value) => object.insert(key.to_owned(), value),
            None => object.remove(key),
        };
        hello
    }

    #[test]
    fn client_hello_text_is_exact() {
        assert_eq!(
            client_hello_json(PUB),
            format!(
                r#"{{"protocolVersion":2,"clientEphemeralPubKeyB64":"{PUB}","curve":"P-256","supportedAlgorithms":["AES-GCM-256"]}}"#
            )
        );
    }

    #[test]
    fn server_hello_text_is_exact_and_escaped() {
        assert_eq!(
            server_hello_json(PUB, "k_0c6d2d1c-1d3f-4e5a-9b7c-2f1e0d9c8b7a"),
            format!(
                r#"{{"protocolVersion":2,"serverEphemeralPubKeyB64":"{PUB}","curve":"P-256","selectedAlgorithm":"AES-GCM-256","kdf":"HKDF-SHA-256","keyId":"k_0c6d2d1c-1d3f-4e5a-9b7c-2f1e0d9c8b7a"}}"#
            )
        );
        let odd = server_hello_json("x", "k_\"\n");
        assert!(odd.ends_with(r#""keyId":"k_\"\n"}"#), "{odd}");
        let parsed: Value = serde_json::from_str(&odd).unwrap();
        assert_eq!(parsed["keyId"], "k_\"\n");
    }

    #[test]
    fn hellos_parse_back() {
        assert_eq!(
            parse_client_hello(&client_hello()).unwrap(),
            ClientHello {
                client_ephemeral_pub_key_b64: PUB.to_owned(),
                supported_algorithms: vec!["AES-GCM-256".to_owned()],
            }
        );
        assert_eq!(
            parse_server_hello(&server_hello()).unwrap(),
            ServerHello { server_ephemeral_pub_key_b64: PUB.to_owned(), key_id: "k_1".to_owned() }
        );
    }

    #[test]
    fn client_hello_accepts_extra_algorithms_keys_and_a_float_version() {
        let hello = with(client_hello(), "supportedAlgorithms", Some(json!(["ChaCha20", "AES-GCM-256"])));
        let hello = with(hello, "extra", Some(json!(true)));
        let hello = with(hello, "protocolVersion", Some(json!(2.0)));
        assert!(parse_client_hello(&hello).is_ok());
    }

    fn client_err(hello: Value) -> CryptoError {
        parse_client_hello(&hello).unwrap_err()
    }

    #[test]
    fn client_hello_must_be_an_object() {
        let err = client_err(json!([1]));
        assert_eq!(err.code, ENCRYPTION_HANDSHAKE_FAILED);
        assert_eq!(err.message, "Invalid ClientHello: expected a JSON object");
    }

    #[test]
    fn client_hello_protocol_version_must_be_2() {
        for (version, message) in [
            (Some(json!(1)), "Invalid ClientHello: unsupported protocolVersion 1, expected 2"),
            (Some(json!("2")), "Invalid ClientHello: unsupported protocolVersion \"2\", expected 2"),
            (None, "Invalid ClientHello: missing protocolVersion"),
        ] {
            let err = client_err(with(client_hello(), "protocolVersion", version));
            assert_eq!(err.code, ENCRYPTION_HANDSHAKE_FAILED);
            assert_eq!(err.message, message);
        }
    }

    #[test]
    fn client_hello_missing_or_mistyped_fields() {
        for (key, value, message) in [
            ("clientEphemeralPubKeyB64", None, "missing clientEphemeralPubKeyB64"),
            ("clientEphemeralPubKeyB64", Some(Value::Null), "missing clientEphemeralPubKeyB64"),
            (
                "clientEphemeralPubKeyB64",
                Some(json!(5)),
                "clientEphemeralPubKeyB64 must be a non-empty string",
            ),
            (
                "clientEphemeralPubKeyB64",
                Some(json!("")),
                "clientEphemeralPubKeyB64 must be a non-empty string",
            ),
            ("curve", None, "missing curve"),
            ("supportedAlgorithms", None, "missing supportedAlgorithms"),
            (
                "supportedAlgorithms",
                Some(json!([])),
                "supportedAlgorithms must be a non-empty array of strings",
            ),
            (
                "supportedAlgorithms",
                Some(json!("AES-GCM-256")),
                "supportedAlgorithms must be a non-empty array of strings",
            ),
            (
                "supportedAlgorithms",
                Some(json!(["AES-GCM-256", 1])),
                "supportedAlgorithms must be a non-empty array of strings",
            ),
        ] {
            let err = client_err(with(client_hello(), key, value));
            assert_eq!(err.code, ENCRYPTION_HANDSHAKE_FAILED, "{key}");
            assert_eq!(err.message, format!("Invalid ClientHello: {message}"));
        }
    }

    #[test]
    fn client_hello_wrong_curve_is_unsupported() {
        let err = client_err(with(client_hello(), "curve", Some(json!("P-384"))));
        assert_eq!(err.code, ENCRYPTION_UNSUPPORTED_ALGORITHM);
        assert_eq!(err.message, "Unsupported curve: P-384");
    }

    #[test]
    fn client_hello_without_aes_gcm_256_is_unsupported() {
        let hello = with(client_hello(), "supportedAlgorithms", Some(json!(["AES-GCM-128", "ChaCha20"])));
        let err = client_err(hello);
        assert_eq!(err.code, ENCRYPTION_UNSUPPORTED_ALGORITHM);
        assert_eq!(
            err.message,
            "Unsupported algorithms: client offers [AES-GCM-128, ChaCha20], server requires AES-GCM-256"
        );
    }

    #[test]
    fn server_hello_rejections() {
        for (key, value, code, message) in [
            (
                "protocolVersion",
                Some(json!(1)),
                ENCRYPTION_HANDSHAKE_FAILED,
                "Invalid ServerHello: unsupported protocolVersion 1, expected 2",
            ),
            (
                "serverEphemeralPubKeyB64",
                None,
                ENCRYPTION_HANDSHAKE_FAILED,
                "Invalid ServerHello: missing serverEphemeralPubKeyB64",
            ),
            ("curve", Some(json!("P-521")), ENCRYPTION_UNSUPPORTED_ALGORITHM, "Unsupported curve: P-521"),
            (
                "selectedAlgorithm",
                Some(json!("AES-GCM-128")),
                ENCRYPTION_UNSUPPORTED_ALGORITHM,
                "Unsupported selectedAlgorithm: AES-GCM-128",
            ),
            ("kdf", Some(json!("HKDF")), ENCRYPTION_UNSUPPORTED_ALGORITHM, "Unsupported kdf: HKDF"),
            ("keyId", None, ENCRYPTION_HANDSHAKE_FAILED, "Invalid ServerHello: missing keyId"),
            (
                "keyId",
                Some(json!("")),
                ENCRYPTION_HANDSHAKE_FAILED,
                "Invalid ServerHello: keyId must be a non-empty string",
            ),
        ] {
            let err = parse_server_hello(&with(server_hello(), key, value)).unwrap_err();
            assert_eq!((err.code, err.message.as_str()), (code, message));
        }
        let err = parse_server_hello(&json!("hello")).unwrap_err();
        assert_eq!(err.message, "Invalid ServerHello: expected a JSON object");
    }
}
