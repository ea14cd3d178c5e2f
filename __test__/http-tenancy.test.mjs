// Tenancy over HTTP, tried as a hostile tenant would: two users (A and B, told apart by
// validate()'s userId) on a real listen() server, and on the original's SessionHandler
// mounted in Express with a principal resolver. Each session belongs to its creator;
// anyone else gets the 404 of a session that does not exist, unless `authorize` grants it.
// Client-chosen session ids never replace a session (409).
import crypto from 'node:crypto';
import { once } from 'node:events';
import express from 'express';
import { describe, expect, it, vi } from 'vitest';
import { createBroker, createSessionHandler, registerExpressRoutes } from '../index.mjs';
import { gatedTool, listeningBrokersClosedAfterEach, ndjsonLines, ndjsonReader, postJson } from './helpers/index.mjs';

const serve = listeningBrokersClosedAfterEach();

const USERS = { 'token-a': 'A', 'token-b': 'B', 'token-admin': 'admin' };
const as = (token) => ({ authorization: `Bearer ${token}` });
const A = as('token-a');
const B = as('token-b');
const ADMIN = as('token-admin');
const validate = async (token) => (USERS[token] ? { valid: true, userId: USERS[token] } : { valid: false });
const twoUsers = (extra = {}) => ({ authentication: { type: 'bearer', validate }, ...extra });

const get = (url, headers) => fetch(url, { headers });
const del = (url, headers) => fetch(url, { method: 'DELETE', headers });

async function body(response) {
  return [response.status, await response.json()];
}

const notFound = (id) => [404, { code: 'NOT_FOUND', message: `Session ${id} not found` }];

describe('sessions belong to the principal that created them', () => {
  it("B cannot list, read, stream, cancel, delete or answer A's session; A can", async () => {
    const { base, broker } = await serve(twoUsers({ externalTools: ['client:approve'] }));
    const code = "console.log('secret of A'); const r = await callTool('client:approve', {amount: 100}); return r";
    const created = await postJson(`${base}/sessions`, { code }, A);
    const id = created.headers.get('x-session-id');
    const stream = ndjsonReader(created);
    const [call] = (await stream.until((e) => e.type === 'tool_call')).filter((e) => e.type === 'tool_call');
    await vi.waitFor(() => expect(broker.getSession(id).state).toBe('waiting_for_tool'));

    expect(await body(await get(`${base}/sessions`, B))).toEqual([200, { sessions: [], total: 0 }]);
    const mine = (await (await get(`${base}/sessions`, A)).json()).sessions.map((s) => s.sessionId);
    expect(mine).toEqual([id]);

    // Every :id route answers B exactly as for a session that does not exist.
    expect(await body(await get(`${base}/sessions/s_nope`, B))).toEqual(notFound('s_nope'));
    expect(await body(await get(`${base}/sessions/${id}`, B))).toEqual(notFound(id));
    expect(await body(await get(`${base}/sessions/${id}/stream`, B))).toEqual(notFound(id));
    expect(await body(await postJson(`${base}/sessions/${id}/cancel`, {}, B))).toEqual(notFound(id));
    expect(await body(await del(`${base}/sessions/${id}`, B))).toEqual(notFound(id));
    const forged = await postJson(`${base}/sessions/${id}/tool-result`, { callId: call.payload.callId, result: { approved: true } }, B);
    expect(await body(forged)).toEqual(notFound(id));
    expect(broker.getSession(id).state).toBe('waiting_for_tool');

    // A's own requests work, and A's script gets A's answer.
    expect((await (await get(`${base}/sessions/${id}`, A)).json()).state).toBe('waiting_for_tool');
    const answered = await postJson(`${base}/sessions/${id}/tool-result`, { callId: call.payload.callId, result: { approved: false } }, A);
    expect(await body(answered)).toEqual([200, { success: true }]);
    const final = (await stream.rest()).at(-1);
    expect(final.payload).toMatchObject({ ok: true, result: { approved: false } });
    const replay = ndjsonLines(await (await get(`${base}/sessions/${id}/stream`, A)).text());
    expect(replay.find((e) => e.type === 'stdout').payload.chunk).toBe('secret of A\n');
    expect((await del(`${base}/sessions/${id}`, A)).status).toBe(200);
    expect((await get(`${base}/sessions`)).status).toBe(401);
  });

  it('sessions made with /execute are owned too, and an authorize hook grants an admin view', async () => {
    const authorize = vi.fn((principal) => principal.userId === 'admin');
    const { base, broker } = await serve(twoUsers({ authorize }), (b) => gatedTool(b));
    const res = await postJson(`${base}/execute`, { code: "return await callTool('wait', {})" }, A);
    const id = res.headers.get('x-session-id');
    await ndjsonReader(res).until((e) => e.type === 'tool_call');

    expect((await (await get(`${base}/sessions`, A)).json()).total).toBe(1);
    expect(authorize).not.toHaveBeenCalled();
    expect((await get(`${base}/sessions/${id}`, B)).status).toBe(404);
    expect(authorize).toHaveBeenLastCalledWith(
      { id: 'user:"B"', type: 'user', userId: 'B' },
      'read',
      expect.objectContaining({ sessionId: id, state: 'running', owner: { id: 'user:"A"', type: 'user', userId: 'A' } }),
      expect.objectContaining({ method: 'GET', path: `/sessions/${id}` }),
    );
    const listed = await (await get(`${base}/sessions`, ADMIN)).json();
    expect(listed.sessions.map((s) => s.sessionId)).toEqual([id]);
    expect(authorize).toHaveBeenLastCalledWith(expect.objectContaining({ userId: 'admin' }), 'list', expect.objectContaining({ sessionId: id }), expect.anything());
    expect((await (await get(`${base}/sessions/${id}`, ADMIN)).json()).sessionId).toBe(id);
    expect((await postJson(`${base}/sessions/${id}/cancel`, {}, ADMIN)).status).toBe(200);
    expect(broker.getSession(id).state).toBe('cancelled');
    // A hook that throws denies.
    authorize.mockImplementation(() => {
      throw new Error('hook broke');
    });
    expect((await get(`${base}/sessions/${id}`, ADMIN)).status).toBe(404);
  });

  it('without userId the principal is the validated credential, however the header is spelled', async () => {
    const { base } = await serve({ authentication: { type: 'bearer', validate: async (t) => ({ valid: t === 'k1' || t === 'k2' }) } });
    const res = await postJson(`${base}/sessions`, { code: 'return 1' }, { authorization: 'Bearer k1' });
    const id = res.headers.get('x-session-id');
    await res.text();
    expect((await get(`${base}/sessions/${id}`, { authorization: 'bearer   k1' })).status).toBe(200);
    expect((await get(`${base}/sessions/${id}`, { authorization: 'Bearer k2' })).status).toBe(404);
  });

  it('without authentication everyone is the one anonymous principal, which also owns in-process sessions', async () => {
    const { base, broker } = await serve();
    const session = broker.createSession();
    expect((await (await get(`${base}/sessions/${session.sessionId}`)).json()).sessionId).toBe(session.sessionId);
    expect((await (await get(`${base}/sessions`)).json()).total).toBe(1);
  });
});

describe('client-chosen session ids', () => {
  it("an id in use is a 409: A's session keeps running, stays encrypted, counts and closes", async () => {
    const { base, broker } = await serve(twoUsers({ maxConcurrentSessions: 2 }), (b) => gatedTool(b));
    const ecdh = crypto.createECDH('prime256v1');
    ecdh.generateKeys();
    const clientHello = { protocolVersion: 2, clientEphemeralPubKeyB64: ecdh.getPublicKey('base64'), curve: 'P-256', supportedAlgorithms: ['AES-GCM-256'] };
    const code = "console.log('from A'); return await callTool('wait', {})";
    const first = await postJson(`${base}/sessions`, { code, sessionId: 's_shared', encryption: { mode: 'required', clientHello } }, A);
    expect(first.status).toBe(200);
    const firstStream = ndjsonReader(first);
    await firstStream.until((e) => e.type === 'enc');

    for (const headers of [B, A]) {
      const again = await postJson(`${base}/sessions`, { code: "console.log('forged'); return 'forged'", sessionId: 's_shared' }, headers);
      expect(await body(again)).toEqual([409, { code: 'SESSION_EXISTS', message: 'Session s_shared already exists' }]);
    }
    expect(await body(await postJson(`${base}/sessions`, { code: '1', sessionId: 'bad id' }, B))).toEqual([
      400,
      { code: 'INVALID_REQUEST', message: '"sessionId" must be 1 to 128 characters of letters, digits and ._:~-' },
    ]);
    // A resumes and gets its own, still encrypted, events.
    const controller = new AbortController();
    const resumed = await fetch(`${base}/sessions/s_shared/stream?fromSeq=2`, { headers: A, signal: controller.signal });
    const { event } = await ndjsonReader(resumed).next();
    controller.abort();
    expect(event).toMatchObject({ sessionId: 's_shared', seq: 2, type: 'enc' });
    const second = await postJson(`${base}/execute`, { code: "return await callTool('wait', {})" }, B);
    await ndjsonReader(second).until((e) => e.type === 'tool_call');

    // Full: a third session is refused with the capacity code, in one place for all routes.
    for (const route of ['execute', 'sessions']) {
      const full = await postJson(`${base}/${route}`, { code: 'return 1' }, B);
      expect(full.status).toBe(503);
      expect(full.headers.get('retry-after')).toBe('1');
      expect((await full.json()).code).toBe('AT_CAPACITY');
    }
    expect((await (await get(`${base}/health`)).json()).sessions).toEqual({ active: 2, total: 2 });
    // close() ends A's session as well.
    await broker.close({ timeout: 0 });
    const rest = await firstStream.rest();
    expect(rest.length).toBeGreaterThan(0);
    expect(rest.every((e) => e.type === 'enc' && e.sessionId === 's_shared')).toBe(true);
    expect(broker.listSessions()).toEqual([]);
  }, 20000);
});

// The original's SessionHandler in a real Express app; `close()` stops both.
async function mount(config) {
  const broker = createBroker();
  gatedTool(broker);
  const app = express();
  app.use(express.json());
  registerExpressRoutes(app, createSessionHandler({ broker, extraRoutes: true, ...config }));
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    broker,
    base,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await broker.dispose();
    },
  };
}

describe("the original's SessionHandler with a principal resolver", () => {
  it('applies the same rules: own sessions only, 404 for others, authorize for more, 409 for ids in use', async () => {
    const authorize = vi.fn(async (principal, action) => principal === 'admin' && action !== 'delete');
    const h = await mount({ resolvePrincipal: (req) => req.headers['x-user'], authorize });
    try {
      const userA = { 'x-user': 'A' };
      const userB = { 'x-user': 'B' };
      const res = await postJson(`${h.base}/sessions`, { code: "return await callTool('wait', {})", sessionId: 's_handler' }, userA);
      await ndjsonReader(res).until((e) => e.type === 'tool_call');

      expect(await body(await get(`${h.base}/sessions`, userB))).toEqual([200, { sessions: [], total: 0 }]);
      expect((await (await get(`${h.base}/sessions`, userA)).json()).total).toBe(1);
      expect(await body(await get(`${h.base}/sessions/s_handler`, userB))).toEqual(notFound('s_handler'));
      expect((await get(`${h.base}/sessions/s_handler/stream`, userB)).status).toBe(404);
      expect((await postJson(`${h.base}/sessions/s_handler/cancel`, {}, userB)).status).toBe(404);
      expect((await del(`${h.base}/sessions/s_handler`, userB)).status).toBe(404);
      expect(h.broker.getSession('s_handler').state).toBe('running');
      expect(authorize).toHaveBeenCalledWith('B', 'read', expect.objectContaining({ sessionId: 's_handler', owner: 'A' }));

      const dup = await postJson(`${h.base}/sessions`, { code: 'return 1', sessionId: 's_handler' }, userB);
      expect(await body(dup)).toEqual([409, { code: 'SESSION_EXISTS', message: 'Session s_handler already exists' }]);
      expect((await get(`${h.base}/sessions`)).status).toBe(401);

      expect((await (await get(`${h.base}/sessions/s_handler`, { 'x-user': 'admin' })).json()).state).toBe('running');
      expect((await del(`${h.base}/sessions/s_handler`, { 'x-user': 'admin' })).status).toBe(404);
      expect((await del(`${h.base}/sessions/s_handler`, userA)).status).toBe(200);
    } finally {
      await h.close();
    }
  });
});
