// Abuse of the listen() server, tried as a hostile client would: requests may only tighten
// the operator's limits (and waiting for an engine counts against a script's timeout),
// filters are bounded, rate limits hold across spellings of one credential, failed logins
// are throttled before validate() runs, and replays end and stay small.
import { describe, expect, it, vi } from 'vitest';
import { gatedTool, listeningBrokersClosedAfterEach, ndjsonLines, ndjsonReader, postJson, runNode } from './helpers/index.mjs';

const serve = listeningBrokersClosedAfterEach();

const finalOf = async (response) => ndjsonLines(await response.text()).at(-1);

describe('clients can only tighten the operator limits', () => {
  it('POST /execute: timeout 0 is not "none", maxToolCalls cannot be raised, smaller values hold', async () => {
    const { base } = await serve({ limits: { heartbeatIntervalMs: 0, toolTimeoutMs: 300, maxToolCalls: 3 } }, (b) =>
      b.tool('noop', { handler: () => null }),
    );
    const spin = await finalOf(await postJson(`${base}/execute`, { code: 'while (true) {}', timeout: 0 }));
    expect(spin.payload.error).toEqual({ code: 'TIMEOUT', message: 'Script execution timed out after 300ms' });
    const loose = await finalOf(await postJson(`${base}/execute`, { code: 'while (true) {}', timeout: 60000 }));
    expect(loose.payload.error.message).toBe('Script execution timed out after 300ms');
    const tight = await finalOf(await postJson(`${base}/execute`, { code: 'while (true) {}', timeout: 100 }));
    expect(tight.payload.error.message).toBe('Script execution timed out after 100ms');
    const calls = await finalOf(await postJson(`${base}/execute`, { code: "for (;;) await callTool('noop', {})", maxToolCalls: 20 }));
    expect(calls.payload.error.code).toBe('MAX_TOOL_CALLS_EXCEEDED');
    expect(calls.payload.stats.toolCallCount).toBe(3);
    const fewer = await finalOf(await postJson(`${base}/execute`, { code: "for (;;) await callTool('noop', {})", maxToolCalls: 1 }));
    expect(fewer.payload.stats.toolCallCount).toBe(1);
  });

  it("POST /sessions starts from the operator's limits and clamps heartbeat, TTL and memory", async () => {
    const operator = { heartbeatIntervalMs: 0, toolTimeoutMs: 1000, sessionTtlMs: 5000, memoryLimit: 64 * 1024 * 1024 };
    const { base, broker } = await serve({ limits: operator }, (b) => gatedTool(b));
    // No config: the operator's 1 s timeout, not the original's 30 s default.
    const spin = await finalOf(await postJson(`${base}/sessions`, { code: 'while (true) {}' }));
    expect(spin.payload.error.message).toBe('Script execution timed out after 1000ms');

    const config = { heartbeatIntervalMs: 1, maxExecutionMs: Date.parse('2058-01-01') - Date.now(), maxToolCalls: 1000, memoryLimit: 1e12 };
    const res = await postJson(`${base}/sessions`, { code: "return await callTool('wait', {})", config });
    const id = res.headers.get('x-session-id');
    await ndjsonReader(res).until((e) => e.type === 'tool_call');
    expect(broker.getSession(id).limits).toMatchObject({
      heartbeatIntervalMs: 1000,
      sessionTtlMs: 5000,
      maxToolCalls: 50,
      toolTimeoutMs: 1000,
      memoryLimit: 64 * 1024 * 1024,
    });
    const info = await (await fetch(`${base}/sessions/${id}`)).json();
    expect(info.expiresAt - info.createdAt).toBe(5000);

    const small = await postJson(`${base}/execute`, { code: 'return 1', memoryLimit: 40e6, heartbeatIntervalMs: 1e9, deadlineMs: 2500 });
    const smallId = small.headers.get('x-session-id');
    await small.text();
    expect(broker.getSession(smallId).limits).toMatchObject({ memoryLimit: 32 * 1024 * 1024, heartbeatIntervalMs: 60000, deadlineMs: 2500 });
    for (const bad of [{ timeout: -1 }, { memoryLimit: 'lots' }, { deadlineMs: true }]) {
      const refused = await postJson(`${base}/execute`, { code: '1', ...bad });
      expect([refused.status, (await refused.json()).code]).toEqual([400, 'INVALID_REQUEST']);
    }
  });

  it('the time a script waits for an engine counts against its own timeout', async () => {
    // One engine process: the spinner holds it, the second execution queues behind it.
    const child = await runNode(
      `
      const { EnclaveBroker } = await import(INDEX);
      const broker = new EnclaveBroker({ limits: { heartbeatIntervalMs: 0, toolTimeoutMs: 20000 } });
      await broker.listen(0, '127.0.0.1');
      const post = (body) => fetch('http://127.0.0.1:' + broker.port + '/execute', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      const spinner = await post({ code: 'while (true) {}' });
      const spinnerId = spinner.headers.get('x-session-id');
      const waiting = await post({ code: 'await new Promise(() => {})', timeout: 500 });
      const events = (await waiting.text()).trim().split('\\n').map((l) => JSON.parse(l));
      const spinnerState = broker.getSession(spinnerId).state;
      await broker.close({ timeout: 0 });
      console.log(JSON.stringify({ final: events.at(-1).payload, spinnerState }));
      `,
      { timeoutMs: 60000, env: { ENCLAVE_BROKER_MAX_ENGINES: '1' } },
    );
    expect(child.stderr).toBe('');
    const { final, spinnerState } = JSON.parse(child.stdout);
    expect(final.error).toEqual({ code: 'TIMEOUT', message: 'Script execution timed out after 500ms' });
    // It timed out while the spinner still held the only engine: it never ran.
    expect(spinnerState).toBe('running');
  }, 70000);
});

function contentFilter(patterns) {
  return { mode: 'exclude', rules: [{ content: { patterns } }] };
}

const globs = (n) => Array.from({ length: n }, (_, i) => ({ type: 'glob', pattern: `*needle-${i}*`, caseInsensitive: true }));

describe('bounded filters', () => {
  it('refuses filters past the caps with 400 FILTER_TOO_LARGE, and serves within them', async () => {
    const { base, broker } = await serve({ limits: { heartbeatIntervalMs: 0, maxStdoutBytes: 16 << 20 } }, (b) => gatedTool(b));
    // The reported attack: 10k content patterns in one filter.
    const huge = contentFilter(Array.from({ length: 10000 }, (_, i) => ({ type: 'exact', pattern: `p${i}` })));
    const refused = await postJson(`${base}/sessions`, { code: 'return 1', filter: huge });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ code: 'FILTER_TOO_LARGE', message: expect.stringMatching(/^filter is \d+ bytes of JSON; the limit is 16384$/) });
    const many = await postJson(`${base}/sessions`, { code: 'return 1', filter: contentFilter(globs(65)) });
    expect(await many.json()).toEqual({ code: 'FILTER_TOO_LARGE', message: 'filter has 65 content patterns; the limit is 64' });
    expect(broker.listSessions()).toEqual([]);

    // At the caps, against 1 MiB events: it filters correctly, and the server keeps serving
    // other requests while the filtered stream is open.
    const code = "for (let i = 0; i < 4; i++) console.log((i === 2 ? 'NEEDLE-7' : 'x') + 'y'.repeat(1 << 20)); return await callTool('wait', {})";
    const res = await postJson(`${base}/sessions`, { code, config: {}, filter: contentFilter(globs(64)) });
    expect(res.status).toBe(200);
    const id = res.headers.get('x-session-id');
    const stream = ndjsonReader(res);
    const seen = await stream.until((e) => e.type === 'tool_call');
    expect((await (await fetch(`${base}/health`)).json()).status).toBe('ok');
    expect(seen.filter((e) => e.type === 'stdout').length).toBe(3);
    const replayFilter = encodeURIComponent(JSON.stringify(contentFilter(globs(65))));
    const tooBig = await fetch(`${base}/sessions/${id}/stream?filter=${replayFilter}`);
    expect([tooBig.status, (await tooBig.json()).code]).toEqual([400, 'FILTER_TOO_LARGE']);
    await postJson(`${base}/sessions/${id}/cancel`, {});
    expect((await stream.rest()).at(-1).type).toBe('final');
  });
});

// The statuses of GETs to `url`, one per headers object, sent one after another.
async function statuses(url, headersList) {
  const out = [];
  for (const headers of headersList) out.push((await fetch(url, { headers })).status);
  return out;
}

// A validate() that accepts tokens in any case: only the principal it names is stable.
async function caseInsensitiveTokens(token) {
  const normal = token.toLowerCase();
  if (normal === 'tok-a') return { valid: true, userId: 'A' };
  if (normal === 'tok-b') return { valid: true, userId: 'B' };
  return { valid: normal === 'tok-anon' };
}

describe('rate limits hold', () => {
  it('are keyed on the validated principal, not on how its credential is spelled', async () => {
    const { base } = await serve({ authentication: { type: 'bearer', validate: caseInsensitiveTokens }, rateLimiting: { windowMs: 60000, maxRequests: 5 } });
    const spellings = ['Bearer tok-a', 'bearer tok-a', 'Bearer  tok-a ', 'BEARER TOK-A', 'Bearer Tok-A', 'Bearer tok-A'];
    const requests = Array.from({ length: 12 }, (_, i) => ({ authorization: spellings[i % spellings.length], 'x-api-key': `random-${i}` }));
    const got = await statuses(`${base}/sessions`, requests);
    expect(got.filter((s) => s === 200).length).toBe(5);
    expect(got.slice(5)).toEqual(Array(7).fill(429));
    const other = await fetch(`${base}/sessions`, { headers: { authorization: 'Bearer tok-b' } });
    expect(other.status).toBe(200);
    // Without a userId the key is the credential itself.
    const anon = Array.from({ length: 7 }, (_, i) => ({ authorization: i % 2 ? 'bearer   tok-anon' : 'Bearer tok-anon', 'x-api-key': `k${i}` }));
    expect(await statuses(`${base}/sessions`, anon)).toEqual([200, 200, 200, 200, 200, 429, 429]);
  });

  it('throttle failed authentications per address before validate() runs, with 429 and Retry-After', async () => {
    const validate = vi.fn(async (token) => ({ valid: token === 'right', userId: 'u' }));
    const { base } = await serve({ authentication: { type: 'bearer', validate, maxFailures: 5, failureWindowMs: 60000 } });
    const attempt = (token) => fetch(`${base}/sessions`, { headers: { authorization: `Bearer ${token}` } });
    const got = [];
    for (let i = 0; i < 20; i++) got.push((await attempt(`guess-${i}`)).status);
    expect(got).toEqual([...Array(5).fill(401), ...Array(15).fill(429)]);
    expect(validate).toHaveBeenCalledTimes(5);
    const throttled = await attempt('right');
    expect(throttled.status).toBe(429);
    // The rest of the 60 s window that began with the first failure, in whole seconds.
    const retryAfter = Number(throttled.headers.get('retry-after'));
    expect(retryAfter >= 1 && retryAfter <= 60).toBe(true);
    expect((await throttled.json()).code).toBe('AUTH_THROTTLED');
    expect(validate).toHaveBeenCalledTimes(5);
    expect((await fetch(`${base}/health`)).status).toBe(200);

    // The default allows 20 failures a minute.
    const { base: other } = await serve({ authentication: { type: 'bearer', validate: async () => ({ valid: false }) } });
    const missing = [];
    for (let i = 0; i < 22; i++) missing.push((await fetch(`${other}/sessions`, { headers: { authorization: `Bearer g${i}` } })).status);
    expect(missing).toEqual([...Array(20).fill(401), 429, 429]);
  });
});

describe('replays end and stay small', () => {
  it('a cursor at or past final of a finished session ends the stream at once', async () => {
    const { base } = await serve();
    const res = await postJson(`${base}/sessions`, { code: "console.log('a'); return 1" });
    const id = res.headers.get('x-session-id');
    const last = (await finalOf(res)).seq;
    const replay = async (query, headers = {}) => (await fetch(`${base}/sessions/${id}/stream${query}`, { headers })).text();
    expect(await replay('', { 'Last-Event-ID': String(last) })).toBe('');
    expect(await replay(`?fromSeq=${last + 1}`)).toBe('');
    expect(await replay('?from=1000')).toBe('');
    expect(ndjsonLines(await replay('', { 'Last-Event-ID': String(last - 1) })).map((e) => e.type)).toEqual(['final']);
  });

  it('a cursor past the end of a running session ends when it finishes', async () => {
    let gate;
    const { base } = await serve({}, (b) => {
      gate = gatedTool(b);
    });
    const res = await postJson(`${base}/sessions`, { code: "return await callTool('wait', {})" });
    const id = res.headers.get('x-session-id');
    await ndjsonReader(res).until((e) => e.type === 'tool_call');
    const ahead = fetch(`${base}/sessions/${id}/stream`, { headers: { 'Last-Event-ID': '1000' } }).then((r) => r.text());
    gate.open();
    expect(await ahead).toBe('');
  });

  it('a replay reader that never reads holds a bounded buffer on the server', async () => {
    // The server runs in its own process, so its memory is measured alone; the clients read
    // one chunk each, then stop reading.
    const child = await runNode(
      `
      import net from 'node:net';
      const { EnclaveBroker } = await import(INDEX);
      const broker = new EnclaveBroker({ limits: { heartbeatIntervalMs: 0 } });
      broker.tool('sink', { handler: () => 1 });
      await broker.listen(0, '127.0.0.1');
      const base = 'http://127.0.0.1:' + broker.port;
      // About 24 MiB of history: six tool calls with 4 MiB of arguments each.
      const code = "const big = 'z'.repeat(4 << 20); for (let i = 0; i < 6; i++) await callTool('sink', { big }); return 1";
      const res = await fetch(base + '/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
      const id = res.headers.get('x-session-id');
      await res.text();
      globalThis.gc?.();
      const rss = () => process.memoryUsage.rss();
      const before = rss();
      const sockets = await Promise.all(Array.from({ length: 10 }, () => new Promise((resolve, reject) => {
        const socket = net.connect(broker.port, '127.0.0.1', () => socket.write('GET /sessions/' + id + '/stream HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'));
        socket.once('data', () => { socket.pause(); resolve(socket); });
        socket.on('error', reject);
      })));
      let peak = rss();
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 25));
        peak = Math.max(peak, rss());
      }
      for (const socket of sockets) socket.destroy();
      await broker.close({ timeout: 0 });
      console.log(JSON.stringify({ grewMiB: (peak - before) / 1048576 }));
      `,
      { timeoutMs: 60000 },
    );
    expect(child.stderr).toBe('');
    const { grewMiB } = JSON.parse(child.stdout);
    // Ten full copies of the history would be 240 MiB; each stalled reader may hold a few
    // 64 KiB chunks and hyper's write buffer.
    expect(grewMiB).toBeLessThan(64);
  }, 70000);
});
