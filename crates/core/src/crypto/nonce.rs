//! AES-GCM nonces: random ones for one-off messages, counter ones for a stream.

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;

use super::AES_GCM_NONCE_SIZE;
use super::error::{CryptoError, ENCRYPTION_NONCE_REUSE};

/// A fresh random 12-byte nonce (the original's `generateNonce`).
pub fn random_nonce() -> [u8; AES_GCM_NONCE_SIZE] {
    let mut nonce = [0u8; AES_GCM_NONCE_SIZE];
    OsRng.fill_bytes(&mut nonce);
    nonce
}

/// A fresh random 8-byte prefix for [`counter_nonce`]. Random per key holder so that two
/// encryptors that somehow share a key still do not share nonces.
pub fn random_nonce_prefix() -> [u8; 8] {
    let mut prefix = [0u8; 8];
    OsRng.fill_bytes(&mut prefix);
    prefix
}

/// `prefix || big-endian u32(counter)`, the original's `generateCounterNonce`. Only the low
/// 32 bits of the counter are used, as there; callers stop at `MAX_MESSAGES_PER_KEY`, well
/// before that truncation could repeat a nonce.
pub fn counter_nonce(prefix: &[u8], counter: u64) -> Result<[u8; AES_GCM_NONCE_SIZE], CryptoError> {
    let prefix: &[u8; 8] = prefix
        .try_into()
        .map_err(|_| CryptoError::new(ENCRYPTION_NONCE_REUSE, "Nonce prefix must be 8 bytes"))?;
    let mut nonce = [0u8; AES_GCM_NONCE_SIZE];
    nonce[..8].copy_from_slice(prefix);
    nonce[8..].copy_from_slice(&((counter & 0xffff_ffff) as u32).to_be_bytes());
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn counter_nonce_matches_the_original() {
        let nonce = counter_nonce(&[0xaa; 8], 258).unwrap();
        assert_eq!(hex(&nonce), "aaaaaaaaaaaaaaaa00000102");
        assert_eq!(hex(&counter_nonce(&[0; 8], 0).unwrap()), "000000000000000000000000");
    }

    #[test]
    fn counter_nonce_keeps_only_the_low_32_bits() {
        let nonce = counter_nonce(&[1; 8], (1 << 32) + 7).unwrap();
        assert_eq!(hex(&nonce), "010101010101010100000007");
    }

    #[test]
    fn prefix_must_be_8_bytes() {
        for bad in [&[0u8; 7][..], &[0u8; 9][..], &[][..]] {
            let err = counter_nonce(bad, 0).unwrap_err();
            assert_eq!(err.code, ENCRYPTION_NONCE_REUSE);
            assert_eq!(err.message, "Nonce prefix must be 8 bytes");
        }
    }

    #[test]
    fn random_nonces_differ() {
        assert_ne!(random_nonce(), random_nonce());
        assert_ne!(random_nonce_prefix(), random_nonce_prefix());
    }
}
