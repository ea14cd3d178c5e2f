//! Stream encryption, byte-compatible with the original `@enclave-vm/stream` crypto.
//!
//! A client of the original must be able to talk to us unchanged, so every choice here is
//! the original's, not ours: P-256 ECDH on raw uncompressed points, HKDF-SHA-256 salted
//! with the session id, AES-256-GCM with the tag appended and no AAD, counter nonces, and
//! the `enc` envelope. The original broker never turns this on; we offer it as an opt-in.
//!
//! One concept per file:
//! - [`CryptoError`] and the original's `EncryptionErrorCode` values, in [`error`];
//! - base64 as `btoa`/`atob` produce and accept it, in [`encoding`];
//! - ephemeral P-256 key pairs and the shared secret, in [`ecdh`];
//! - HKDF-SHA-256 and the two per-direction session keys, in [`kdf`];
//! - AES-256-GCM, in [`aead`];
//! - random and counter nonces, in [`nonce`];
//! - the ClientHello / ServerHello wire shapes, in [`hello`];
//! - both sides of the key agreement, in [`handshake`];
//! - the `enc` envelope and the per-direction [`EventEncryptor`], in [`envelope`].

pub mod aead;
pub mod ecdh;
pub mod encoding;
pub mod envelope;
pub mod error;
pub mod handshake;
pub mod hello;
pub mod kdf;
pub mod nonce;

pub use aead::{decrypt, encrypt};
pub use ecdh::EphemeralKeyPair;
pub use encoding::{from_base64, to_base64};
pub use envelope::{EventEncryptor, open_envelope, seal_envelope};
pub use error::*;
pub use handshake::{ClientHandshake, ServerHandshake, accept_client_hello, accept_server_hello, new_key_id};
pub use hello::{
    ClientHello, ServerHello, client_hello_json, parse_client_hello, parse_server_hello, server_hello_json,
};
pub use kdf::{SessionKeys, derive_key, derive_session_keys};
pub use nonce::{counter_nonce, random_nonce, random_nonce_prefix};

/// `SupportedCurve.P256`: the only curve the original accepts.
pub const CURVE_P256: &str = "P-256";
/// `EncryptionAlgorithm.AES_GCM_256`: the only cipher the original offers.
pub const ALGORITHM_AES_GCM_256: &str = "AES-GCM-256";
/// `KeyDerivation.HKDF_SHA256`, announced in the ServerHello.
pub const KDF_HKDF_SHA256: &str = "HKDF-SHA-256";
/// `HkdfInfo.ClientToServer`.
pub const HKDF_INFO_CLIENT_TO_SERVER: &str = "enclavejs-c2s-enc";
/// `HkdfInfo.ServerToClient`.
pub const HKDF_INFO_SERVER_TO_CLIENT: &str = "enclavejs-s2c-enc";
/// `AES_GCM_NONCE_SIZE`.
pub const AES_GCM_NONCE_SIZE: usize = 12;
/// `AES_GCM_TAG_SIZE`.
pub const AES_GCM_TAG_SIZE: usize = 16;
/// `AES_256_KEY_SIZE`.
pub const AES_256_KEY_SIZE: usize = 32;
/// Messages one key may seal before it must be rotated. Far below the 2^32 a 4-byte
/// counter could address, so the counter can never wrap into a reused nonce.
pub const MAX_MESSAGES_PER_KEY: u64 = 1 << 30;
/// Key ids are `k_` + a UUID v4, as the original's `processClientHello` makes them.
pub const KEY_ID_PREFIX: &str = "k_";
/// `EventType.Encrypted`: the `type` of an envelope.
pub const ENVELOPE_TYPE: &str = "enc";
/// The length of an uncompressed SEC1 P-256 point (`0x04 || X || Y`).
pub const P256_PUBLIC_KEY_SIZE: usize = 65;
