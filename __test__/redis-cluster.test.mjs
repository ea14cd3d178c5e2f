// Several brokers, one Redis (the `redis` option): each broker is its own Node process
// running EnclaveBroker.listen(0) against one real redis-server (helpers/redis.mjs). A
// client may reconnect to any broker, any broker answers for any session of its caller,
// commands reach the broker running the session, a killed broker's sessions end with
// BROKER_LOST, and a Redis outage loses nothing.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnclaveBroker, createBroker } from '../index.mjs';
import { ROOT, ndjsonLines, ndjsonReader } from './helpers/index.mjs';
import { freePort, startRedis } from './helpers/redis.mjs';

const INSTANCE = path.join(ROOT, '__test__', 'helpers', 'cluster-instance.mjs');
// A createBroker({ redis }) with the original's SessionHandler on Express.
const EXPRESS_INSTANCE = path.join(ROOT, '__test__', 'helpers', 'cluster-express.mjs');
// Generous: these wait on other processes on a loaded machine, never on a fixed delay.
const SLOW = 60000;

const as = (user) => ({ authorization: `Bearer ${user}` });
// The SessionHandler process's principal header.
const asUser = (user) => ({ 'x-user': user });
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// A broker process on `redis` (`script`: which kind); resolves once it listens.
function startInstance(redis, options = {}, script = INSTANCE) {
  const child = spawn(process.execPath, [script, JSON.stringify({ redis, ...options })], {
    cwd: ROOT,
    env: { ...process.env, ENCLAVE_BROKER_MIN_ENGINES: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const newline = out.indexOf('\n');
      if (newline < 0) return;
      const started = JSON.parse(out.slice(0, newline));
      if (started.error !== undefined) reject(new Error(started.error));
      resolve({
        base: `http://127.0.0.1:${started.port}`,
        child,
        exited,
        stderr: () => stderr,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          return exited;
        },
      });
    });
    exited.then(({ code }) => reject(new Error(`instance exited (${code}) before listening: ${stderr}`)));
  });
}

function post(url, body, headers = {}, signal) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal,
  });
}

const getJson = async (url, headers) => {
  const response = await fetch(url, { headers });
  return { status: response.status, body: await response.json() };
};

// Answers an `ask` call through `broker`'s tool-result route.
async function answer(broker, user, sessionId, callId, result) {
  const response = await post(`${broker.base}/sessions/${sessionId}/tool-result`, { callId, result }, as(user));
  return { status: response.status, body: await response.json() };
}

async function replay(broker, user, sessionId, fromSeq = 1) {
  const response = await fetch(`${broker.base}/sessions/${sessionId}/stream?fromSeq=${fromSeq}`, { headers: as(user) });
  expect(response.status).toBe(200);
  return ndjsonLines(await response.text());
}

async function health(broker) {
  return (await getJson(`${broker.base}/health`)).body;
}

// Polls `broker`'s /health until `predicate(health)` holds.
async function healthUntil(broker, predicate, label) {
  const deadline = Date.now() + SLOW;
  for (;;) {
    const h = await health(broker);
    if (predicate(h)) return h;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${label}: ${JSON.stringify(h)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

let redis;
const instances = [];
let A;
let B;
let C;

async function instance(options, script) {
  const started = await startInstance(redis.url, options, script);
  instances.push(started);
  return started;
}

beforeAll(async () => {
  redis = await startRedis();
  [A, B, C] = await Promise.all([instance(), instance(), instance()]);
}, SLOW);

afterAll(async () => {
  await Promise.all(instances.map((i) => i.stop()));
  await redis?.cleanup();
}, SLOW);

describe('streams on any broker', () => {
  it('a stream started on A goes on from B with fromSeq: every event once, in order, to final', { timeout: SLOW }, async () => {
    const code = "for (let i = 0; i < 3; i++) { console.log('step ' + i); await callTool('ask', { i }); } return 'done'";
    const client = new AbortController();
    const started = await post(`${A.base}/execute`, { code }, as('alice'), client.signal);
    const id = started.headers.get('x-session-id');
    const seenOnA = await ndjsonReader(started).until((e) => e.type === 'tool_call');
    client.abort();
    // The call is answered through C while no client is connected; the stream goes on from B.
    expect(await answer(C, 'alice', id, seenOnA.at(-1).payload.callId, 'zero')).toEqual({ status: 200, body: { success: true } });
    const resumed = await fetch(`${B.base}/sessions/${id}/stream?fromSeq=${seenOnA.at(-1).seq + 1}`, { headers: as('alice') });
    const reader = ndjsonReader(resumed);
    const seenOnB = [];
    for (let item = await reader.next(); item !== null; item = await reader.next()) {
      seenOnB.push(item.event);
      if (item.event.type === 'tool_call') await answer(A, 'alice', id, item.event.payload.callId, 'more');
    }
    const all = [...seenOnA, ...seenOnB];
    expect(all.map((e) => e.seq)).toEqual(range(1, all.length));
    expect(all.filter((e) => e.type === 'stdout').map((e) => e.payload.chunk)).toEqual(['step 0\n', 'step 1\n', 'step 2\n']);
    expect(all.at(-1)).toMatchObject({ type: 'final', payload: { ok: true, result: 'done' } });
    // A replay from the start, on a third broker, is the same stream.
    expect(await replay(C, 'alice', id)).toEqual(all);
  });

  it('an encrypted session replays on another broker as envelopes that decrypt to the same events', { timeout: SLOW }, async () => {
    const ecdh = crypto.createECDH('prime256v1');
    ecdh.generateKeys();
    const clientHello = { protocolVersion: 2, clientEphemeralPubKeyB64: ecdh.getPublicKey('base64'), curve: 'P-256', supportedAlgorithms: ['AES-GCM-256'] };
    const code = "console.log('secret'); return await callTool('echo', { n: 42 })";
    const onA = ndjsonLines(await (await post(`${A.base}/execute`, { code, encryption: { mode: 'required', clientHello } }, as('alice'))).text());
    const [init] = onA;
    const { serverHello } = init.payload.encryption;
    const secret = ecdh.computeSecret(Buffer.from(serverHello.serverEphemeralPubKeyB64, 'base64'));
    const key = Buffer.from(crypto.hkdfSync('sha256', secret, Buffer.from(init.sessionId), 'enclavejs-s2c-enc', 32));
    const open = (envelope) => {
      const sealed = Buffer.from(envelope.payload.ciphertextB64, 'base64');
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(envelope.payload.nonceB64, 'base64'));
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      return JSON.parse(Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]).toString());
    };
    const onB = await replay(B, 'alice', init.sessionId);
    expect(onB[0]).toEqual(init);
    expect(onB.slice(1).every((e) => e.type === 'enc')).toBe(true);
    expect(JSON.stringify(onB)).not.toContain('secret');
    expect(onB.slice(1).map(open)).toEqual(onA.slice(1).map(open));
    expect(onB.slice(1).map(open).at(-1).payload).toMatchObject({ ok: true, result: { n: 42 } });
    // A type filter applies there too; content filters need the key, which only A holds.
    const filter = encodeURIComponent(JSON.stringify({ mode: 'include', rules: [{ types: { types: ['stdout'] } }] }));
    const filtered = ndjsonLines(await (await fetch(`${B.base}/sessions/${init.sessionId}/stream?filter=${filter}`, { headers: as('alice') })).text());
    expect(filtered.map((e) => e.seq)).toEqual([init.seq, 2, onA.at(-1).seq]);
    expect(open(filtered[1]).type).toBe('stdout');
    const content = encodeURIComponent(JSON.stringify({ mode: 'include', rules: [{ content: { patterns: [{ type: 'exact', pattern: 'x' }] } }] }));
    const refused = await fetch(`${B.base}/sessions/${init.sessionId}/stream?filter=${content}`, { headers: as('alice') });
    expect(refused.status).toBe(400);
    expect((await refused.json()).code).toBe('FILTER_NOT_SUPPORTED');
  });
});

describe('commands reach the broker running the session', () => {
  it('a tool result posted to C and a cancel sent to B reach the execution running on A', { timeout: SLOW }, async () => {
    const code = "const a = await callTool('ask', {}); console.log('got ' + a); await callTool('ask', {}); return 'never'";
    const started = await post(`${A.base}/execute`, { code }, as('alice'));
    const id = started.headers.get('x-session-id');
    const reader = ndjsonReader(started);
    const firstCall = (await reader.until((e) => e.type === 'tool_call')).at(-1);
    expect(await answer(C, 'alice', id, firstCall.payload.callId, 'from C')).toEqual({ status: 200, body: { success: true } });
    const upToSecond = await reader.until((e) => e.type === 'tool_call');
    expect(upToSecond.find((e) => e.type === 'stdout').payload.chunk).toBe('got from C\n');
    // A stale call id is refused by A, and C says so.
    const stale = await answer(C, 'alice', id, firstCall.payload.callId, 'again');
    expect(stale.status).toBe(409);
    expect(stale.body.code).toBe('INVALID_STATE');
    // Another principal cannot reach it from any broker.
    expect((await answer(B, 'mallory', id, upToSecond.at(-1).payload.callId, 'x')).status).toBe(404);
    const cancelled = await post(`${B.base}/sessions/${id}/cancel`, { reason: 'enough' }, as('alice'));
    expect([cancelled.status, await cancelled.json()]).toEqual([200, { success: true, sessionId: id }]);
    const rest = await reader.rest();
    expect(rest.at(-1)).toMatchObject({ type: 'final', payload: { ok: false, error: { code: 'SESSION_CANCELLED' } } });
    expect((await getJson(`${C.base}/sessions/${id}`, as('alice'))).body.state).toBe('cancelled');
    // A finished session takes a cancel as a no-op and a tool result as a conflict, anywhere.
    expect((await post(`${C.base}/sessions/${id}/cancel`, {}, as('alice'))).status).toBe(200);
    expect((await answer(B, 'alice', id, 'c_none', 1)).status).toBe(409);
  });

  it('GET /sessions lists the caller\'s sessions of every broker; DELETE on one broker removes it everywhere', { timeout: SLOW }, async () => {
    const run = async (broker, user, body) => {
      const response = await post(`${broker.base}/sessions`, { code: 'return 1', ...body }, as(user));
      await response.text();
      return { status: response.status, id: response.headers.get('x-session-id') };
    };
    const mineOnA = await run(A, 'dora', {});
    const mineOnB = await run(B, 'dora', { sessionId: `dora-${Date.now()}` });
    const theirs = await run(C, 'erin', {});
    for (const broker of [A, B, C]) {
      const { body } = await getJson(`${broker.base}/sessions`, as('dora'));
      expect(body.sessions.map((s) => s.sessionId)).toEqual([mineOnA.id, mineOnB.id]);
      expect(body.sessions.every((s) => s.state === 'completed')).toBe(true);
      expect((await getJson(`${broker.base}/sessions/${theirs.id}`, as('dora'))).status).toBe(404);
    }
    // A client-chosen id is unique across brokers.
    const again = await post(`${C.base}/sessions`, { code: 'return 2', sessionId: mineOnB.id }, as('erin'));
    expect([again.status, (await again.json()).code]).toEqual([409, 'SESSION_EXISTS']);
    expect((await fetch(`${B.base}/sessions/${mineOnA.id}`, { method: 'DELETE', headers: as('erin') })).status).toBe(404);
    const deleted = await fetch(`${C.base}/sessions/${mineOnA.id}`, { method: 'DELETE', headers: as('dora') });
    expect([deleted.status, await deleted.json()]).toEqual([200, { success: true, sessionId: mineOnA.id }]);
    for (const broker of [A, B, C]) {
      expect((await getJson(`${broker.base}/sessions/${mineOnA.id}`, as('dora'))).status).toBe(404);
    }
    expect((await getJson(`${B.base}/sessions`, as('dora'))).body.total).toBe(1);
  });

  it('one rate-limit window per key across brokers, and /health reports Redis', { timeout: SLOW }, async () => {
    const limits = { rateLimiting: { windowMs: 60000, maxRequests: 3 } };
    const [P, Q] = await Promise.all([instance(limits), instance(limits)]);
    const statuses = [];
    for (const broker of [P, Q, P, Q]) statuses.push((await fetch(`${broker.base}/sessions`, { headers: as('frank') })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await fetch(`${P.base}/sessions`, { headers: as('grace') })).status).toBe(200);
    const h = await health(P);
    expect(h).toMatchObject({ status: 'ok', redis: { status: 'ready', address: `127.0.0.1:${redis.port}`, bufferedEvents: 0 } });
    expect(h.redis.broker).toMatch(/^b_[0-9a-f]{32}$/);
  });
});

describe('a broker that dies', () => {
  it('kill -9 mid-run: a client on another broker gets every event it wrote, then BROKER_LOST within the lease', { timeout: SLOW }, async () => {
    const leaseMs = 1500;
    const D = await instance({ cluster: { leaseMs } });
    const code = "console.log('before'); await callTool('echo', { n: 1 }); await callTool('ask', {}); return 'never'";
    const started = await post(`${D.base}/execute`, { code }, as('alice'));
    const id = started.headers.get('x-session-id');
    const seenOnD = await ndjsonReader(started).until((e) => e.type === 'tool_call' && e.payload.toolName === 'ask');
    D.child.kill('SIGKILL');
    expect(await D.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const events = await replay(B, 'alice', id);
    // Everything D's client saw, and what D wrote after it (the call's progress), in order,
    // then the two events a survivor wrote.
    expect(events.slice(0, seenOnD.length)).toEqual(seenOnD);
    expect(events.map((e) => e.seq)).toEqual(range(1, events.length));
    const wroteAfter = events.slice(seenOnD.length, -2).map((e) => e.type);
    expect(wroteAfter.length).toBeLessThanOrEqual(2);
    expect(wroteAfter.every((type) => type === 'tool_progress')).toBe(true);
    const [error, final] = events.slice(-2);
    expect(error).toMatchObject({ type: 'error', payload: { code: 'BROKER_LOST', recoverable: false } });
    expect(final).toMatchObject({ type: 'final', payload: { ok: false, error: { code: 'BROKER_LOST' } } });
    // Recorded by the survivor: D's last renewal and the moment it found D's lease gone.
    const { lastRenewedAt, detectedAt } = error.payload.details;
    expect(detectedAt - lastRenewedAt).toBeLessThanOrEqual(leaseMs + 1000);
    expect(detectedAt - lastRenewedAt).toBeGreaterThanOrEqual(leaseMs);
    expect((await getJson(`${C.base}/sessions/${id}`, as('alice'))).body.state).toBe('failed');
  });
});

describe('Redis going away', () => {
  it('running executions go on, new sessions get 503 REDIS_UNAVAILABLE, and everything is written when Redis returns', { timeout: SLOW }, async () => {
    const H = await instance({ cluster: { maxBufferBytes: 4096 } });
    const code = "console.log('a'); await callTool('ask', {}); console.log('b'); await callTool('ask', {}); return 'ok'";
    const started = await post(`${A.base}/execute`, { code }, as('alice'));
    const id = started.headers.get('x-session-id');
    const reader = ndjsonReader(started);
    const beforeOutage = await reader.until((e) => e.type === 'tool_call');
    // On H, a session that will write more than its buffer holds.
    const floodCode = "await callTool('ask', {}); for (let i = 0; i < 100; i++) console.log('x'.repeat(100)); await callTool('ask', {}); return 'never'";
    const flood = await post(`${H.base}/execute`, { code: floodCode }, as('alice'));
    const floodId = flood.headers.get('x-session-id');
    const floodReader = ndjsonReader(flood);
    const floodCall = (await floodReader.until((e) => e.type === 'tool_call')).at(-1);

    await redis.stop();
    await healthUntil(A, (h) => h.redis.status === 'unavailable', 'A to notice the outage');
    await healthUntil(B, (h) => h.status === 'degraded', 'B to notice the outage');
    const refused = await post(`${B.base}/execute`, { code: 'return 1' }, as('alice'));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await refused.json()).code).toBe('REDIS_UNAVAILABLE');
    // The brokers running the sessions still take their tool results; the runs go on.
    expect(await answer(A, 'alice', id, beforeOutage.at(-1).payload.callId, 'x')).toEqual({ status: 200, body: { success: true } });
    expect(await answer(H, 'alice', floodId, floodCall.payload.callId, 'go')).toEqual({ status: 200, body: { success: true } });
    await healthUntil(A, (h) => h.redis.bufferedEvents >= 4, 'A to buffer the events of the second step');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await redis.start();

    // The stream on A resumes once the buffered events are stored; the run completes.
    const afterOutage = await reader.until((e) => e.type === 'tool_call');
    expect(await answer(B, 'alice', id, afterOutage.at(-1).payload.callId, 'y')).toEqual({ status: 200, body: { success: true } });
    const all = [...beforeOutage, ...afterOutage, ...(await reader.rest())];
    expect(all.map((e) => e.seq)).toEqual(range(1, all.length));
    expect(all.filter((e) => e.type === 'stdout').map((e) => e.payload.chunk)).toEqual(['a\n', 'b\n']);
    expect(all.at(-1)).toMatchObject({ type: 'final', payload: { ok: true, result: 'ok' } });
    expect(await replay(C, 'alice', id)).toEqual(all);

    // Past its buffer, H's session failed rather than drop anything: the log has every event.
    const flooded = [floodCall, ...(await floodReader.rest())];
    expect(flooded.at(-2)).toMatchObject({ type: 'error', payload: { code: 'REDIS_UNAVAILABLE' } });
    expect(flooded.at(-1)).toMatchObject({ type: 'final', payload: { ok: false, error: { code: 'REDIS_UNAVAILABLE' } } });
    const floodLog = await replay(B, 'alice', floodId);
    expect(floodLog.map((e) => e.seq)).toEqual(range(1, floodLog.length));
    expect(floodLog.slice(-flooded.length)).toEqual(flooded);
    await healthUntil(B, (h) => h.status === 'ok', 'B to see Redis again');
    const fresh = await post(`${B.base}/execute`, { code: 'return 2' }, as('alice'));
    expect(fresh.status).toBe(200);
    expect(ndjsonLines(await fresh.text()).at(-1).payload).toMatchObject({ ok: true, result: 2 });
  });
});

describe('createBroker and SessionHandler on the same Redis', () => {
  it('a SessionHandler on createBroker({ redis }) shares its sessions with the EnclaveBrokers, both ways', { timeout: SLOW }, async () => {
    const X = await instance({}, EXPRESS_INSTANCE);
    // Created through the SessionHandler on X; seen, answered and replayed through the others.
    const started = await post(`${X.base}/sessions`, { code: "const a = await callTool('ask', {}); return 'got ' + a" }, asUser('alice'));
    const id = started.headers.get('x-session-id');
    const reader = ndjsonReader(started);
    const upToCall = await reader.until((e) => e.type === 'tool_call');
    const seen = await getJson(`${A.base}/sessions/${id}`, as('alice'));
    expect(seen.status).toBe(200);
    expect(['running', 'waiting_for_tool']).toContain(seen.body.state);
    expect((await getJson(`${A.base}/sessions/${id}`, as('bob'))).status).toBe(404);
    expect(await answer(B, 'alice', id, upToCall.at(-1).payload.callId, 'B')).toEqual({ status: 200, body: { success: true } });
    const onX = [...upToCall, ...(await reader.rest())];
    expect(onX.at(-1).payload).toMatchObject({ ok: true, result: 'got B' });
    expect(await replay(C, 'alice', id)).toEqual(onX);

    // The other way: an EnclaveBroker's session, listed, streamed and cancelled through X.
    const onA = await post(`${A.base}/execute`, { code: "await callTool('ask', {}); return 1" }, as('alice'));
    const idA = onA.headers.get('x-session-id');
    const readerA = ndjsonReader(onA);
    await readerA.until((e) => e.type === 'tool_call');
    const listed = (await getJson(`${X.base}/sessions`, asUser('alice'))).body.sessions.map((s) => s.sessionId);
    expect(listed).toEqual(expect.arrayContaining([id, idA]));
    expect((await getJson(`${X.base}/sessions`, asUser('bob'))).body.sessions.map((s) => s.sessionId)).not.toContain(idA);
    expect((await getJson(`${X.base}/sessions/${idA}`, asUser('bob'))).status).toBe(404);
    const followed = ndjsonReader(await fetch(`${X.base}/sessions/${idA}/stream?fromSeq=1`, { headers: asUser('alice') }));
    const head = await followed.until((e) => e.type === 'tool_call');
    const cancelled = await post(`${X.base}/sessions/${idA}/cancel`, {}, asUser('alice'));
    expect([cancelled.status, await cancelled.json()]).toEqual([200, { success: true, sessionId: idA }]);
    const throughX = [...head, ...(await followed.rest())];
    expect(throughX.at(-1)).toMatchObject({ type: 'final', payload: { error: { code: 'SESSION_CANCELLED' } } });
    expect(throughX).toEqual(await replay(B, 'alice', idA));
    expect((await readerA.rest()).at(-1)).toEqual(throughX.at(-1));
    // A DELETE through X removes an EnclaveBroker's session everywhere.
    const deleted = await fetch(`${X.base}/sessions/${idA}`, { method: 'DELETE', headers: asUser('alice') });
    expect(deleted.status).toBe(200);
    expect((await getJson(`${C.base}/sessions/${idA}`, as('alice'))).status).toBe(404);
  });

  it('createBroker({ redis }) shares in-process runs; connect() rejects naming an unreachable Redis', { timeout: SLOW }, async () => {
    const broker = createBroker({ redis: redis.url });
    await broker.connect();
    const reader = new EnclaveBroker({ redis: redis.url, limits: { heartbeatIntervalMs: 0 } });
    await reader.listen(0, '127.0.0.1');
    const events = [];
    const result = await broker.execute("console.log('in process'); return 5", { onEvent: (e) => events.push(e) });
    expect(result.value).toBe(5);
    // In-process sessions belong to `anonymous`, the principal of a broker without authentication.
    const replayed = ndjsonLines(await (await fetch(`http://127.0.0.1:${reader.port}/sessions/${events[0].sessionId}/stream`)).text());
    expect(replayed).toEqual(events);
    await broker.dispose();
    await reader.close();

    const port = await freePort();
    const unreachable = createBroker({ redis: `redis://127.0.0.1:${port}` });
    await expect(unreachable.connect()).rejects.toThrow(`Redis at 127.0.0.1:${port} is not reachable`);
    await unreachable.dispose();
    await expect(unreachable.connect()).rejects.toThrow('Broker is disposed');
  });
});

describe('the redis option in one process', () => {
  it('an unreachable Redis makes listen() reject with its address', { timeout: SLOW }, async () => {
    const port = await freePort();
    const broker = new EnclaveBroker({ redis: `redis://127.0.0.1:${port}` });
    await expect(broker.listen(0, '127.0.0.1')).rejects.toThrow(`Redis at 127.0.0.1:${port} is not reachable`);
    expect(broker.port).toBeUndefined();
    await broker.close();
  });

  it('reads the connection options of ioredis and node-redis clients', { timeout: SLOW }, async () => {
    const ioredis = new Redis({ host: '127.0.0.1', port: redis.port, db: 3, lazyConnect: true });
    const nodeRedis = createClient({ url: `${redis.url}/4` });
    for (const [client, db] of [[ioredis, 3], [nodeRedis, 4]]) {
      const broker = new EnclaveBroker({ redis: client, limits: { heartbeatIntervalMs: 0 } });
      await broker.listen(0, '127.0.0.1');
      const response = await post(`http://127.0.0.1:${broker.port}/execute`, { code: 'return 6 * 7' });
      expect(ndjsonLines(await response.text()).at(-1).payload).toMatchObject({ ok: true, result: 42 });
      await broker.close();
      await redis.client.select(db);
      expect(await redis.client.exists(`enclave:{s:${response.headers.get('x-session-id')}}:session`)).toBe(1);
    }
    await redis.client.select(0);
    // The clients were only read, never connected.
    expect(ioredis.status).toBe('wait');
    expect(nodeRedis.isOpen).toBe(false);
  });

  it('reaches Redis over TLS, trusting the client\'s CA and refusing a certificate it cannot verify', { timeout: SLOW }, async () => {
    const secure = await startRedis({ persist: false, tls: true });
    try {
      const ca = fs.readFileSync(secure.tls.ca, 'utf8');
      const client = new Redis({ host: '127.0.0.1', port: secure.tlsPort, tls: { ca }, lazyConnect: true });
      const trusted = new EnclaveBroker({ redis: client, limits: { heartbeatIntervalMs: 0 } });
      await trusted.listen(0, '127.0.0.1');
      const base = `http://127.0.0.1:${trusted.port}`;
      const response = await post(`${base}/execute`, { code: 'return 6 * 7' });
      expect(ndjsonLines(await response.text()).at(-1).payload).toMatchObject({ ok: true, result: 42 });
      expect((await getJson(`${base}/health`)).body.redis).toMatchObject({ status: 'ready', address: `127.0.0.1:${secure.tlsPort} (TLS)` });
      await trusted.close();
      // Without the CA, the server's certificate does not verify.
      const untrusted = new EnclaveBroker({ redis: `rediss://127.0.0.1:${secure.tlsPort}` });
      await expect(untrusted.listen(0, '127.0.0.1')).rejects.toThrow(`Redis at 127.0.0.1:${secure.tlsPort} (TLS) is not reachable`);
      await untrusted.close();
    } finally {
      await secure.cleanup();
    }
  });

  it('refuses options it cannot use, before anything connects', () => {
    const help = 'redis must be a redis:// or rediss:// URL, an ioredis client or a node-redis client';
    expect(() => new EnclaveBroker({ redis: 'http://127.0.0.1:6379' })).toThrow(help);
    expect(() => new EnclaveBroker({ redis: 42 })).toThrow(TypeError);
    const cluster = new Redis.Cluster([{ host: '127.0.0.1', port: redis.port }], { lazyConnect: true });
    expect(() => new EnclaveBroker({ redis: cluster })).toThrow('Redis Cluster and Sentinel clients are not supported');
    expect(() => new EnclaveBroker({ cluster: { leaseMs: 1000 } })).toThrow('cluster options need the redis option');
    expect(() => new EnclaveBroker({ redis: redis.url, cluster: { leaseMs: 100 } })).toThrow('cluster.leaseMs must be a number of at least 500');
    expect(() => new EnclaveBroker({ redis: redis.url, cluster: { maxBufferBytes: -1 } })).toThrow(TypeError);
  });

  it('a broker without redis keeps nothing in Redis', { timeout: SLOW }, async () => {
    const before = await redis.client.dbsize();
    const broker = new EnclaveBroker({ limits: { heartbeatIntervalMs: 0 } });
    await broker.listen(0, '127.0.0.1');
    const response = await post(`http://127.0.0.1:${broker.port}/execute`, { code: 'return 1' });
    await response.text();
    expect((await getJson(`http://127.0.0.1:${broker.port}/health`)).body.redis).toBeUndefined();
    await broker.close();
    expect(await redis.client.dbsize()).toBe(before);
  });
});
