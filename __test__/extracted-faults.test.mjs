// Extracted mode when things go wrong: a worker killed with `kill -9` mid-run, no worker at
// all, a wrong token, a worker that sends malformed or oversized frames, one that refuses
// work. Runs end with RUNTIME_LOST (never a hang), later executions go to the workers left,
// and a bad connection closes only itself.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { createBroker } from '../index.mjs';
import { brokersDisposedAfterEach, gatedTool } from './helpers/index.mjs';
import { startWorkerProcess, workersStoppedAfterAll } from './helpers/runtime.mjs';

const makeBroker = brokersDisposedAfterEach();
const startWorker = workersStoppedAfterAll();

const fakes = [];
afterEach(async () => {
  for (const server of fakes) for (const client of server.clients) client.terminate();
  await Promise.all(fakes.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

// A port nothing listens on.
async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// A WebSocket server that greets like a worker, then answers `execute` with `onExecute`.
async function fakeWorker(onExecute, { maxMessageBytes = 64 * 1024 * 1024 } = {}) {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws' });
  await new Promise((resolve) => server.once('listening', resolve));
  fakes.push(server);
  const closes = [];
  server.on('connection', (socket) => {
    socket.send(JSON.stringify({ type: 'runtime_ready', protocolVersion: 2, maxSessions: 10, activeSessions: 0, maxMessageBytes }));
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.type === 'execute') onExecute(socket, message);
    });
    socket.on('close', (code) => closes.push(code));
  });
  return { url: `ws://127.0.0.1:${server.address().port}`, closes };
}

// Waits until a tool handler runs, i.e. the script is mid-run on some worker.
function toolStarted(broker) {
  let started;
  const seen = new Promise((resolve) => {
    started = resolve;
  });
  broker.tool('block', { handler: () => (started(), new Promise(() => {})) });
  return seen;
}

describe('extracted mode faults', () => {
  it('a worker killed with kill -9 mid-run ends its session with RUNTIME_LOST; the next executions run on the other', async () => {
    const first = await startWorkerProcess();
    const second = await startWorkerProcess();
    try {
      const broker = makeBroker({ mode: 'extracted', runtimeUrls: [first.url, second.url] });
      const started = toolStarted(broker);
      const events = [];
      const running = broker.execute("console.log('before'); await callTool('block', {})", { onEvent: (e) => events.push(e) });
      await started;
      const busy = broker.getRuntimeStatus().find((endpoint) => endpoint.activeSessions === 1);
      const victim = busy.url.includes(`:${first.port}/`) ? first : second;
      await victim.kill9();
      const result = await running;
      expect(result.success).toBe(false);
      expect(result.error.code).toBe('RUNTIME_LOST');
      expect(result.error.message).toContain(`The runtime worker at ${busy.url} was lost`);
      // The stream is closed properly: the pending call gets its result event, then final.
      expect(events.map((e) => e.type).slice(-3)).toEqual(['tool_progress', 'tool_result_applied', 'final']);
      expect(events.at(-1).payload.error.code).toBe('RUNTIME_LOST');

      broker.tool('add', { handler: ({ a, b }) => a + b });
      const later = await Promise.all(Array.from({ length: 6 }, (_, i) => broker.execute(`return await callTool('add', { a: ${i}, b: 1 })`)));
      expect(later.map((r) => r.value)).toEqual([1, 2, 3, 4, 5, 6]);
      const status = broker.getRuntimeStatus();
      expect(status.find((e) => e.url === busy.url).state).not.toBe('connected');
      expect(status.find((e) => e.url !== busy.url).state).toBe('connected');
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  });

  it('with no worker at all, execute resolves with RUNTIME_LOST instead of hanging', async () => {
    const port = await closedPort();
    const broker = makeBroker({ mode: 'extracted', runtimeUrl: `ws://127.0.0.1:${port}` });
    const result = await broker.execute('return 1');
    expect(result.success).toBe(false);
    expect(result.error.code).toBe('RUNTIME_LOST');
    expect(result.error.message).toContain(`No runtime worker is reachable (ws://127.0.0.1:${port}/ws:`);
    expect(result.finalState).toBe('failed');
    // And again later (the broker keeps trying, and keeps answering).
    expect((await broker.execute('return 2')).error.code).toBe('RUNTIME_LOST');
    expect(broker.getRuntimeStatus()[0].state).not.toBe('connected');
  });

  it('a worker refuses connections without its token; a broker with the token runs', async () => {
    const worker = await startWorker({ args: ['--auth-token', 'right-token'] });
    for (const headers of [{}, { authorization: 'Bearer wrong-token' }]) {
      const socket = new WebSocket(worker.wsUrl, { headers });
      const status = await new Promise((resolve) => socket.once('unexpected-response', (_req, res) => resolve(res.statusCode)));
      expect(status).toBe(401);
    }
    const wrong = makeBroker({ mode: 'extracted', runtimeUrl: worker.url, runtimeToken: 'wrong-token' });
    const refused = await wrong.execute('return 1');
    expect(refused.error.code).toBe('RUNTIME_LOST');
    expect(refused.error.message).toContain('the worker refused the token (HTTP 401)');
    const right = makeBroker({ mode: 'extracted', runtimeUrl: worker.url, runtimeToken: 'right-token' });
    expect((await right.execute('return 1 + 1')).value).toBe(2);
    // Browsers cannot set headers: `?token=` works too.
    const query = new WebSocket(`${worker.wsUrl}?token=right-token`);
    await new Promise((resolve, reject) => {
      query.once('open', resolve);
      query.once('error', reject);
    });
    query.terminate();
  });

  it('a malformed frame from a worker closes that connection only: its run is lost, the other worker runs on', async () => {
    const real = await startWorker();
    const fake = await fakeWorker((socket) => socket.send('this is not json'));
    const broker = makeBroker({ mode: 'extracted', runtimeUrls: [fake.url, real.url] });
    // Both connected, so the two runs go one to each (the least loaded first).
    await expect.poll(() => broker.getRuntimeStatus().every((endpoint) => endpoint.state === 'connected')).toBe(true);
    const results = await Promise.all([broker.execute('return 1'), broker.execute('return 2')]);
    const lost = results.filter((r) => !r.success);
    expect(lost.length).toBe(1);
    expect(lost[0].error.code).toBe('RUNTIME_LOST');
    expect(lost[0].error.message).toContain('malformed message');
    expect(results.filter((r) => r.success).map((r) => r.value).length).toBe(1);
    await expect.poll(() => fake.closes).toEqual([1007]);
  });

  it('an oversized frame from a worker closes that connection (1009)', async () => {
    const fake = await fakeWorker((socket, message) =>
      socket.send(JSON.stringify({ protocolVersion: 2, sessionId: message.sessionId, seq: 1, type: 'stdout', payload: { chunk: 'x'.repeat(200_000) } })),
    );
    const broker = makeBroker({ mode: 'extracted', runtimeUrl: fake.url, runtimeConnection: { maxMessageBytes: 100_000 } });
    const result = await broker.execute('return 1');
    expect(result.error.code).toBe('RUNTIME_LOST');
    expect(result.error.message).toContain('frame too large');
    await expect.poll(() => fake.closes).toEqual([1009]);
  });

  it('an oversized frame to a worker closes only that connection (1009)', async () => {
    const worker = await startWorker({ args: ['--max-message-bytes', '65536'] });
    const broker = makeBroker({ mode: 'extracted', runtimeUrl: worker.url });
    const gate = gatedTool(broker);
    const running = broker.execute("return await callTool('wait', {})");
    const socket = new WebSocket(worker.wsUrl);
    await new Promise((resolve) => socket.once('open', resolve));
    const closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)));
    socket.send('x'.repeat(100_000));
    expect(await closed).toBe(1009);
    gate.open();
    expect((await running).value).toBe('open');
    // A script too large for the worker fails before it is sent, and the connection stays.
    const huge = await broker.execute(`return ${JSON.stringify('y'.repeat(70_000))}.length`);
    expect(huge.error.code).toBe('VALIDATION_ERROR');
    expect(huge.error.message).toContain("exceed the runtime worker's maxMessageBytes (65536)");
    expect((await broker.execute('return 3')).value).toBe(3);
  });

  it('a worker that is full makes executions wait for a slot, not fail', async () => {
    const worker = await startWorker({ args: ['--max-sessions', '2'] });
    const broker = makeBroker({ mode: 'extracted', runtimeUrl: worker.url });
    const gate = gatedTool(broker);
    let peak = 0;
    broker.tool('peek', {
      handler: () => {
        peak = Math.max(peak, broker.getRuntimeStatus()[0].activeSessions);
        return 1;
      },
    });
    const runs = Array.from({ length: 6 }, () => broker.execute("await callTool('peek', {}); return await callTool('wait', {})"));
    await expect.poll(() => broker.getRuntimeStatus()[0].activeSessions).toBe(2);
    gate.open();
    const results = await Promise.all(runs);
    expect(results.every((r) => r.value === 'open')).toBe(true);
    expect(peak).toBe(2);
  });

  it('a run the worker cancels on its own (it is stopping) ends as RUNTIME_LOST, not as a cancel', async () => {
    const fake = await fakeWorker((socket, message) => {
      const stats = { durationMs: 0, toolCallCount: 0, stdoutBytes: 0 };
      const error = { code: 'SESSION_CANCELLED', message: 'Runtime worker stopping' };
      socket.send(JSON.stringify({ protocolVersion: 2, sessionId: message.sessionId, seq: 1, type: 'final', payload: { ok: false, error, stats } }));
    });
    const broker = createBroker({ mode: 'extracted', runtimeUrl: fake.url });
    try {
      const result = await broker.execute('return 1');
      expect(result.error.code).toBe('RUNTIME_LOST');
      expect(result.error.message).toBe(`The runtime worker at ${fake.url}/ws ended the run (Runtime worker stopping)`);
    } finally {
      await broker.dispose();
    }
  });
});
