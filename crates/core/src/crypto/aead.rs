//! AES-256-GCM as WebCrypto does it: 12-byte nonce, 16-byte tag appended, no AAD.

use aes_gcm::aead::Aead;
use aes_gcm::aead::consts::U12;
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};

use super::AES_GCM_NONCE_SIZE;
use super::error::{CryptoError, ENCRYPTION_DECRYPTION_FAILED};

// What WebCrypto says for a failed tag check; the original wraps it in `Decryption failed: …`,
// and clients of the original may match on the whole text.
const OPERATION_FAILED: &str = "The operation failed for an operation-specific reason";

/// Seals `plaintext`; the result is `ciphertext || tag`.
pub fn encrypt(key: &[u8; 32], nonce: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    seal(&cipher(key), nonce, plaintext)
}

/// Opens `ciphertext || tag`. Any tampering, a wrong key or a wrong nonce gives
/// `ENCRYPTION_DECRYPTION_FAILED`.
pub fn decrypt(key: &[u8; 32], nonce: &[u8], ciphertext_and_tag: &[u8]) -> Result<Vec<u8>, CryptoError> {
    open(&cipher(key), nonce, ciphertext_and_tag)
}

pub(crate) fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
}

// The split from `encrypt` lets a long-lived encryptor reuse its expanded key schedule.
pub(crate) fn seal(cipher: &Aes256Gcm, nonce: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let nonce = checked_nonce(nonce)?;
    cipher.encrypt(&nonce, plaintext).map_err(|_| {
        // Only reachable past GCM's ~64 GiB plaintext limit.
        CryptoError::new(ENCRYPTION_DECRYPTION_FAILED, format!("Encryption failed: {OPERATION_FAILED}"))
    })
}

pub(crate) fn open(
    cipher: &Aes256Gcm,
    nonce: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce = checked_nonce(nonce)?;
    cipher.decrypt(&nonce, ciphertext_and_tag).map_err(|_| {
        CryptoError::new(ENCRYPTION_DECRYPTION_FAILED, format!("Decryption failed: {OPERATION_FAILED}"))
    })
}

// The original reports a wrong length as an error, under the decryption code in both
// directions, so it must not reach the cipher (which would panic).
fn checked_nonce(nonce: &[u8]) -> Result<Nonce<U12>, CryptoError> {
    let Ok(nonce) = <[u8; AES_GCM_NONCE_SIZE]>::try_from(nonce) else {
        return Err(CryptoError::new(
            ENCRYPTION_DECRYPTION_FAILED,
            format!("Invalid nonce length: expected {AES_GCM_NONCE_SIZE}, got {}", nonce.len()),
        ));
    };
    Ok(Nonce::from(nonce))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::encoding::{from_base64, to_base64};

    // The contract's s2c key for IKM 00..1f and salt "s_test".
    const S2C: &str = "305791e42e8ce59618213737a69a01ac64738c1069ee6ba592f92343d4a57e46";
    const NONCE: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const HEARTBEAT: &str = r#"{"protocolVersion":2,"sessionId":"s_test","seq":1,"type":"heartbeat","payload":{"ts":"2025-01-01T00:00:00.000Z"}}"#;
    const CIPHERTEXT_B64: &str = "jGdSi4GHVYeMdOMLbMSVjwmyHkTWNe7FiGZom5aG+Ky+ZSeYD8YIcS7cPRCty49kdfdJPRkCwsRMd5S3xRrKFlnnm6lNv9cqgzTsFtJ7h1v0fhQClgPv4drrYl5I4RiR5cPaynKdC7mzwSssgkZWtCScHw/TRa84IWLx9tgiYr7w";

    fn key(hex: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn encrypt_matches_the_contract_vector() {
        let sealed = encrypt(&key(S2C), &NONCE, HEARTBEAT.as_bytes()).unwrap();
        assert_eq!(HEARTBEAT.len(), 113);
        assert_eq!(sealed.len(), 113 + 16);
        assert_eq!(to_base64(&sealed), CIPHERTEXT_B64);
    }

    #[test]
    fn decrypt_opens_the_contract_vector() {
        let sealed = from_base64(CIPHERTEXT_B64).unwrap();
        let opened = decrypt(&key(S2C), &NONCE, &sealed).unwrap();
        assert_eq!(opened, HEARTBEAT.as_bytes());
    }

    #[test]
    fn tampering_fails_authentication() {
        let k = key(S2C);
        let sealed = encrypt(&k, &NONCE, b"hello").unwrap();
        // One flipped bit anywhere: in the ciphertext and in the tag.
        for index in [0, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[index] ^= 0x01;
            let err = decrypt(&k, &NONCE, &bad).unwrap_err();
            assert_eq!(err.code, ENCRYPTION_DECRYPTION_FAILED);
            assert!(err.message.starts_with("Decryption failed: "), "{}", err.message);
        }
        let mut other_nonce = NONCE;
        other_nonce[0] ^= 0x80;
        assert_eq!(decrypt(&k, &other_nonce, &sealed).unwrap_err().code, ENCRYPTION_DECRYPTION_FAILED);
        let mut other_key = k;
        other_key[31] ^= 1;
        assert_eq!(decrypt(&other_key, &NONCE, &sealed).unwrap_err().code, ENCRYPTION_DECRYPTION_FAILED);
        // Shorter than a tag.
        assert_eq!(decrypt(&k, &NONCE, &sealed[..15]).unwrap_err().code, ENCRYPTION_DECRYPTION_FAILED);
    }

    #[test]
    fn wrong_nonce_length_is_reported_both_ways() {
        let k = key(S2C);
        let err = encrypt(&k, &[0; 16], b"x").unwrap_err();
        assert_eq!(err.code, ENCRYPTION_DECRYPTION_FAILED);
        assert_eq!(err.message, "Invalid nonce length: expected 12, got 16");
        let err = decrypt(&k, &[0; 11], &[0; 32]).unwrap_err();
        assert_eq!(err.code, ENCRYPTION_DECRYPTION_FAILED);
        assert_eq!(err.message, "Invalid nonce length: expected 12, got 11");
    }

    #[test]
    fn empty_plaintext_is_just_a_tag() {
        let k = key(S2C);
        let sealed = encrypt(&k, &NONCE, b"").unwrap();
        assert_eq!(sealed.len(), 16);
        assert_eq!(decrypt(&k, &NONCE, &sealed).unwrap(), b"");
    }
}
