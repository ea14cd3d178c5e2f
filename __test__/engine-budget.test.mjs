// The engine pool's memory budget: executions are admitted while the memory ceilings of
// the running ones (each 2 x memoryLimit + 16 MiB for its isolate, plus its share of its
// process's 256 MiB) fit `runtimePool.memoryBudget`; the rest
// wait, their wait counted in their timeout; past `maxQueued` waiting, new work fails with
// ENGINE_CAPACITY_EXCEEDED, and the HTTP server answers 503. The pool belongs to the process
// (this file runs in its own), so each case sets the budget it needs.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { EnclaveBroker, createBroker } from '../index.mjs';
import native from '../lib/native.js';
import { ndjsonLines, postJson, runNode, waitFor } from './helpers/index.mjs';

const MiB = 1024 * 1024;
const LIMIT = 32 * MiB;
const CEILING = 2 * LIMIT + 16 * MiB + Math.floor((256 * MiB) / native.engineStats().isolatesPerEngine);

const brokers = [];
afterEach(async () => {
  while (brokers.length > 0) await brokers.pop().dispose();
});

// A broker whose scripts use `memoryLimit`, with a `hold` tool whose calls wait until
// released: a run that reached it is running, and keeps its engine until then.
function holdingBroker(runtimePool, limits = {}) {
  const broker = createBroker({ runtimePool, limits: { toolTimeoutMs: 20000, heartbeatIntervalMs: 0, ...limits }, enclave: { memoryLimit: LIMIT } });
  brokers.push(broker);
  const held = [];
  broker.tool('hold', { handler: () => new Promise((resolve) => held.push(resolve)) });
  return { broker, held, release: () => held.splice(0).forEach((resolve) => resolve('released')) };
}

const result = (r) => (r.success ? { success: true, value: r.value } : { success: false, error: r.error });

describe('runtimePool.memoryBudget', () => {
  it('admits executions while their ceilings fit, and queues the rest until one ends', async () => {
    const { broker, held, release } = holdingBroker({ memoryBudget: CEILING, maxQueued: 16 });
    const first = broker.execute("return await callTool('hold', {})");
    await waitFor(() => held.length === 1, 10000, 'the first run reached its tool');
    const second = broker.execute("return await callTool('hold', {})");
    expect(native.engineStats()).toMatchObject({ queued: 1, admittedBytes: CEILING, memoryBudget: CEILING });
    release();
    expect(result(await first)).toStrictEqual({ success: true, value: 'released' });
    await waitFor(() => held.length === 1, 10000, 'the second run was admitted');
    release();
    expect(result(await second)).toStrictEqual({ success: true, value: 'released' });
    expect(native.engineStats()).toMatchObject({ queued: 0, admittedBytes: 0 });
  });

  it('counts the wait in the timeout: a run queued past it ends as TIMEOUT without running', async () => {
    const { broker, held, release } = holdingBroker({ memoryBudget: CEILING, maxQueued: 16 });
    const first = broker.execute("return await callTool('hold', {})");
    await waitFor(() => held.length === 1, 10000, 'the first run reached its tool');
    const queued = await broker.execute("return await callTool('hold', {})", { session: { limits: { toolTimeoutMs: 200 } } });
    expect(result(queued)).toMatchObject({ success: false, error: { code: 'TIMEOUT', message: 'Script execution timed out after 200ms' } });
    expect(held).toHaveLength(1);
    release();
    expect(result(await first)).toStrictEqual({ success: true, value: 'released' });
  });

  it('refuses work past maxQueued waiting executions with ENGINE_CAPACITY_EXCEEDED', async () => {
    const { broker, held, release } = holdingBroker({ memoryBudget: CEILING, maxQueued: 0 });
    const first = broker.execute("return await callTool('hold', {})");
    await waitFor(() => held.length === 1, 10000, 'the first run reached its tool');
    const refused = result(await broker.execute('return 1'));
    expect(refused).toStrictEqual({
      success: false,
      error: {
        code: 'ENGINE_CAPACITY_EXCEEDED',
        name: 'Error',
        message: `The engine pool is at capacity: 0 executions already wait for its ${CEILING / MiB} MiB memory budget (${CEILING / MiB} MiB admitted); try again later`,
      },
    });
    release();
    expect(result(await first)).toStrictEqual({ success: true, value: 'released' });
  });

  it('runs one execution at a time when the budget is smaller than one ceiling', async () => {
    const { broker, held, release } = holdingBroker({ memoryBudget: 1, maxQueued: 16 });
    const runs = [broker.execute("return await callTool('hold', {})"), broker.execute("return await callTool('hold', {})")];
    await waitFor(() => held.length === 1, 10000, 'one run reached its tool');
    expect(native.engineStats()).toMatchObject({ queued: 1, admittedBytes: CEILING });
    release();
    await waitFor(() => held.length === 1, 10000, 'the other run was admitted');
    release();
    expect((await Promise.all(runs)).map(result)).toStrictEqual([
      { success: true, value: 'released' },
      { success: true, value: 'released' },
    ]);
  });

  it('takes integers only', () => {
    for (const runtimePool of [{ memoryBudget: -1 }, { memoryBudget: 0 }, { memoryBudget: '1G' }, { maxQueued: 1.5 }, { minSize: -1 }, 'big']) {
      expect(() => createBroker({ runtimePool })).toThrow(TypeError);
    }
  });
});

describe('the HTTP server at capacity', () => {
  it('answers 503 ENGINE_CAPACITY_EXCEEDED with Retry-After, and serves again once there is room', async () => {
    const server = new EnclaveBroker({
      runtimePool: { memoryBudget: CEILING, maxQueued: 0 },
      limits: { toolTimeoutMs: 20000, heartbeatIntervalMs: 0 },
      enclave: { memoryLimit: LIMIT },
    });
    const held = [];
    server.tool('hold', { handler: () => new Promise((resolve) => held.push(resolve)) });
    await server.listen(0, '127.0.0.1');
    try {
      const base = `http://127.0.0.1:${server.port}`;
      const first = postJson(`${base}/execute`, { code: "return await callTool('hold', {})" }).then((r) => r.text());
      await waitFor(() => held.length === 1, 10000, 'the first run reached its tool');
      const refused = await postJson(`${base}/execute`, { code: 'return 1' });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(await refused.json()).toMatchObject({ code: 'ENGINE_CAPACITY_EXCEEDED' });
      held.splice(0).forEach((resolve) => resolve('released'));
      expect(ndjsonLines(await first).at(-1).payload).toMatchObject({ ok: true, result: 'released' });
      const again = await postJson(`${base}/execute`, { code: 'return 2' });
      expect(ndjsonLines(await again.text()).at(-1).payload).toMatchObject({ ok: true, result: 2 });
    } finally {
      await server.close({ timeout: 0 });
      await server.dispose();
    }
  });
});

function readNumber(path) {
  try {
    return Number(fs.readFileSync(path, 'utf8').trim());
  } catch {
    return Number.NaN;
  }
}

// The memory this machine lets the process use, as the pool computes it.
function availableMemory() {
  const total = Number(/^MemTotal:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))[1]) * 1024;
  const v2 = readNumber('/sys/fs/cgroup/memory.max');
  const v1 = readNumber('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  const cgroup = Number.isFinite(v2) ? v2 : Number.isFinite(v1) && v1 < 2 ** 60 ? v1 : Infinity;
  return Math.min(total, cgroup);
}

describe('defaults', () => {
  it('the budget is three quarters of the memory the process may use, 1024 may wait; both come from the environment', async () => {
    const script = `import { createRequire } from 'node:module'; const native = createRequire(INDEX)('./lib/native.js'); const s = native.engineStats(); console.log(JSON.stringify([s.memoryBudget, s.maxQueued]));`;
    const defaults = await runNode(script);
    expect(JSON.parse(defaults.stdout)).toStrictEqual([Math.floor(availableMemory() / 4) * 3, 1024]);
    const configured = await runNode(script, { env: { ENCLAVE_BROKER_MEMORY_BUDGET: '6G', ENCLAVE_BROKER_MAX_QUEUED: '7' } });
    expect(JSON.parse(configured.stdout)).toStrictEqual([6 * 1024 ** 3, 7]);
  });
});
