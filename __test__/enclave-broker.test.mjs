// EnclaveBroker.listen(): the Rust HTTP server, driven over real sockets.
import net from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { EnclaveBroker, ToolRegistry } from '../index.mjs';
import { TOOL_CALL_EVENTS, listeningBrokersClosedAfterEach, ndjsonLines, postJson } from './helpers/index.mjs';

const serve = listeningBrokersClosedAfterEach();
const lines = ndjsonLines;
const post = postJson;

// A tool the test releases by hand, so mid-run behaviour never depends on timing.
function gate() {
  let release;
  const opened = new Promise((resolve) => {
    release = resolve;
  });
  return { release, tool: { handler: async () => opened.then(() => 'released') } };
}

// Reads an NDJSON response until `stop(events)` says so, then aborts the connection.
async function readUntil(response, controller, stop) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const events = [];
  while (!stop(events)) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      events.push(JSON.parse(buffer.slice(0, newline)));
      buffer = buffer.slice(newline + 1);
    }
  }
  controller.abort();
  return events;
}

function rawRequest(port, text, waitMs = 1500) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let data = '';
    socket.on('data', (chunk) => {
      data += chunk;
    });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    setTimeout(() => {
      socket.destroy();
      resolve(data);
    }, waitMs);
  });
}

describe('POST /execute', () => {
  it('streams every event of the run as NDJSON with the session id header', async () => {
    const { base } = await serve({}, (b) => b.tool('add', { handler: ({ a, b: c }) => a + c }));
    const res = await post(`${base}/execute`, { code: "console.log('hi'); return await callTool('add', {a: 1, b: 2})" });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const events = lines(await res.text());
    expect(events.map((e) => e.type)).toEqual(['session_init', 'stdout', ...TOOL_CALL_EVENTS, 'final']);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(events[0].sessionId).toBe(res.headers.get('x-session-id'));
    expect(Object.keys(events[0])).toEqual(['protocolVersion', 'sessionId', 'seq', 'type', 'payload']);
    expect(events.at(-1).payload).toMatchObject({ ok: true, result: 3, stats: { toolCallCount: 1 } });
  });

  it('applies timeout, maxToolCalls and context, and keeps the broker defaults', async () => {
    const { base } = await serve({ limits: { heartbeatIntervalMs: 0, maxToolCalls: 5 } }, (b) =>
      b.tool('noop', { handler: () => null }),
    );
    const spin = lines(await (await post(`${base}/execute`, { code: 'while (true) {}', timeout: 200 })).text());
    expect(spin.at(-1).payload.error).toEqual({ code: 'TIMEOUT', message: 'Script execution timed out after 200ms' });
    const calls = lines(
      await (await post(`${base}/execute`, { code: "for (;;) await callTool('noop', {})", maxToolCalls: 2 })).text(),
    );
    expect(calls.at(-1).payload.error.code).toBe('MAX_TOOL_CALLS_EXCEEDED');
    const ctx = lines(await (await post(`${base}/execute`, { code: 'return context.userId', context: { context: { userId: 'u7' } } })).text());
    expect(ctx.at(-1).payload.result).toBe('u7');
  });

  it('filters by types and blockedTypes, keeping session_init and final', async () => {
    const { base } = await serve({}, (b) => b.tool('t', { handler: () => 1 }));
    const code = "console.log('x'); await callTool('t', {}); return 1";
    const only = lines(await (await post(`${base}/execute`, { code, filter: { types: ['stdout'] } })).text());
    expect(only.map((e) => e.type)).toEqual(['session_init', 'stdout', 'final']);
    const blocked = lines(await (await post(`${base}/execute`, { code, filter: { blockedTypes: ['tool_progress', 'stdout'] } })).text());
    expect(blocked.map((e) => e.type)).toEqual(['session_init', 'tool_call', 'tool_result_applied', 'final']);
    const bad = await post(`${base}/execute`, { code, filter: { types: ['nonsense'] } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ code: 'INVALID_FILTER', message: 'filter.types has an unknown event type: "nonsense"' });
  });
});

async function check(res, status, code) {
  expect(res.status).toBe(status);
  expect((await res.json()).code).toBe(code);
}

describe('bad input gets a clear 4xx and the server keeps serving', () => {
  it('answers malformed, oversized, incomplete and ill-typed requests', async () => {
    const { broker, base } = await serve({ maxBodyBytes: 256, bodyTimeoutMs: 300 });
    await check(await post(`${base}/execute`, '{"code": '), 400, 'INVALID_REQUEST');
    await check(await post(`${base}/execute`, { code: 42 }), 400, 'INVALID_REQUEST');
    await check(await post(`${base}/execute`, {}), 400, 'INVALID_REQUEST');
    await check(await post(`${base}/execute`, '[1, 2]'), 400, 'INVALID_REQUEST');
    await check(await post(`${base}/execute`, { code: 'x'.repeat(1000) }), 413, 'PAYLOAD_TOO_LARGE');
    await check(await post(`${base}/execute`, { code: '1', timeout: 'soon' }), 400, 'INVALID_REQUEST');
    await check(await post(`${base}/execute`, { code: '1', context: 'nope' }), 400, 'INVALID_REQUEST');
    await check(await fetch(`${base}/sessions/s_nope`), 404, 'NOT_FOUND');
    await check(await fetch(`${base}/sessions/s_nope/stream`), 404, 'NOT_FOUND');
    await check(await fetch(`${base}/sessions/s_nope`, { method: 'DELETE' }), 404, 'NOT_FOUND');
    await check(await fetch(`${base}/nowhere`), 404, 'NOT_FOUND');
    await check(await fetch(`${base}/execute`, { method: 'PUT' }), 405, 'METHOD_NOT_ALLOWED');
    // Half a body, then silence.
    const half = await rawRequest(broker.port, 'POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"code":');
    expect(half).toMatch(/^HTTP\/1\.1 408/);
    expect(half).toContain('"code":"REQUEST_TIMEOUT"');
    // Still serving.
    const ok = lines(await (await post(`${base}/execute`, { code: 'return 1' })).text());
    expect(ok.at(-1).payload.result).toBe(1);
  });

  it('treats unparsable replay positions as the start, as the original does', async () => {
    const { base } = await serve();
    const res = await post(`${base}/sessions`, { code: 'return 1', sessionId: 's_replay' });
    await res.text();
    for (const suffix of ['?fromSeq=abc', '?fromSeq=-4', '?from=x']) {
      const replay = lines(await (await fetch(`${base}/sessions/s_replay/stream${suffix}`)).text());
      expect(replay[0].seq).toBe(1);
    }
    const header = lines(await (await fetch(`${base}/sessions/s_replay/stream`, { headers: { 'Last-Event-ID': 'abc' } })).text());
    expect(header[0].seq).toBe(1);
  });

  it('does not hang on a catastrophic regex filter', async () => {
    const { base } = await serve();
    const filter = {
      mode: 'include',
      rules: [{ content: { patterns: [{ type: 'regex', pattern: '^(a+)+$', field: 'payload.chunk' }] } }],
    };
    const code = `console.log('${'a'.repeat(40)}b'); return 1`;
    const events = lines(await (await post(`${base}/sessions`, { code, filter })).text());
    expect(events.map((e) => e.type)).toEqual(['session_init', 'final']);
  });
});

describe('the original session routes', () => {
  it('creates, lists, reads, replays, cancels and deletes sessions', async () => {
    const g = gate();
    const { base } = await serve({}, (b) => b.tool('slow', g.tool));
    const created = await post(`${base}/sessions`, { code: "return await callTool('slow', {})", sessionId: 's_route' });
    expect(created.headers.get('x-session-id')).toBe('s_route');
    const controller = new AbortController();
    const live = await fetch(`${base}/sessions/s_route/stream`, { signal: controller.signal });
    const first = await readUntil(live, controller, (events) => events.some((e) => e.type === 'tool_result_applied' || e.type === 'tool_progress'));
    expect(first[0].seq).toBe(1);
    const info = await (await fetch(`${base}/sessions/s_route`)).json();
    expect(info).toMatchObject({ sessionId: 's_route', state: 'running', stats: { toolCallCount: 1 } });
    const list = await (await fetch(`${base}/sessions`)).json();
    expect(list.total).toBe(1);
    expect(list.sessions[0].stats.toolCallCount).toBe(0);
    const cancelled = await post(`${base}/sessions/s_route/cancel`, { reason: 'enough' });
    expect(await cancelled.json()).toEqual({ success: true, sessionId: 's_route' });
    const all = lines(await created.text());
    expect(all.at(-1).payload.error).toEqual({ code: 'SESSION_CANCELLED', message: 'Session was cancelled' });
    g.release();
    const deleted = await fetch(`${base}/sessions/s_route`, { method: 'DELETE' });
    expect(await deleted.json()).toEqual({ success: true, sessionId: 's_route' });
    expect((await fetch(`${base}/sessions/s_route`)).status).toBe(404);
  });

  it('answers CORS preflight and echoes allowed origins only', async () => {
    const { base } = await serve({ allowedOrigins: ['https://app.example'] });
    const preflight = await fetch(`${base}/execute`, { method: 'OPTIONS', headers: { Origin: 'https://app.example' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(preflight.headers.get('vary')).toBe('Origin');
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET, POST, DELETE, OPTIONS');
    expect(preflight.headers.get('access-control-max-age')).toBe('86400');
    const other = await fetch(`${base}/health`, { headers: { Origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('streams that lose nothing', () => {
  it('resumes after a disconnect with every event exactly once', async () => {
    const gates = [gate(), gate()];
    let next = 0;
    const { base } = await serve({}, (b) => b.tool('step', { handler: () => gates[next++].tool.handler() }));
    const controller = new AbortController();
    const res = await post(`${base}/execute`, { code: "await callTool('step', {}); console.log('mid'); await callTool('step', {}); return 'end'" }, {});
    const sessionId = res.headers.get('x-session-id');
    const seen = await readUntil(res, controller, (events) => events.some((e) => e.type === 'tool_progress'));
    // The client is gone; the session goes on (no cancelOnDisconnect).
    gates[0].release();
    gates[1].release();
    const last = seen.at(-1).seq;
    const resumed = lines(await (await fetch(`${base}/sessions/${sessionId}/stream`, { headers: { 'Last-Event-ID': String(last) } })).text());
    const all = [...seen, ...resumed].map((e) => e.seq);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    expect(resumed.at(-1)).toMatchObject({ type: 'final', payload: { ok: true, result: 'end' } });
  });

  it('cancels on disconnect only when configured to', async () => {
    const g = gate();
    const { base, broker } = await serve({ cancelOnDisconnect: true }, (b) => b.tool('slow', g.tool));
    const controller = new AbortController();
    const res = await fetch(`${base}/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: "return await callTool('slow', {})" }),
      signal: controller.signal,
    });
    const sessionId = res.headers.get('x-session-id');
    await readUntil(res, controller, (events) => events.some((e) => e.type === 'tool_progress'));
    await vi.waitFor(() => expect(broker.getSession(sessionId).state).toBe('cancelled'));
    g.release();
  });
});

describe('authentication and rate limiting', () => {
  it('checks bearer tokens with the user validate function', async () => {
    const validate = vi.fn(async (token) => {
      if (token === 'boom') throw new Error('validator broke');
      return { valid: token === 'good', userId: 'u1' };
    });
    const { base } = await serve({ authentication: { type: 'bearer', validate } });
    const status = async (headers) => {
      const res = await post(`${base}/execute`, { code: 'return 1' }, headers);
      const body = await res.text();
      return [res.status, res.status === 200 ? 'ok' : JSON.parse(body).code];
    };
    expect(await status({})).toEqual([401, 'UNAUTHORIZED']);
    expect(await status({ authorization: 'Bearer bad' })).toEqual([401, 'UNAUTHORIZED']);
    expect(await status({ authorization: 'Bearer' })).toEqual([401, 'UNAUTHORIZED']);
    expect(await status({ authorization: 'Basic good' })).toEqual([401, 'UNAUTHORIZED']);
    expect(await status({ authorization: 'Bearer boom' })).toEqual([401, 'UNAUTHORIZED']);
    expect(await status({ authorization: 'Bearer good' })).toEqual([200, 'ok']);
    expect(validate).toHaveBeenCalledWith('good', expect.objectContaining({ method: 'POST', path: '/execute' }));
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('checks X-API-Key and custom credentials', async () => {
    const { base: apiKey } = await serve({ authentication: { type: 'api-key', validate: async (key) => ({ valid: key === 'k1' }) } });
    expect((await fetch(`${apiKey}/sessions`)).status).toBe(401);
    expect((await fetch(`${apiKey}/sessions`, { headers: { 'X-API-Key': 'k0' } })).status).toBe(401);
    expect((await fetch(`${apiKey}/sessions`, { headers: { 'X-API-Key': 'k1' } })).status).toBe(200);
    const { base: custom } = await serve({ authentication: { type: 'custom', validate: async (token, req) => ({ valid: token === 'sig' && req.headers['x-tenant'] === 't1' }) } });
    expect((await fetch(`${custom}/sessions`, { headers: { authorization: 'sig' } })).status).toBe(401);
    expect((await fetch(`${custom}/sessions`, { headers: { authorization: 'sig', 'x-tenant': 't1' } })).status).toBe(200);
  });

  it('limits requests per key with 429 and Retry-After', async () => {
    const { base } = await serve({ rateLimiting: { windowMs: 60000, maxRequests: 2, keyGenerator: (req) => req.headers['x-user'] ?? 'anon' } });
    const call = (user) => fetch(`${base}/sessions`, { headers: user ? { 'x-user': user } : {} });
    expect((await call('ann')).status).toBe(200);
    expect((await call('ann')).status).toBe(200);
    const limited = await call('ann');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('60');
    expect(await limited.json()).toEqual({ code: 'RATE_LIMITED', message: 'Rate limit exceeded: 2 requests per 60000ms' });
    expect((await call('bob')).status).toBe(200);
  });

  it('rejects bad options before listening', () => {
    expect(() => new EnclaveBroker({ authentication: { type: 'token', validate: () => true } })).toThrow(TypeError);
    expect(() => new EnclaveBroker({ authentication: { type: 'bearer' } })).toThrow('authentication.validate must be a function');
    expect(() => new EnclaveBroker({ rateLimiting: { windowMs: 0, maxRequests: 1 } })).toThrow(TypeError);
    expect(() => new EnclaveBroker({ redis: {} })).toThrow(
      'redis must be a redis:// or rediss:// URL, an ioredis client or a node-redis client',
    );
    const bearer = { type: 'bearer', validate: () => ({ valid: true }) };
    expect(() => new EnclaveBroker({ authentication: { ...bearer, maxFailures: 0 } })).toThrow(
      'authentication.maxFailures must be a positive integer',
    );
    expect(() => new EnclaveBroker({ authentication: { ...bearer, failureWindowMs: -1 } })).toThrow(TypeError);
    expect(() => new EnclaveBroker({ authorize: 'admins' })).toThrow('authorize must be a function');
  });
});

describe('seed options and tools run by the client', () => {
  it('maps sessionTimeout and maxConcurrentSessions, and uses a given ToolRegistry', async () => {
    const tools = new ToolRegistry();
    tools.register({ name: 'users:list', description: 'List users', parameters: { limit: { type: 'number', description: 'max', default: 2 } }, handler: ({ limit }) => [1, 2, 3].slice(0, limit) });
    const { base, broker } = await serve({ tools, sessionTimeout: 5000, maxConcurrentSessions: 1 });
    const events = lines(await (await post(`${base}/execute`, { code: "return await callTool('users:list', {})" })).text());
    expect(events.at(-1).payload.result).toEqual([1, 2]);
    const [info] = broker.listSessions();
    expect(info.expiresAt - info.createdAt).toBe(5000);
    // The finished session stays for replay, but gives its slot up when a new one needs it.
    expect(lines(await (await post(`${base}/execute`, { code: 'return 2' })).text()).at(-1).payload.result).toBe(2);
    expect(broker.listSessions().map((i) => i.sessionId)).not.toContain(info.sessionId);
    // A session that has not finished keeps its slot.
    const idle = broker.createSession();
    const full = await post(`${base}/execute`, { code: 'return 1' });
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toBe('1');
    expect(await full.json()).toEqual({
      code: 'AT_CAPACITY',
      message: 'Maximum sessions reached (1). Wait for existing sessions to complete or increase maxSessions.',
    });
    expect(() => broker.createSession()).toThrow('Maximum sessions reached (1)');
    expect(broker.listSessions().map((i) => i.sessionId)).toEqual([idle.sessionId]);
  });

  it('takes results of external tools through POST /sessions/:id/tool-result', async () => {
    const { base, broker } = await serve({ externalTools: ['client:ask'] });
    const res = await post(`${base}/sessions`, { code: "return (await callTool('client:ask', {q: 'n?'})).n * 2", sessionId: 's_ext' });
    await vi.waitFor(() => expect(broker.getSession('s_ext').state).toBe('waiting_for_tool'));
    const info = await (await fetch(`${base}/sessions/s_ext`)).json();
    expect(info.state).toBe('waiting_for_tool');
    const wrong = await post(`${base}/sessions/s_ext/tool-result`, { callId: 'c_wrong', result: 1 });
    expect(wrong.status).toBe(409);
    const { message } = await wrong.json();
    const callId = /expected (c_[0-9a-f-]+)/.exec(message)[1];
    const ok = await post(`${base}/sessions/s_ext/tool-result`, { callId, result: { n: 21 } });
    expect(await ok.json()).toEqual({ success: true });
    const events = lines(await res.text());
    expect(events.at(-1).payload.result).toBe(42);
    expect((await post(`${base}/sessions/s_ext/tool-result`, { result: 1 })).status).toBe(400);
  });
});

describe('close()', () => {
  it('frees the port and ends open streams with final', async () => {
    const g = gate();
    const broker = new EnclaveBroker({ limits: { heartbeatIntervalMs: 0 } });
    broker.tool('slow', g.tool);
    await broker.listen(0, '127.0.0.1');
    const { port } = broker;
    const res = await post(`http://127.0.0.1:${port}/execute`, { code: "return await callTool('slow', {})" });
    const text = res.text();
    await broker.close({ timeout: 100 });
    const events = lines(await text);
    expect(events.at(-1).payload.error.code).toBe('SESSION_CANCELLED');
    expect(broker.isDisposed).toBe(true);
    g.release();
    const again = new EnclaveBroker();
    await again.listen(port, '127.0.0.1');
    expect(again.port).toBe(port);
    await again.close();
  });

  it('fails to listen on a port in use with a clear error', async () => {
    const { broker } = await serve();
    const second = new EnclaveBroker();
    await expect(second.listen(broker.port, '127.0.0.1')).rejects.toThrow(/listen failed: .*in use/i);
    await expect(second.listen(70000)).rejects.toThrow('Invalid port 70000');
    await second.dispose();
  });
});
