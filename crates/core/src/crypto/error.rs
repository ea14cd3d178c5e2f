//! The one error type of the crypto module, carrying the original's `EncryptionErrorCode`.

use std::fmt;

/// A handshake message was malformed or could not be completed.
pub const ENCRYPTION_HANDSHAKE_FAILED: &str = "ENCRYPTION_HANDSHAKE_FAILED";
/// Reserved by the original; HKDF over SHA-256 with a 32-byte output cannot fail here.
pub const ENCRYPTION_KEY_DERIVATION_FAILED: &str = "ENCRYPTION_KEY_DERIVATION_FAILED";
/// Authentication failed, or a nonce / envelope was unusable. The original also uses this
/// code for encryption-side nonce errors, so we do too.
pub const ENCRYPTION_DECRYPTION_FAILED: &str = "ENCRYPTION_DECRYPTION_FAILED";
/// A counter-nonce prefix of the wrong length: the original files it under nonce reuse.
pub const ENCRYPTION_NONCE_REUSE: &str = "ENCRYPTION_NONCE_REUSE";
/// The key has sealed [`super::MAX_MESSAGES_PER_KEY`] messages and must be rotated.
pub const ENCRYPTION_KEY_EXPIRED: &str = "ENCRYPTION_KEY_EXPIRED";
/// A curve, cipher or KDF other than P-256 / AES-GCM-256 / HKDF-SHA-256.
pub const ENCRYPTION_UNSUPPORTED_ALGORITHM: &str = "ENCRYPTION_UNSUPPORTED_ALGORITHM";
/// A peer public key that is not valid base64 or not a point on P-256.
pub const ENCRYPTION_INVALID_PUBLIC_KEY: &str = "ENCRYPTION_INVALID_PUBLIC_KEY";
/// Reserved by the original; no signature is ever produced or checked.
pub const ENCRYPTION_SIGNATURE_VERIFICATION_FAILED: &str = "ENCRYPTION_SIGNATURE_VERIFICATION_FAILED";

/// `{code, message}`, the shape of the original's `EcdhError` / `HkdfError` / `AesGcmError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoError {
    pub code: &'static str,
    pub message: String,
}

impl CryptoError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

// Only the message, like a JS `err.message`, so it can be handed to clients verbatim; the
// code travels in its own field.
impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CryptoError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_bare_message_and_code_is_kept() {
        let err = CryptoError::new(ENCRYPTION_KEY_EXPIRED, "Key needs rotation: nonce limit reached");
        assert_eq!(err.to_string(), "Key needs rotation: nonce limit reached");
        assert_eq!(err.code, "ENCRYPTION_KEY_EXPIRED");
        let boxed: Box<dyn std::error::Error> = Box::new(err.clone());
        assert_eq!(boxed.to_string(), err.message);
    }
}
