// `enclave-broker-rs/types`: the protocol helpers of @enclave-vm/types 2.15.2 under their
// names, and the check that matters most: every event this package emits (plain runs, tool
// calls, errors, limits, the listen() server's streams and its encrypted envelopes) parses
// with parseStreamEvent / parseStreamEventOrEncrypted, unchanged.
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { EnclaveBroker, createBroker } from '../index.mjs';
import * as types from '../types.mjs';
import { ndjsonLines, postJson } from './helpers/index.mjs';
import { typeCheck } from './helpers/samples.mjs';

const require = createRequire(import.meta.url);

// The value exports of @enclave-vm/types 2.15.2 (its src/index.ts).
const PUBLISHED = [
  'PROTOCOL_VERSION', 'PROTOCOL_VERSION_V1', 'SESSION_ID_PREFIX', 'CALL_ID_PREFIX', 'REF_ID_PREFIX', 'generateSessionId',
  'generateCallId', 'generateRefId', 'isSessionId', 'isCallId', 'isRefId', 'DEFAULT_SESSION_LIMITS', 'SessionState',
  'LogLevel', 'isRefToken', 'createRefToken', 'EventType', 'RuntimeChannelMessageType', 'getEventType',
  'isSessionInitEvent', 'isStdoutEvent', 'isLogEvent', 'isToolCallEvent', 'isToolResultAppliedEvent', 'isFinalEvent',
  'isHeartbeatEvent', 'isErrorEvent', 'isPartialResultEvent', 'isToolProgressEvent', 'isDeadlineExceededEvent',
  'isCatalogChangedEvent', 'SupportedCurve', 'EncryptionAlgorithm', 'KeyDerivation', 'EncryptionMode',
  'EncryptionErrorCode', 'HkdfInfo', 'AES_GCM_NONCE_SIZE', 'AES_GCM_TAG_SIZE', 'AES_256_KEY_SIZE', 'MAX_MESSAGES_PER_KEY',
  'isEncryptedEnvelope', 'ProtocolVersionSchema', 'SessionIdSchema', 'CallIdSchema', 'RefIdSchema', 'LogLevelSchema',
  'SessionStateSchema', 'ErrorInfoSchema', 'RefTokenSchema', 'SessionLimitsSchema', 'ToolConfigSchema', 'BaseEventSchema',
  'EncryptionConfigSchema', 'SessionInitPayloadSchema', 'StdoutPayloadSchema', 'LogPayloadSchema', 'ToolCallPayloadSchema',
  'ToolResultAppliedPayloadSchema', 'SessionStatsSchema', 'FinalPayloadSchema', 'HeartbeatPayloadSchema',
  'ErrorEventPayloadSchema', 'SessionInitEventSchema', 'StdoutEventSchema', 'LogEventSchema', 'ToolCallEventSchema',
  'ToolResultAppliedEventSchema', 'FinalEventSchema', 'HeartbeatEventSchema', 'ErrorEventSchema', 'ErrorDetailSchema',
  'ErrorPayloadSchema', 'PartialResultPayloadSchema', 'PartialResultEventSchema', 'ToolProgressPhaseSchema',
  'ToolProgressPayloadSchema', 'ToolProgressEventSchema', 'DeadlineExceededPayloadSchema', 'DeadlineExceededEventSchema',
  'CatalogChangedPayloadSchema', 'CatalogChangedEventSchema', 'StreamEventSchema', 'SupportedCurveSchema',
  'EncryptionAlgorithmSchema', 'KeyDerivationSchema', 'EncryptionModeSchema', 'EncryptedEnvelopePayloadSchema',
  'EncryptedEnvelopeSchema', 'ClientHelloSchema', 'ServerHelloSchema', 'EncryptionRequestSchema',
  'ToolResultSubmitPayloadSchema', 'ToolResultSubmitMessageSchema', 'CancelPayloadSchema', 'CancelMessageSchema',
  'RuntimeChannelMessageSchema', 'CreateSessionRequestSchema', 'parseStreamEvent', 'parseEncryptedEnvelope',
  'parseRuntimeChannelMessage', 'parseCreateSessionRequest', 'parseStreamEventOrEncrypted', 'FilterMode', 'PatternType',
  'DEFAULT_ALWAYS_ALLOW',
];

describe('the subpath export', () => {
  it('has exactly the published names, the same objects from require and import', () => {
    const cjs = require('enclave-broker-rs/types');
    expect(Object.keys(cjs).toSorted()).toEqual(PUBLISHED.toSorted());
    expect(Object.keys(types).filter((n) => n !== 'default').toSorted()).toEqual(PUBLISHED.toSorted());
    for (const name of PUBLISHED) expect(types[name], name).toBe(cjs[name]);
  });

  it('ids, guards, states, limits and reference tokens as the published package has them', () => {
    expect(types.generateSessionId()).toMatch(/^s_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(types.generateCallId()).toMatch(/^c_[0-9a-f-]{36}$/);
    expect(types.generateRefId()).toMatch(/^ref_[0-9a-f-]{36}$/);
    expect([types.isSessionId('s_x'), types.isSessionId('ses_x'), types.isCallId('c_1'), types.isRefId('ref_')]).toEqual([true, false, true, true]);
    expect([types.PROTOCOL_VERSION, types.PROTOCOL_VERSION_V1]).toEqual([2, 1]);
    expect(Object.values(types.SessionState)).toEqual(['starting', 'running', 'waiting_for_tool', 'completed', 'cancelled', 'failed']);
    expect(types.DEFAULT_SESSION_LIMITS).toEqual({
      sessionTtlMs: 60000,
      maxToolCalls: 50,
      maxStdoutBytes: 262144,
      maxToolResultBytes: 5242880,
      toolTimeoutMs: 30000,
      heartbeatIntervalMs: 15000,
      deadlineMs: 0,
      perToolDeadlineMs: 30000,
      cancelOnFirstError: false,
    });
    const token = types.createRefToken('ref_abc');
    expect(token).toEqual({ $ref: { id: 'ref_abc' } });
    expect(types.isRefToken(token)).toBe(true);
    expect(types.isRefToken(types.createRefToken())).toBe(true);
    for (const other of [null, {}, { $ref: null }, { $ref: { id: 'x' } }, { __ref: 'ref_1' }]) expect(types.isRefToken(other)).toBe(false);
    expect(() => types.createRefToken('abc')).toThrow(new TypeError('A reference id starts with "ref_", got "abc"'));
    expect(types.RefTokenSchema.safeParse(token).success).toBe(true);
    expect(types.MAX_MESSAGES_PER_KEY).toBe(2n ** 30n);
  });

  it('schemas strip unknown keys, accept protocol version 1, and refuse malformed events', () => {
    const event = { protocolVersion: 1, sessionId: 's_1', seq: 0, type: 'stdout', payload: { chunk: 'x', extra: 1 }, extra: 2 };
    expect(types.parseStreamEvent(event)).toEqual({ success: true, data: { protocolVersion: 1, sessionId: 's_1', seq: 0, type: 'stdout', payload: { chunk: 'x' } } });
    for (const bad of [
      { ...event, seq: -1 },
      { ...event, sessionId: 'ses_1' },
      { ...event, type: 'stdout_chunk' },
      { ...event, protocolVersion: 3 },
      { ...event, type: 'heartbeat', payload: { ts: 'yesterday' } },
      { ...event, type: 'tool_call', payload: { callId: 'c_1', toolName: '', args: {} } },
    ]) {
      expect(types.parseStreamEvent(bad).success, JSON.stringify(bad)).toBe(false);
    }
    expect(types.parseRuntimeChannelMessage({ protocolVersion: 2, sessionId: 's_1', type: 'cancel', payload: {} }).success).toBe(true);
    expect(types.parseCreateSessionRequest({ protocolVersion: 2, code: '' }).success).toBe(false);
  });
});

// Runs that together emit every event type a broker emits, with a heartbeat forced by a tool
// that waits for one.
async function brokerEvents() {
  const events = [];
  const beats = new Map();
  const broker = createBroker({ limits: { heartbeatIntervalMs: 20 } });
  const onEvent = (event) => {
    events.push(event);
    if (event.type === 'heartbeat') beats.get(event.sessionId)?.();
  };
  broker.tool('add', { handler: ({ a, b }) => a + b });
  broker.tool('fail', {
    handler: () => {
      throw Object.assign(new Error('no'), { code: 'NOPE' });
    },
  });
  broker.tool('untilHeartbeat', { handler: (args, { sessionId }) => new Promise((resolve) => beats.set(sessionId, () => resolve('beat'))) });
  broker.tool('progress', {
    handler: (args, { sessionId, callId }) => {
      const session = broker.getSession(sessionId);
      session.emitToolProgress(callId, 'receiving', 3, 10, 20);
      session.emitPartialResult(['rows', '0'], { id: 1 });
      session.emitPartialResult(['rows', '1'], undefined, { code: 'ROW_FAILED', message: 'row 1', details: [{ type: 'retry_info', retryDelayMs: 5 }] });
      return 'done';
    },
  });
  const run = (code, session) => broker.execute(code, { onEvent, session });
  await run(`console.log('hi', { a: 1 }); console.info('i'); console.warn('w'); console.error('e'); console.debug('d'); return { a: [1, 'two'] }`);
  await run(`
    const sum = await callTool('add', { a: 1, b: 2 });
    try { await callTool('fail', {}) } catch (e) {}
    try { await callTool('missing', {}) } catch (e) {}
    await callTool('progress', {});
    return [sum, await callTool('untilHeartbeat', {})];`);
  await run("throw new TypeError('thrown')");
  await run('return (');
  await run('while (true) {}', { limits: { toolTimeoutMs: 100, heartbeatIntervalMs: 0 } });
  await run("await callTool('add', { a: 1, b: 1 }); await callTool('add', { a: 1, b: 1 });", { limits: { maxToolCalls: 1 } });
  await run("console.log('x'.repeat(100)); console.log('more')", { limits: { maxStdoutBytes: 10 } });
  await run('await new Promise(() => {})', { limits: { deadlineMs: 100 } });
  await run('return undefined');
  const idle = broker.createSession();
  idle.onEvent(onEvent);
  await idle.cancel('not needed');
  await broker.dispose();
  return events;
}

// The listen() server's streams: one in the clear, one encrypted, decrypted with the
// published constants (HKDF info, key, nonce and tag sizes).
async function serverEvents() {
  const broker = new EnclaveBroker({ limits: { heartbeatIntervalMs: 0 } });
  broker.tool('add', { handler: ({ a, b }) => a + b });
  await broker.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${broker.port}/execute`;
  const code = "console.log('secret'); return await callTool('add', { a: 20, b: 22 })";
  const plain = ndjsonLines(await (await postJson(url, { code })).text());
  const ecdh = crypto.createECDH('prime256v1');
  ecdh.generateKeys();
  const clientHello = { protocolVersion: 2, clientEphemeralPubKeyB64: ecdh.getPublicKey('base64'), curve: 'P-256', supportedAlgorithms: ['AES-GCM-256'] };
  const encryption = { mode: types.EncryptionMode.Required, clientHello };
  const sealed = ndjsonLines(await (await postJson(url, { code, encryption })).text());
  await broker.close({ timeout: 0 });
  const [init, ...envelopes] = sealed;
  const { serverHello } = init.payload.encryption;
  const secret = ecdh.computeSecret(Buffer.from(serverHello.serverEphemeralPubKeyB64, 'base64'));
  const key = Buffer.from(crypto.hkdfSync('sha256', secret, Buffer.from(init.sessionId), types.HkdfInfo.ServerToClient, types.AES_256_KEY_SIZE));
  const opened = envelopes.map((envelope) => {
    const nonce = Buffer.from(envelope.payload.nonceB64, 'base64');
    const bytes = Buffer.from(envelope.payload.ciphertextB64, 'base64');
    expect(nonce.length).toBe(types.AES_GCM_NONCE_SIZE);
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAuthTag(bytes.subarray(bytes.length - types.AES_GCM_TAG_SIZE));
    return JSON.parse(Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - types.AES_GCM_TAG_SIZE)), decipher.final()]).toString());
  });
  return { plain, init, envelopes, opened, clientHello, serverHello, encryption };
}

describe('every event this package emits parses', () => {
  let events;
  let server;

  beforeAll(async () => {
    events = await brokerEvents();
    server = await serverEvents();
  }, 60000);


  it('covers every event type a broker emits', () => {
    const seen = new Set([...events, ...server.plain].map((e) => e.type));
    const emitted = Object.values(types.EventType).filter((t) => t !== 'enc' && t !== 'catalog_changed');
    expect(emitted.filter((t) => !seen.has(t))).toEqual([]);
  });

  it('with parseStreamEvent, unchanged (no key is unknown to the schemas)', () => {
    for (const event of [...events, ...server.plain, ...server.opened]) {
      const parsed = types.parseStreamEvent(event);
      expect(parsed.success, `${JSON.stringify(event)}: ${parsed.error?.message}`).toBe(true);
      expect(parsed.data, event.type).toStrictEqual(event);
      expect(types.parseStreamEventOrEncrypted(event).success).toBe(true);
    }
    const guards = Object.keys(types).filter((n) => /^is\w+Event$/.test(n));
    for (const event of events) {
      const matching = guards.filter((g) => types[g](event));
      expect(matching, event.type).toHaveLength(1);
      expect(types.getEventType(event)).toBe(event.type);
    }
  });

  it('encrypted streams: envelopes, hellos and request parse, and decrypt into events that parse', () => {
    expect(server.envelopes.length).toBeGreaterThan(3);
    for (const envelope of server.envelopes) {
      expect(types.isEncryptedEnvelope(envelope)).toBe(true);
      expect(types.parseEncryptedEnvelope(envelope)).toEqual({ success: true, data: envelope });
      expect(types.parseStreamEventOrEncrypted(envelope)).toEqual({ success: true, data: envelope });
      expect(types.parseStreamEvent(envelope).success).toBe(false);
    }
    expect(server.opened.map((e) => e.type)).toEqual(server.plain.slice(1).map((e) => e.type));
    // The plaintext session_init carries the ServerHello beside the published EncryptionConfig.
    const init = types.parseStreamEvent(server.init);
    expect(init.success).toBe(true);
    expect(init.data.payload.encryption).toEqual({ enabled: true, keyId: server.serverHello.keyId });
    expect(types.ServerHelloSchema.parse(server.serverHello)).toStrictEqual(server.serverHello);
    expect(types.ClientHelloSchema.parse(server.clientHello)).toStrictEqual(server.clientHello);
    expect(types.EncryptionRequestSchema.parse(server.encryption)).toStrictEqual(server.encryption);
    expect(server.serverHello).toMatchObject({
      curve: types.SupportedCurve.P256,
      selectedAlgorithm: types.EncryptionAlgorithm.AES_GCM_256,
      kdf: types.KeyDerivation.HKDF_SHA256,
    });
  });
});

describe('types.d.ts', () => {
  it('type-checks a consumer under tsc --strict --module nodenext, and reports misuse', () => {
    const usage = `
      import { createBroker, type StreamEvent } from 'enclave-broker-rs';
      import {
        parseStreamEvent, isToolCallEvent, createRefToken, isRefToken, generateSessionId, SessionState,
        EventType, StreamEventSchema, DEFAULT_SESSION_LIMITS, HkdfInfo, type RefToken, type SessionId,
      } from 'enclave-broker-rs/types';
      const broker = createBroker();
      for await (const event of broker.execute('return 1')) {
        const parsed = parseStreamEvent(event);
        if (parsed.success && isToolCallEvent(parsed.data)) parsed.data.payload.toolName.toUpperCase();
      }
      const id: SessionId = generateSessionId();
      const state: SessionState = SessionState.WaitingForTool;
      const token: RefToken = createRefToken();
      const known: boolean = isRefToken(token);
      const type: 'session_init' = EventType.SessionInit;
      const ttl: number = DEFAULT_SESSION_LIMITS.sessionTtlMs;
      const info: string = HkdfInfo.ServerToClient;
      const result = StreamEventSchema.safeParse({} as unknown);
      const events: StreamEvent[] = [];
      export { id, state, known, type, ttl, info, result, events };
    `;
    const misuse = `
      import { createRefToken, EventType, isSessionId } from 'enclave-broker-rs/types';
      createRefToken('abc');
      EventType.SESSION_INIT;
      isSessionId(42);
    `;
    const found = typeCheck({ 'types-usage.mts': usage, 'types-misuse.mts': misuse });
    expect(found['types-usage.mts']).toEqual([]);
    expect(found['types-misuse.mts'].map((d) => [d.code, d.line])).toEqual([
      [2345, 3], // 'abc' is not a RefId (`ref_${string}`)
      [2551, 4], // the published keys are PascalCase: "Did you mean 'SessionInit'?"
      [2345, 5], // guards take strings
    ]);
  });
});
