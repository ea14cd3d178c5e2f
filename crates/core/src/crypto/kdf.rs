//! HKDF-SHA-256 and the two session keys, one per stream direction.

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;

use super::{HKDF_INFO_CLIENT_TO_SERVER, HKDF_INFO_SERVER_TO_CLIENT};

/// HKDF-SHA-256 to 32 bytes. `salt: None` means 32 zero bytes, as the original's
/// `deriveKey(secret, null, info)`; `info` is used as its UTF-8 bytes.
pub fn derive_key(secret: &[u8], salt: Option<&[u8]>, info: &str) -> [u8; 32] {
    let hkdf = Hkdf::<Sha256>::new(salt, secret);
    let mut key = [0u8; 32];
    hkdf.expand(info.as_bytes(), &mut key).expect("32 bytes is within HKDF-SHA-256's 8160-byte output limit");
    key
}

/// One key per direction, so that a message can never be reflected back to its sender
/// and still authenticate.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    pub client_to_server: [u8; 32],
    pub server_to_client: [u8; 32],
}

// Keys must not end up in logs through a stray `{:?}`.
impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys { .. }")
    }
}

/// The original's `deriveSessionKeys`: the salt is the session id's UTF-8 bytes, which binds
/// the keys to this one session even if an ECDH secret were ever reused.
pub fn derive_session_keys(secret: &[u8; 32], session_id: &str) -> SessionKeys {
    let salt = Some(session_id.as_bytes());
    SessionKeys {
        client_to_server: derive_key(secret, salt, HKDF_INFO_CLIENT_TO_SERVER),
        server_to_client: derive_key(secret, salt, HKDF_INFO_SERVER_TO_CLIENT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn ikm() -> [u8; 32] {
        std::array::from_fn(|i| i as u8)
    }

    #[test]
    fn session_keys_match_the_contract_vectors() {
        let keys = derive_session_keys(&ikm(), "s_test");
        assert_eq!(
            hex(&keys.client_to_server),
            "39387f500612f538fa21847fb4631cb3c47189e7da3f097330cc716b6bccbae1"
        );
        assert_eq!(
            hex(&keys.server_to_client),
            "305791e42e8ce59618213737a69a01ac64738c1069ee6ba592f92343d4a57e46"
        );
    }

    #[test]
    fn derive_key_is_the_building_block() {
        let keys = derive_session_keys(&ikm(), "s_test");
        assert_eq!(derive_key(&ikm(), Some(b"s_test"), "enclavejs-c2s-enc"), keys.client_to_server);
    }

    #[test]
    fn no_salt_is_32_zero_bytes() {
        assert_eq!(derive_key(&ikm(), None, "info"), derive_key(&ikm(), Some(&[0u8; 32]), "info"));
        assert_ne!(derive_key(&ikm(), None, "info"), derive_key(&ikm(), Some(b"s_test"), "info"));
    }

    #[test]
    fn keys_depend_on_session_and_direction() {
        let a = derive_session_keys(&ikm(), "s_a");
        let b = derive_session_keys(&ikm(), "s_b");
        assert_ne!(a, b);
        assert_ne!(a.client_to_server, a.server_to_client);
    }

    #[test]
    fn debug_does_not_leak_keys() {
        let keys = derive_session_keys(&ikm(), "s_test");
        assert_eq!(format!("{keys:?}"), "SessionKeys { .. }");
    }
}
