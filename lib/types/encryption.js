// The stream encryption's names and sizes (@enclave-vm/types 2.15.2): what the `listen()`
// server negotiates and the envelopes it sends (crates/core/src/crypto/).
'use strict';

const { EventType } = require('../constants');

const SupportedCurve = Object.freeze({ P256: 'P-256' });
const EncryptionAlgorithm = Object.freeze({ AES_GCM_256: 'AES-GCM-256' });
const KeyDerivation = Object.freeze({ HKDF_SHA256: 'HKDF-SHA-256' });
const EncryptionMode = Object.freeze({ Disabled: 'disabled', Optional: 'optional', Required: 'required' });
const EncryptionErrorCode = Object.freeze({
  HandshakeFailed: 'ENCRYPTION_HANDSHAKE_FAILED',
  KeyDerivationFailed: 'ENCRYPTION_KEY_DERIVATION_FAILED',
  DecryptionFailed: 'ENCRYPTION_DECRYPTION_FAILED',
  NonceReuse: 'ENCRYPTION_NONCE_REUSE',
  KeyExpired: 'ENCRYPTION_KEY_EXPIRED',
  UnsupportedAlgorithm: 'ENCRYPTION_UNSUPPORTED_ALGORITHM',
  InvalidPublicKey: 'ENCRYPTION_INVALID_PUBLIC_KEY',
  SignatureVerificationFailed: 'ENCRYPTION_SIGNATURE_VERIFICATION_FAILED',
});
// HKDF `info` of each direction's key.
const HkdfInfo = Object.freeze({ ClientToServer: 'enclavejs-c2s-enc', ServerToClient: 'enclavejs-s2c-enc' });

const AES_GCM_NONCE_SIZE = 12;
const AES_GCM_TAG_SIZE = 16;
const AES_256_KEY_SIZE = 32;
// Messages under one key before it must be replaced (2^30, below AES-GCM's 2^32).
const MAX_MESSAGES_PER_KEY = 1073741824n;

function isEncryptedEnvelope(value) {
  if (value === null || typeof value !== 'object' || value.type !== EventType.Encrypted) return false;
  const payload = value.payload;
  return payload !== null && typeof payload === 'object' && 'kid' in payload && 'nonceB64' in payload && 'ciphertextB64' in payload;
}

module.exports = {
  SupportedCurve,
  EncryptionAlgorithm,
  KeyDerivation,
  EncryptionMode,
  EncryptionErrorCode,
  HkdfInfo,
  AES_GCM_NONCE_SIZE,
  AES_GCM_TAG_SIZE,
  AES_256_KEY_SIZE,
  MAX_MESSAGES_PER_KEY,
  isEncryptedEnvelope,
};
