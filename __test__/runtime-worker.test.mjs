// createRuntimeWorker (the original @enclave-vm/runtime's API) and the enclave-runtime CLI:
// options, start/stop/getStats/getSessions, the graceful stop, the CLI's environment
// variables, the broker's `mode` options, and seed 003's extracted-mode example as written.
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { EnclaveBroker, RuntimeWorker, createBroker, createRuntimeWorker } from '../index.mjs';
import { brokersDisposedAfterEach, gatedTool, runNode } from './helpers/index.mjs';
import { CLI, startWorkerProcess } from './helpers/runtime.mjs';

const makeBroker = brokersDisposedAfterEach();
const workers = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.stop({ timeout: 0 })));
});

async function startInProcess(config = {}) {
  const worker = createRuntimeWorker({ port: 0, host: '127.0.0.1', ...config });
  workers.push(worker);
  await worker.start();
  return worker;
}

describe('createRuntimeWorker', () => {
  it('has the original defaults and checks its options', () => {
    const worker = createRuntimeWorker();
    expect(worker).toBeInstanceOf(RuntimeWorker);
    expect(worker.isRunning).toBe(false);
    expect(worker.getStats()).toMatchObject({ state: 'idle', activeSessions: 0, totalSessions: 0, startedAt: 0, uptimeMs: 0, maxSessions: 10 });
    expect(worker.getSessions()).toEqual([]);
    expect(() => createRuntimeWorker({ port: 70000 })).toThrow(new TypeError('Invalid port 70000'));
    expect(() => createRuntimeWorker({ maxSessions: 0 })).toThrow(TypeError);
    expect(() => createRuntimeWorker({ wsPath: 'ws' })).toThrow('wsPath must start with "/"');
    expect(() => createRuntimeWorker({ auth: { token: '' } })).toThrow('auth needs a non-empty token');
    expect(() => createRuntimeWorker({ defaultLimits: { maxToolCalls: -1 } })).toThrow(TypeError);
    expect(() => createRuntimeWorker({ tools: {} })).toThrow('Unknown runtime worker option "tools"');
  });

  it('starts, runs sessions for a broker, reports them, and stops', async () => {
    const worker = await startInProcess({ maxSessions: 4 });
    expect(worker.isRunning).toBe(true);
    expect(worker.url).toBe(`ws://127.0.0.1:${worker.port}/ws`);
    await expect(worker.start()).rejects.toThrow('Cannot start runtime in state: running');
    const broker = makeBroker({ mode: 'extracted', runtimeUrl: worker.url });
    const gate = gatedTool(broker);
    const running = broker.execute("return await callTool('wait', {})");
    await expect.poll(() => worker.getSessions().length).toBe(1);
    const [info] = worker.getSessions();
    expect(info).toEqual({ sessionId: expect.stringMatching(/^s_/), state: 'running', createdAt: expect.any(Number), expiresAt: expect.any(Number) });
    const stats = worker.getStats();
    expect(stats).toMatchObject({ state: 'running', activeSessions: 1, totalSessions: 1, connections: 1, maxSessions: 4 });
    expect(stats.memoryUsage.rss).toBeGreaterThan(0);
    gate.open();
    expect((await running).value).toBe('open');
    const health = await (await fetch(`http://127.0.0.1:${worker.port}/health`)).json();
    expect(health).toMatchObject({ status: 'healthy', activeSessions: 0, maxSessions: 4, connections: 1 });
    await worker.stop();
    expect(worker.getStats().state).toBe('stopped');
    expect(worker.isRunning).toBe(false);
  });

  it('a port in use is an error from start()', async () => {
    const first = await startInProcess();
    const second = createRuntimeWorker({ port: first.port, host: '127.0.0.1' });
    await expect(second.start()).rejects.toThrow(/listen failed/);
    expect(second.isRunning).toBe(false);
  });

  it('stop() is graceful: running sessions finish; new executions go to another worker', async () => {
    const stopping = await startInProcess();
    const broker = makeBroker({ mode: 'extracted', runtimeUrl: stopping.url });
    const gate = gatedTool(broker);
    const running = broker.execute("return await callTool('wait', {})");
    await expect.poll(() => stopping.getStats().activeSessions).toBe(1);
    const stopped = stopping.stop({ timeout: 20000 });
    await expect.poll(() => broker.getRuntimeStatus()[0].draining).toBe(true);
    gate.open();
    expect((await running).value).toBe('open');
    await stopped;
    expect((await broker.execute('return 1')).error.code).toBe('RUNTIME_LOST');
  });

  it('stop() cancels what is still running after its timeout; the broker reports RUNTIME_LOST', async () => {
    const worker = await startInProcess();
    const broker = makeBroker({ mode: 'extracted', runtimeUrl: worker.url });
    gatedTool(broker);
    const running = broker.execute("return await callTool('wait', {})");
    await expect.poll(() => worker.getStats().activeSessions).toBe(1);
    await worker.stop({ timeout: 50 });
    const result = await running;
    expect(result.error.code).toBe('RUNTIME_LOST');
    expect(result.error.message).toBe(`The runtime worker at ${worker.url} stopped before the run finished (Session was cancelled)`);
  });
});

describe('the enclave-runtime CLI', () => {
  it("takes the original's environment variables (port, host, token, timeout, maxToolCalls)", async () => {
    const worker = await startWorkerProcess({
      env: { ENCLAVE_PORT: '1', ENCLAVE_HOST: '0.0.0.0', ENCLAVE_AUTH_TOKEN: 'one, two', ENCLAVE_TIMEOUT: '200', ENCLAVE_MAX_TOOL_CALLS: '1' },
    });
    try {
      expect(worker.output()).toContain('token required');
      const socket = new WebSocket(worker.wsUrl, { headers: { authorization: 'Bearer two' } });
      const finals = new Map();
      const calls = [];
      socket.on('message', (data) => {
        const m = JSON.parse(data.toString());
        if (m.type === 'final') finals.set(m.sessionId, m.payload);
        if (m.type === 'tool_call') calls.push(m);
      });
      await new Promise((resolve, reject) => {
        socket.once('open', resolve);
        socket.once('error', reject);
      });
      socket.send(JSON.stringify({ type: 'execute', sessionId: 's_spin', code: 'while (true) {}' }));
      socket.send(JSON.stringify({ type: 'execute', sessionId: 's_calls', code: "await callTool('a', {}); await callTool('a', {})" }));
      await expect.poll(() => calls.length).toBe(1);
      socket.send(JSON.stringify({ type: 'tool_result', sessionId: 's_calls', callId: calls[0].payload.callId, success: true }));
      await expect.poll(() => finals.size, { timeout: 10000 }).toBe(2);
      expect(finals.get('s_spin').error).toEqual({ code: 'TIMEOUT', message: 'Script execution timed out after 200ms', name: 'Error' });
      expect(finals.get('s_calls').error.code).toBe('MAX_TOOL_CALLS_EXCEEDED');
      socket.terminate();
    } finally {
      await worker.stop();
    }
  });

  it('flags win over the environment; bad values exit with a message; SIGTERM stops gracefully', async () => {
    for (const [args, env, message] of [
      [['--port', 'abc'], {}, 'enclave-runtime: ENCLAVE_PORT / --port must be an integer ≥ 0, got "abc"'],
      [[], { ENCLAVE_MAX_TOOL_CALLS: '-2' }, 'enclave-runtime: ENCLAVE_MAX_TOOL_CALLS / --max-tool-calls must be an integer ≥ 0, got "-2"'],
      [['--verbose'], {}, 'enclave-runtime: unknown option --verbose (see --help)'],
    ]) {
      const run = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 10000 });
      expect([run.status, run.stderr.trim()]).toEqual([1, message]);
    }
    const worker = await startWorkerProcess({ env: { ENCLAVE_MAX_SESSIONS: '3' }, args: ['--max-sessions', '5'] });
    expect(worker.output()).toContain('max sessions 5');
    const { code } = await worker.stop();
    expect(code).toBe(0);
    expect(worker.output()).toContain('enclave-runtime: stopped');
  });
});

describe("the broker's mode option", () => {
  it("is 'embedded' unless told otherwise, and refuses what it cannot use", () => {
    expect(makeBroker().mode).toBe('embedded');
    expect(makeBroker({ mode: 'embedded' }).getRuntimeStatus()).toEqual([]);
    expect(() => createBroker({ mode: 'remote' })).toThrow(new TypeError('mode must be \'embedded\' or \'extracted\', got "remote"'));
    expect(() => createBroker({ mode: 'extracted' })).toThrow(/mode 'extracted' needs a runtime worker: give runtimeUrl/);
    expect(() => createBroker({ mode: 'extracted', runtimeUrl: 'http://h:1' })).toThrow(new TypeError('Runtime URL "http://h:1" must start with ws://'));
    expect(() => createBroker({ mode: 'extracted', runtimeUrl: 'wss://h:1' })).toThrow(/TLS-terminating proxy/);
    expect(() => createBroker({ mode: 'extracted', runtimeUrl: 'ws://a:1', runtimeUrls: ['ws://b:1'] })).toThrow('not both');
    expect(() => createBroker({ runtimeUrl: 'ws://a:1' })).toThrow("runtimeUrl is only used with mode: 'extracted'");
    expect(() => createBroker({ mode: 'extracted', runtimeUrl: 'ws://a:1', runtimeConnection: { retries: 3 } })).toThrow('Unknown runtimeConnection option "retries"');
  });

  it('EnclaveBroker takes it too, and its HTTP sessions run on the worker (encryption and replay included)', async () => {
    const worker = await startInProcess();
    const broker = new EnclaveBroker({ mode: 'extracted', runtimeUrl: worker.url, limits: { heartbeatIntervalMs: 0 } });
    broker.tool('add', { handler: ({ a, b }) => a + b });
    await broker.listen(0, '127.0.0.1');
    try {
      expect(broker.mode).toBe('extracted');
      const base = `http://127.0.0.1:${broker.port}`;
      const response = await fetch(`${base}/execute`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code: "console.log('x'); return await callTool('add', { a: 40, b: 2 })" }),
      });
      const events = (await response.text()).trim().split('\n').map((line) => JSON.parse(line));
      expect(events.map((e) => e.type)).toEqual(['session_init', 'stdout', 'tool_call', 'tool_progress', 'tool_progress', 'tool_result_applied', 'final']);
      expect(events.at(-1).payload.result).toBe(42);
      expect(worker.getStats().totalSessions).toBe(1);
      const replay = await (await fetch(`${base}/sessions/${events[0].sessionId}/stream?fromSeq=5`)).text();
      expect(replay.trim().split('\n').map((line) => JSON.parse(line).seq)).toEqual([5, 6, 7]);
    } finally {
      await broker.close({ timeout: 0 });
    }
  });
});

describe("seed 003's extracted-mode example", () => {
  it('runs as written, with the worker imported from this package', async () => {
    // The seed's two snippets, in one module; only the port (3001 there) is a free one here.
    const port = await new Promise((resolve) => {
      import('node:net').then(({ default: net }) => {
        const server = net.createServer().listen(0, '127.0.0.1', () => {
          const { port: free } = server.address();
          server.close(() => resolve(free));
        });
      });
    });
    const source = `
      import { createBroker } from INDEX;
      // Broker
      const broker = createBroker({
        mode: 'extracted',
        runtimeUrl: 'ws://localhost:${port}',
      });

      // Runtime Worker
      import { createRuntimeWorker } from INDEX;

      const worker = createRuntimeWorker({ port: ${port} });
      await worker.start();

      broker.tool('getCurrentTime', { handler: async () => 'noon' });
      const result = await broker.execute("const time = await callTool('getCurrentTime', {}); console.log('Current time:', time); return time;");
      console.log(JSON.stringify(result.value));
      await broker.dispose();
      await worker.stop();
    `;
    const { code, stdout, stderr } = await runNode(source, { timeoutMs: 20000 });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('"noon"');
  });
});
