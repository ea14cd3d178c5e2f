// Process lifecycle, in child processes: Node exits on its own when nothing is in flight
// (no dispose needed), stays alive while an execution is in flight, and a session whose
// handler never resolves can still be ended.
import { describe, it, expect } from 'vitest';
import { runNode } from './helpers/index.mjs';

// A child that has not exited this long after its last output is considered kept alive.
const EXIT_BUDGET_MS = 8000;

function expectCleanExit(run, stdout) {
  expect(run.killed, `child was still alive; stderr: ${run.stderr}`).toBe(false);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  expect(run.stdout).toBe(stdout);
}

describe('Node exits on its own', () => {
  it('after executions, without dispose', async () => {
    const run = await runNode(
      `
      import { createBroker } from INDEX;
      const broker = createBroker();
      broker.tool('add', { handler: ({ a, b }) => a + b });
      const r = await broker.execute("console.log('x'); return await callTool('add', {a: 1, b: 2})");
      const all = await Promise.all([1, 2, 3].map((n) => broker.execute('return ' + n)));
      console.log(r.value, all.map((x) => x.value).join(','));
      `,
      { timeoutMs: EXIT_BUDGET_MS },
    );
    expectCleanExit(run, '3 1,2,3\n');
  });

  it('with an undisposed broker holding idle and finished sessions, and a SessionManager', async () => {
    const run = await runNode(
      `
      import { createBroker, createSessionManager, createToolRegistry, createBrokerSession } from INDEX;
      const broker = createBroker({ sessions: { cleanupIntervalMs: 50 }, limits: { heartbeatIntervalMs: 10 } });
      broker.createSession();
      const done = broker.createSession();
      await done.execute('return 1');
      createSessionManager(createToolRegistry()).create();
      createBrokerSession(createToolRegistry());
      console.log('ok', done.state);
      `,
      { timeoutMs: EXIT_BUDGET_MS },
    );
    expectCleanExit(run, 'ok completed\n');
  });

  it('after a timed-out script and after a cancelled never-resolving handler', async () => {
    const run = await runNode(
      `
      import { createBroker } from INDEX;
      const broker = createBroker();
      broker.tool('hang', { handler: () => new Promise(() => {}) });
      const timedOut = await broker.execute('while (true) {}', { session: { limits: { toolTimeoutMs: 100 } } });
      const session = broker.createSession();
      const pending = session.execute("return await callTool('hang', {})");
      setTimeout(() => session.cancel('enough'), 50);
      const cancelled = await pending;
      console.log(timedOut.error.code, cancelled.error.code);
      `,
      { timeoutMs: EXIT_BUDGET_MS },
    );
    expectCleanExit(run, 'TIMEOUT SESSION_CANCELLED\n');
  });

  it('after terminateSession and after dispose of a never-resolving session', async () => {
    const run = await runNode(
      `
      import { createBroker } from INDEX;
      const broker = createBroker();
      broker.tool('hang', { handler: () => new Promise(() => {}) });
      const s = broker.createSession();
      const p1 = s.execute("return await callTool('hang', {})");
      const p2 = broker.execute("return await callTool('hang', {})");
      setTimeout(async () => {
        await broker.terminateSession(s.sessionId);
        await broker.dispose();
      }, 50);
      const [a, b] = await Promise.all([p1, p2]);
      console.log(a.finalState, b.finalState);
      `,
      { timeoutMs: EXIT_BUDGET_MS },
    );
    expectCleanExit(run, 'cancelled cancelled\n');
  });
});

describe('Node stays alive while an execution is in flight', () => {
  it('until a CPU-bound script times out, with no JS timer pending', async () => {
    const run = await runNode(
      `
      import { createBroker } from INDEX;
      const broker = createBroker();
      broker.execute('while (true) {}', { session: { limits: { toolTimeoutMs: 300 } } })
        .then((r) => console.log('settled', r.error.code));
      `,
      { timeoutMs: EXIT_BUDGET_MS },
    );
    expectCleanExit(run, 'settled TIMEOUT\n');
    expect(run.ms).toBeGreaterThanOrEqual(300);
  });

  it('while a handler never resolves (the run is still in flight)', async () => {
    const run = await runNode(
      `
      import { createBroker } from INDEX;
      const broker = createBroker();
      broker.tool('hang', { handler: () => new Promise(() => {}) });
      broker.execute("return await callTool('hang', {})").then(() => console.log('settled'));
      console.log('started');
      `,
      { timeoutMs: 30000, aliveAfter: { output: 'started\n', ms: 1500 } },
    );
    expect(run.killed).toBe(true);
    expect(run.stdout).toBe('started\n');
  });
});

describe('sessions waiting for an engine thread', () => {
  it('a queued execution can be cancelled, or hit its deadline, while every thread is busy', async () => {
    const run = await runNode(
      `
      import { createBroker } from INDEX;
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const within = (p, ms) => Promise.race([p, sleep(ms).then(() => 'PENDING')]);
      const broker = createBroker();
      // Two engine processes of one isolate each (ENCLAVE_BROKER_MAX_ENGINES=2,
      // ENCLAVE_BROKER_ISOLATES_PER_ENGINE=1), both held by spinning scripts.
      const spinners = [broker.createSession(), broker.createSession()];
      const spinning = spinners.map((s) => s.execute('while (true) {}'));
      await sleep(100);
      const queued = broker.createSession();
      const pending = queued.execute('return 1');
      await sleep(20);
      await queued.cancel();
      const cancelled = await within(pending, 1000);
      const deadline = await within(broker.execute('return 2', { session: { limits: { deadlineMs: 100 } } }), 1000);
      for (const s of spinners) await s.cancel();
      await Promise.all(spinning);
      await pending;
      console.log(JSON.stringify([
        cancelled === 'PENDING' ? 'PENDING' : cancelled.error.code,
        deadline === 'PENDING' ? 'PENDING' : deadline.error.code,
      ]));
      `,
      { timeoutMs: EXIT_BUDGET_MS, env: { ENCLAVE_BROKER_MAX_ENGINES: '2', ENCLAVE_BROKER_ISOLATES_PER_ENGINE: '1' } },
    );
    expectCleanExit(run, '["SESSION_CANCELLED","DEADLINE_EXCEEDED"]\n');
  });
});
