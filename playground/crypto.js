// The client side of the broker's encrypted streams, on the browser's own WebCrypto (the
// README's "Encrypted streams"; the server side is crates/core/src/crypto): an ephemeral
// P-256 key pair whose public half goes in the ClientHello, ECDH with the ServerHello's key,
// HKDF-SHA-256 (salt: the session id, info: enclavejs-s2c-enc) to an AES-256-GCM key, and
// every `enc` envelope opened with it. The private key never leaves WebCrypto.

const S2C_INFO = 'enclavejs-s2c-enc';
const text = new TextEncoder();

export function toBase64(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export function fromBase64(b64) {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

export class StreamDecryptor {
  #privateKey;
  #key;
  #keyId;

  constructor(privateKey, hello) {
    this.#privateKey = privateKey;
    this.hello = hello;
  }

  /** A fresh key pair and its ClientHello (`{protocolVersion, clientEphemeralPubKeyB64, ...}`). */
  static async create() {
    if (!globalThis.crypto?.subtle) {
      throw new Error('WebCrypto is not available: open the page from 127.0.0.1 or over https');
    }
    const pair = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
    // 'raw' is the 65-byte uncompressed point the protocol carries.
    const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
    return new StreamDecryptor(pair.privateKey, {
      protocolVersion: 2,
      clientEphemeralPubKeyB64: toBase64(publicKey),
      curve: 'P-256',
      supportedAlgorithms: ['AES-GCM-256'],
    });
  }

  get keyId() {
    return this.#keyId;
  }

  /** Derives the server-to-client key from session_init's `payload.encryption`. */
  async accept(encryption, sessionId) {
    const hello = encryption?.serverHello;
    if (!encryption?.enabled || !hello) throw new Error('The broker did not agree to encrypt this stream');
    if (hello.curve !== 'P-256' || hello.selectedAlgorithm !== 'AES-GCM-256' || hello.kdf !== 'HKDF-SHA-256') {
      throw new Error(`Unsupported ServerHello: ${hello.curve} ${hello.selectedAlgorithm} ${hello.kdf}`);
    }
    const serverKey = await crypto.subtle.importKey(
      'raw',
      fromBase64(hello.serverEphemeralPubKeyB64),
      { name: 'ECDH', namedCurve: 'P-256' },
      false,
      [],
    );
    // The shared secret is the X coordinate of the ECDH point: 256 bits.
    const shared = await crypto.subtle.deriveBits({ name: 'ECDH', public: serverKey }, this.#privateKey, 256);
    const secret = await crypto.subtle.importKey('raw', shared, 'HKDF', false, ['deriveKey']);
    this.#key = await crypto.subtle.deriveKey(
      { name: 'HKDF', hash: 'SHA-256', salt: text.encode(sessionId), info: text.encode(S2C_INFO) },
      secret,
      { name: 'AES-GCM', length: 256 },
      false,
      ['decrypt'],
    );
    this.#keyId = hello.keyId;
  }

  /** The event inside an `enc` envelope; throws if it does not authenticate or does not match its envelope. */
  async open(envelope) {
    if (this.#key === undefined) throw new Error(`Encrypted event #${envelope.seq} before the key exchange`);
    const { kid, nonceB64, ciphertextB64 } = envelope.payload;
    if (kid !== this.#keyId) throw new Error(`Event #${envelope.seq} is under key ${kid}, not ${this.#keyId}`);
    // WebCrypto expects the 16-byte tag at the end of the ciphertext, as the wire has it.
    const plain = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: fromBase64(nonceB64) },
      this.#key,
      fromBase64(ciphertextB64),
    );
    const event = JSON.parse(new TextDecoder().decode(plain));
    if (event.seq !== envelope.seq || event.sessionId !== envelope.sessionId) {
      throw new Error(`Envelope #${envelope.seq} holds event #${event.seq} of ${event.sessionId}`);
    }
    return event;
  }
}
