//! Ephemeral P-256 key pairs and ECDH, with keys in WebCrypto's `raw` form.

use std::fmt;

use aes_gcm::aead::OsRng;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{FieldBytes, PublicKey, SecretKey};

use super::P256_PUBLIC_KEY_SIZE;
use super::encoding::{from_base64, to_base64};
use super::error::{CryptoError, ENCRYPTION_HANDSHAKE_FAILED, ENCRYPTION_INVALID_PUBLIC_KEY};

/// A P-256 key pair used for one handshake. The secret half never leaves this type and is
/// wiped on drop (by `p256::SecretKey`).
pub struct EphemeralKeyPair {
    secret: SecretKey,
    public: [u8; P256_PUBLIC_KEY_SIZE],
}

impl EphemeralKeyPair {
    /// A new key pair from the operating system's randomness.
    pub fn generate() -> Self {
        Self::from_secret(SecretKey::random(&mut OsRng))
    }

    /// A key pair from a known 32-byte big-endian scalar (a JWK `d`), for test vectors.
    /// Zero and values not below the curve order are rejected.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Result<Self, CryptoError> {
        let secret = SecretKey::from_bytes(&FieldBytes::from(*secret)).map_err(|_| {
            CryptoError::new(ENCRYPTION_HANDSHAKE_FAILED, "Invalid P-256 private key: scalar out of range")
        })?;
        Ok(Self::from_secret(secret))
    }

    fn from_secret(secret: SecretKey) -> Self {
        let mut public = [0u8; P256_PUBLIC_KEY_SIZE];
        public.copy_from_slice(secret.public_key().to_encoded_point(false).as_bytes());
        Self { secret, public }
    }

    /// The public key as an uncompressed SEC1 point, `0x04 || X || Y`.
    pub fn public_key_bytes(&self) -> [u8; P256_PUBLIC_KEY_SIZE] {
        self.public
    }

    /// The public key as the original sends it: the 65-byte point in padded base64.
    pub fn public_key_b64(&self) -> String {
        to_base64(&self.public)
    }

    /// ECDH with a peer's base64 public key. The result is the X coordinate of the shared
    /// point, which is what WebCrypto's `deriveBits(…, 256)` returns, so it is used as HKDF
    /// input without further hashing.
    pub fn shared_secret(&self, peer_b64: &str) -> Result<[u8; 32], CryptoError> {
        let peer = import_public_key(peer_b64)?;
        let shared = p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        let mut out = [0u8; 32];
        out.copy_from_slice(shared.raw_secret_bytes());
        Ok(out)
    }
}

impl fmt::Debug for EphemeralKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EphemeralKeyPair").field("public", &self.public_key_b64()).finish_non_exhaustive()
    }
}

/// Checks a peer key the way WebCrypto's `importKey('raw', …)` would: valid base64 of a
/// 65-byte uncompressed point that lies on P-256. Compressed points are refused because
/// the original only ever sends and expects the uncompressed form.
pub(crate) fn import_public_key(b64: &str) -> Result<PublicKey, CryptoError> {
    let invalid = |why: String| {
        CryptoError::new(ENCRYPTION_INVALID_PUBLIC_KEY, format!("Failed to import public key: {why}"))
    };
    let bytes = from_base64(b64).ok_or_else(|| invalid("invalid base64".to_owned()))?;
    if bytes.len() != P256_PUBLIC_KEY_SIZE || bytes[0] != 0x04 {
        return Err(invalid(format!(
            "expected a {P256_PUBLIC_KEY_SIZE}-byte uncompressed P-256 point, got {} bytes{}",
            bytes.len(),
            if bytes.first() == Some(&0x04) { "" } else { " not starting with 0x04" }
        )));
    }
    // Off-curve points must be refused: multiplying one by our scalar would leak bits of it
    // (the invalid-curve attack).
    PublicKey::from_sec1_bytes(&bytes).map_err(|_| invalid("point is not on the P-256 curve".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const CLIENT_D: &str = "p5ojTF7I9N_a2JmdJnhABIfpvZCmlZ1Anzx2TjgCkx0";
    const CLIENT_PUB: &str =
        "BB+Sa/O3WOC8u0rkOpQc7tSvc3LE+T9XuhxzINyoG39EQ43oAR9evb5DuptAoArTSoPj33AhOUz60hqzrOqysUM=";
    const SERVER_D: &str = "tVOH1gUaNCv30_ExUMQeuERNg6lOCkWK2HPssKP2bR4";
    const SERVER_PUB: &str =
        "BGlLzL402ccyOXPKMLAyXD3QL/CDHlxKccmbe8TxfAcu5fXFYPfMlmxk1RhCjCXDH0goLkDGKafGjzvZ/HBiw3I=";
    const SHARED: &str = "3oVRGet5MZIxa8KiViGskZ+QiUoCw9SrpUNT6Vt34sA=";

    fn pair_from_jwk_d(d: &str) -> EphemeralKeyPair {
        let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(d).unwrap().try_into().unwrap();
        EphemeralKeyPair::from_secret_bytes(&bytes).unwrap()
    }

    #[test]
    fn contract_vector_public_keys() {
        assert_eq!(pair_from_jwk_d(CLIENT_D).public_key_b64(), CLIENT_PUB);
        assert_eq!(pair_from_jwk_d(SERVER_D).public_key_b64(), SERVER_PUB);
    }

    #[test]
    fn contract_vector_shared_secret_from_both_sides() {
        let client = pair_from_jwk_d(CLIENT_D);
        let server = pair_from_jwk_d(SERVER_D);
        assert_eq!(to_base64(&client.shared_secret(SERVER_PUB).unwrap()), SHARED);
        assert_eq!(to_base64(&server.shared_secret(CLIENT_PUB).unwrap()), SHARED);
    }

    #[test]
    fn generated_pairs_agree_and_use_the_raw_format() {
        let a = EphemeralKeyPair::generate();
        let b = EphemeralKeyPair::generate();
        assert_ne!(a.public_key_bytes(), b.public_key_bytes());
        assert_eq!(a.public_key_bytes()[0], 0x04);
        assert_eq!(a.public_key_b64().len(), 88);
        assert_eq!(
            a.shared_secret(&b.public_key_b64()).unwrap(),
            b.shared_secret(&a.public_key_b64()).unwrap()
        );
    }

    #[test]
    fn bad_base64_is_an_invalid_public_key() {
        let pair = EphemeralKeyPair::generate();
        let err = pair.shared_secret("not base64!").unwrap_err();
        assert_eq!(err.code, ENCRYPTION_INVALID_PUBLIC_KEY);
        assert_eq!(err.message, "Failed to import public key: invalid base64");
    }

    #[test]
    fn point_off_the_curve_is_rejected() {
        let mut bytes = from_base64(SERVER_PUB).unwrap();
        bytes[64] ^= 0x01;
        let err = import_public_key(&to_base64(&bytes)).unwrap_err();
        assert_eq!(err.code, ENCRYPTION_INVALID_PUBLIC_KEY);
        assert_eq!(err.message, "Failed to import public key: point is not on the P-256 curve");
    }

    #[test]
    fn wrong_length_or_compressed_form_is_rejected() {
        let full = from_base64(SERVER_PUB).unwrap();
        let mut compressed = vec![0x02 | (full[64] & 1)];
        compressed.extend_from_slice(&full[1..33]);
        // The compressed form is a valid point, so this checks our format rule, not p256's.
        assert!(PublicKey::from_sec1_bytes(&compressed).is_ok());
        for bytes in [compressed, full[..64].to_vec(), [&full[..], &[0][..]].concat()] {
            let err = import_public_key(&to_base64(&bytes)).unwrap_err();
            assert_eq!(err.code, ENCRYPTION_INVALID_PUBLIC_KEY);
            assert!(err.message.starts_with("Failed to import public key: expected a 65-byte"));
        }
        let mut wrong_tag = full.clone();
        wrong_tag[0] = 0x06;
        assert_eq!(
            import_public_key(&to_base64(&wrong_tag)).unwrap_err().code,
            ENCRYPTION_INVALID_PUBLIC_KEY
        );
    }

    #[test]
    fn out_of_range_secret_is_rejected() {
        let err = EphemeralKeyPair::from_secret_bytes(&[0; 32]).unwrap_err();
        assert_eq!(err.code, ENCRYPTION_HANDSHAKE_FAILED);
        assert!(EphemeralKeyPair::from_secret_bytes(&[0xff; 32]).is_err());
    }

    #[test]
    fn debug_shows_only_the_public_key() {
        let pair = pair_from_jwk_d(CLIENT_D);
        assert_eq!(format!("{pair:?}"), format!("EphemeralKeyPair {{ public: {CLIENT_PUB:?}, .. }}"));
    }
}
