// The seed protocol's opt-in stream encryption on the listen() server (1.P, C23 in docs/compatibility.md):
// the client sends an EncryptionRequest with its ClientHello, session_init (in plaintext)
// answers with the ServerHello, and every later event is an `enc` envelope under the
// server-to-client key. The client side here is Node's own crypto (ECDH P-256, HKDF-SHA-256,
// AES-256-GCM), so the bytes are checked against an independent implementation.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { listeningBrokersClosedAfterEach, ndjsonLines, postJson } from './helpers/index.mjs';

const serveBroker = listeningBrokersClosedAfterEach();
const lines = ndjsonLines;
const post = (url, body) => postJson(url, body);

async function serve() {
  const { base } = await serveBroker({}, (broker) => broker.tool('add', { handler: ({ a, b }) => a + b }));
  return base;
}

function client() {
  const ecdh = crypto.createECDH('prime256v1');
  ecdh.generateKeys();
  const hello = {
    protocolVersion: 2,
    clientEphemeralPubKeyB64: ecdh.getPublicKey('base64'),
    curve: 'P-256',
    supportedAlgorithms: ['AES-GCM-256'],
  };
  return {
    hello,
    // The server-to-client key for `sessionId`, from the ServerHello.
    key(serverHello, sessionId) {
      const secret = ecdh.computeSecret(Buffer.from(serverHello.serverEphemeralPubKeyB64, 'base64'));
      return Buffer.from(crypto.hkdfSync('sha256', secret, Buffer.from(sessionId, 'utf8'), 'enclavejs-s2c-enc', 32));
    },
  };
}

function open_(key, envelope) {
  const nonce = Buffer.from(envelope.payload.nonceB64, 'base64');
  const sealed = Buffer.from(envelope.payload.ciphertextB64, 'base64');
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return JSON.parse(Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]).toString('utf8'));
}

const CODE = "console.log('secret'); return await callTool('add', {a: 20, b: 22});";

describe('encrypted streams', () => {
  it('POST /execute with a required handshake: session_init in the clear, then only envelopes that decrypt', async () => {
    const base = await serve();
    const c = client();
    const response = await post(`${base}/execute`, { code: CODE, encryption: { mode: 'required', clientHello: c.hello } });
    expect(response.status).toBe(200);
    const [init, ...rest] = lines(await response.text());
    expect(init.type).toBe('session_init');
    const { encryption } = init.payload;
    expect(encryption).toStrictEqual({
      enabled: true,
      keyId: expect.stringMatching(/^k_[0-9a-f-]{36}$/),
      serverHello: {
        protocolVersion: 2,
        serverEphemeralPubKeyB64: expect.stringMatching(/^[A-Za-z0-9+/]{87}=$/),
        curve: 'P-256',
        selectedAlgorithm: 'AES-GCM-256',
        kdf: 'HKDF-SHA-256',
        keyId: encryption.keyId,
      },
    });
    expect(Buffer.from(encryption.serverHello.serverEphemeralPubKeyB64, 'base64')[0]).toBe(4);
    const key = c.key(encryption.serverHello, init.sessionId);
    expect(rest.map((e) => [e.type, Object.keys(e), Object.keys(e.payload)])).toStrictEqual(
      rest.map(() => ['enc', ['protocolVersion', 'sessionId', 'seq', 'type', 'payload'], ['kid', 'nonceB64', 'ciphertextB64']]),
    );
    const inner = rest.map((envelope) => open_(key, envelope));
    expect(inner.map((e) => e.type)).toStrictEqual(['stdout', 'tool_call', 'tool_progress', 'tool_progress', 'tool_result_applied', 'final']);
    expect(inner.map((e) => e.seq)).toStrictEqual(rest.map((e) => e.seq));
    expect(inner[0].payload.chunk).toBe('secret\n');
    expect(inner.at(-1).payload.result).toBe(42);
    // Nothing of the plaintext shows in the stream.
    expect(JSON.stringify(rest)).not.toContain('secret');
    for (const envelope of rest) expect(envelope.payload.kid).toBe(encryption.keyId);
    // Counter nonces: one 8-byte prefix, counters 0, 1, 2, ...
    const nonces = rest.map((e) => Buffer.from(e.payload.nonceB64, 'base64'));
    expect(new Set(nonces.map((n) => n.subarray(0, 8).toString('hex'))).size).toBe(1);
    expect(nonces.map((n) => n.readUInt32BE(8))).toStrictEqual(rest.map((_, i) => i));
  });

  it('a replay of the session is encrypted with the same key and never reuses a nonce', async () => {
    const base = await serve();
    const c = client();
    const first = lines(await (await post(`${base}/execute`, { code: CODE, encryption: { mode: 'optional', clientHello: c.hello } })).text());
    const sessionId = first[0].sessionId;
    const key = c.key(first[0].payload.encryption.serverHello, sessionId);
    const replay = lines(await (await fetch(`${base}/sessions/${sessionId}/stream?fromSeq=1`)).text());
    expect(replay[0]).toStrictEqual(first[0]);
    expect(replay.slice(1).map((e) => open_(key, e))).toStrictEqual(first.slice(1).map((e) => open_(key, e)));
    const nonces = [...first, ...replay].slice(1).filter((e) => e.type === 'enc').map((e) => e.payload.nonceB64);
    expect(new Set(nonces).size).toBe(nonces.length);
  });

  it("the original's POST /sessions route takes the same request", async () => {
    const base = await serve();
    const c = client();
    const events = lines(
      await (await post(`${base}/sessions`, { sessionId: 's_mine', code: 'return 7', encryption: { mode: 'required', clientHello: c.hello } })).text(),
    );
    expect(events[0].sessionId).toBe('s_mine');
    const key = c.key(events[0].payload.encryption.serverHello, 's_mine');
    expect(open_(key, events[1])).toMatchObject({ sessionId: 's_mine', seq: 2, type: 'final', payload: { ok: true, result: 7 } });
  });

  it('a required handshake that fails is a 400 with its code, and no session is created', async () => {
    const base = await serve();
    const c = client();
    const refused = async (encryption) => {
      const response = await post(`${base}/execute`, { code: 'return 1', encryption });
      return [response.status, await response.json()];
    };
    expect(await refused({ mode: 'required' })).toStrictEqual([
      400,
      { code: 'ENCRYPTION_HANDSHAKE_FAILED', message: 'Encryption is required but the request has no clientHello' },
    ]);
    const [status, body] = await refused({ mode: 'required', clientHello: { ...c.hello, clientEphemeralPubKeyB64: 'AAAA' } });
    expect([status, body.code]).toStrictEqual([400, 'ENCRYPTION_INVALID_PUBLIC_KEY']);
    expect(body.message).toMatch(/^Failed to import public key: /);
    const [, unsupported] = await refused({ mode: 'required', clientHello: { ...c.hello, supportedAlgorithms: ['CHACHA20'] } });
    expect(unsupported.code).toBe('ENCRYPTION_UNSUPPORTED_ALGORITHM');
    expect(await refused({ mode: 'sometimes' })).toStrictEqual([
      400,
      { code: 'INVALID_REQUEST', message: "\"encryption.mode\" must be 'disabled', 'optional' or 'required'" },
    ]);
    expect(await refused('yes')).toStrictEqual([400, { code: 'INVALID_REQUEST', message: '"encryption" must be an object' }]);
    const health = await (await fetch(`${base}/health`)).json();
    expect(health.sessions.total).toBe(0);
  });

  it('an optional handshake that fails, or mode disabled, streams in the clear and says so', async () => {
    const base = await serve();
    const c = client();
    for (const encryption of [{ mode: 'optional', clientHello: { ...c.hello, curve: 'P-384' } }, { mode: 'disabled', clientHello: c.hello }, { mode: 'optional' }]) {
      const events = lines(await (await post(`${base}/execute`, { code: 'return 1', encryption })).text());
      expect(events.map((e) => e.type)).toStrictEqual(['session_init', 'final']);
      expect(events[0].payload.encryption).toStrictEqual({ enabled: false });
    }
  });
});
