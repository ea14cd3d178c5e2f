// Several executions per engine process (`runtimePool.isolatesPerEngine`,
// ENCLAVE_BROKER_ISOLATES_PER_ENGINE): each runs in an isolate of its own, an execution waiting
// on a tool holds an isolate rather than a process, and a V8 fatal error ends only the
// executions of its own process, each reported and counted. Each case runs in a fresh Node
// process, so the engine pool (one per process) starts empty.
import { describe, expect, it } from 'vitest';
import { createBroker } from '../index.mjs';
import { runNode } from './helpers/index.mjs';

const BUDGET_MS = 20000;

function lastLine(run) {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout.trim().split('\n').at(-1));
}

// Script prelude for the child: a broker whose `hold` tool answers once released, and the
// engine processes of this Node process as the kernel lists them.
const PRELUDE = `
  import fs from 'node:fs';
  import { createRequire } from 'node:module';
  import { createBroker } from INDEX;
  const native = createRequire(INDEX)('./lib/native.js');
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const held = [];
  const hold = { handler: () => new Promise((resolve) => held.push(resolve)) };
  const engines = () => {
    const children = fs.readdirSync('/proc/' + process.pid + '/task').flatMap((t) =>
      fs.readFileSync('/proc/' + process.pid + '/task/' + t + '/children', 'utf8').trim().split(/\\s+/).filter(Boolean));
    return children.filter((pid) => { try { return fs.readFileSync('/proc/' + pid + '/comm', 'utf8').startsWith('enclave-engine'); } catch { return false; } }).length;
  };
  const waitHeld = async (n) => { for (let i = 0; i < 1000 && held.length < n; i++) await sleep(10); };
`;

describe('executions per engine process', () => {
  it('executions waiting on tools share one engine process, one isolate each', async () => {
    const run = await runNode(
      `${PRELUDE}
      const broker = createBroker({ runtimePool: { isolatesPerEngine: 8, memoryBudget: 2 ** 40 } });
      broker.tool('hold', hold);
      const runs = Array.from({ length: 8 }, (_, i) => broker.execute("return (await callTool('hold', {})) + " + i));
      await waitHeld(8);
      const stats = native.engineStats();
      const during = { held: held.length, running: stats.running, processes: stats.processes, isolatesPerEngine: stats.isolatesPerEngine, engines: engines() };
      held.splice(0).forEach((resolve) => resolve('released '));
      const values = (await Promise.all(runs)).map((r) => r.value);
      await broker.dispose();
      console.log(JSON.stringify({ during, values }));
      `,
      { timeoutMs: BUDGET_MS },
    );
    expect(lastLine(run)).toEqual({
      during: { held: 8, running: 8, processes: 1, isolatesPerEngine: 8, engines: 1 },
      values: Array.from({ length: 8 }, (_, i) => `released ${i}`),
    });
  });

  it('a V8 fatal error ends the executions of its own process, each reported and counted, and no others', async () => {
    const run = await runNode(
      `${PRELUDE}
      const broker = createBroker({ limits: { heartbeatIntervalMs: 0 } });
      broker.tool('hold', hold);
      // A memory limit of their own: another engine process.
      const apart = createBroker({ enclave: { memoryLimit: 64 * 1024 * 1024 }, limits: { heartbeatIntervalMs: 0 } });
      apart.tool('hold', hold);
      const elsewhere = apart.execute("return await callTool('hold', {})");
      await waitHeld(1);
      const before = native.engineStats();
      const neighbours = Array.from({ length: 3 }, () => broker.execute("return await callTool('hold', {})"));
      await waitHeld(4);
      // V8 aborts its process: the split needs more elements than V8 allows.
      const crash = await broker.execute("return 'x,'.repeat(2 ** 27).split(',').length");
      const ended = (await Promise.all(neighbours)).map((r) => r.error.code);
      const after = native.engineStats();
      held.splice(0).forEach((resolve) => resolve('released'));
      const survivor = await elsewhere;
      await broker.dispose();
      await apart.dispose();
      console.log(JSON.stringify({
        isolatesPerEngine: after.isolatesPerEngine,
        crash: crash.error.code,
        neighboursEnded: ended.every((code) => code === 'MEMORY_LIMIT_EXCEEDED' || code === 'ENGINE_CRASHED'),
        crashed: after.crashed - before.crashed,
        lost: after.lostExecutions - before.lostExecutions,
        survivor: survivor.value,
      }));
      `,
      { timeoutMs: BUDGET_MS, env: { ENCLAVE_BROKER_ISOLATES_PER_ENGINE: '4' } },
    );
    expect(lastLine(run)).toEqual({
      isolatesPerEngine: 4,
      crash: 'MEMORY_LIMIT_EXCEEDED',
      neighboursEnded: true,
      crashed: 1,
      lost: 4,
      survivor: 'released',
    });
  });

  it('takes a count from 1 to 256', () => {
    for (const isolatesPerEngine of [0, 257, 2.5, '4', null]) {
      expect(() => createBroker({ runtimePool: { isolatesPerEngine } })).toThrow(TypeError);
    }
  });
});

describe('engine processes started ahead', () => {
  // Waits (bounded) until `n` engine processes are ready, then reports the pool's counts.
  const READY = `
  const ready = async (n) => { for (let i = 0; i < 1000 && native.engineStats().idle < n; i++) await sleep(10); return native.engineStats(); };
  `;

  it('a broker starts an engine process for its default memory limit when it is built, and its first execute runs there', async () => {
    const run = await runNode(
      `${PRELUDE}${READY}
      const MiB = 1024 * 1024;
      const atImport = native.engineStats().processes;
      const broker = createBroker();
      const built = await ready(1);
      const enginesBuilt = engines();
      const second = createBroker();
      const sameLimit = await ready(1);
      const bigger = createBroker({ enclave: { memoryLimit: 256 * MiB } });
      const otherLimit = await ready(2);
      const value = (await broker.execute('return 1 + 2')).value;
      const afterExecute = native.engineStats();
      await Promise.all([broker.dispose(), second.dispose(), bigger.dispose()]);
      console.log(JSON.stringify({
        atImport,
        built: [built.processes, built.idle, enginesBuilt],
        sameLimit: sameLimit.processes,
        otherLimit: otherLimit.processes,
        value,
        afterExecute: [afterExecute.processes, afterExecute.executions],
      }));
      `,
      { timeoutMs: BUDGET_MS },
    );
    expect(lastLine(run)).toEqual({
      atImport: 0,
      built: [1, 1, 1],
      sameLimit: 1,
      otherLimit: 2,
      value: 3,
      afterExecute: [2, 1],
    });
  });

  it('runtimePool.minSize: 0 starts none ahead, nor does a broker whose scripts run elsewhere', async () => {
    const run = await runNode(
      `${PRELUDE}${READY}
      const none = createBroker({ runtimePool: { minSize: 0 } });
      const extracted = createBroker({ mode: 'extracted', runtimeUrl: 'ws://127.0.0.1:9' });
      await sleep(200);
      const before = native.engineStats().processes;
      const enginesBefore = engines();
      const value = (await none.execute('return 1 + 2')).value;
      const after = native.engineStats().processes;
      await Promise.all([none.dispose(), extracted.dispose()]);
      console.log(JSON.stringify({ before, engines: enginesBefore, value, after }));
      `,
      { timeoutMs: BUDGET_MS },
    );
    expect(lastLine(run)).toEqual({ before: 0, engines: 0, value: 3, after: 1 });
  });
});
