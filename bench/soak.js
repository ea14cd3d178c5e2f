#!/usr/bin/env node
// Soak test: 10,000 executions, 10 in flight at a time, mixing ordinary scripts (tool
// calls, console output, return values) with scripts that hit every limit; then 10,000
// executions that each await a tool answering after 2 s, 1,000 in flight at a time (the
// density an engine process of several isolates is for; `--awaiting 0` skips it). Each outcome
// is checked (error code, and value or output where there is one); mismatches are
// printed and make the exit status non-zero. Every 1,000 executions it prints memory
// (Node RSS and heapUsed after gc, engine processes' RSS) and engineStats(). After the
// first 1,000 (warm-up), Node's RSS must stay within +10% of its value at 1,000.
//
//   node --expose-gc --min-semi-space-size=16 --max-semi-space-size=16 bench/soak.js [--count N] [--concurrency N] [--awaiting N]
//
// The young generation is pinned at its largest size (npm run soak does this): left to
// itself, V8 grows it from 8 to 32 MiB under this allocation rate over the first few
// thousand executions, which shows up as ~30% more RSS although live memory is flat.
'use strict';

const v8 = require('node:v8');
const { createBroker } = require('..');
const native = require('../lib/native.js');
const { engineMemory } = require('./lib/procs');
const { summarize, fmt, mib, table } = require('./lib/stats');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
}

const TOTAL = arg('--count', 10000);
const AWAITING = arg('--awaiting', 10000);
const AWAITING_IN_FLIGHT = 1000;
const AWAITING_TOOL_MS = 2000;
const CONCURRENCY = arg('--concurrency', 10);
const CHECKPOINT = 1000;
const RSS_TOLERANCE = 0.1;
const MIB = 1024 * 1024;

if (typeof global.gc !== 'function') {
  console.error('run with node --expose-gc (npm run soak does)');
  process.exit(2);
}

// ---------------------------------------------------------------- tools

const hangCalls = { started: 0, aborted: 0 };
const hangWaiters = new Map();

const broker = createBroker({ sessions: { maxSessions: 200 } });
broker
  .tool('add', { handler: async ({ a, b }) => a + b })
  .tool('echo', { handler: async (args) => args })
  .tool('list', {
    handler: async ({ n }) => Array.from({ length: n }, (_, id) => ({ id, name: `n${id}`, tags: ['t'] })),
  })
  .tool('fail', {
    handler: async () => {
      const error = new Error('tool failed on purpose');
      error.code = 'E_PURPOSE';
      throw error;
    },
  })
  .tool('slow', { handler: ({ ms }) => new Promise((resolve) => setTimeout(() => resolve('slept'), ms)) })
  .tool('hang', {
    // Never resolves; rejects when the call is aborted (cancel, deadline), so a missing
    // abort shows up as hangCalls.started - hangCalls.aborted growing.
    handler: ({ token }, ctx) => {
      hangCalls.started++;
      hangWaiters.get(token)?.();
      return new Promise((_, reject) => {
        ctx.signal.addEventListener(
          'abort',
          () => {
            hangCalls.aborted++;
            reject(new Error('aborted'));
          },
          { once: true },
        );
      });
    },
  });

// ---------------------------------------------------------------- cases

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const stdoutOf = (events) => events.filter((e) => e.type === 'stdout').map((e) => e.payload.chunk).join('');

// Checks of a finished execution: return a description of what is wrong, or null.
function expectValue(value) {
  return (r) => (r.success && same(r.value, value) ? null : `expected value ${JSON.stringify(value)}`);
}
function expectError(code, name, message) {
  return (r) => {
    if (r.success || r.error?.code !== code) return `expected ${code}`;
    if (name !== undefined && r.error.name !== name) return `expected ${code} with name ${name}`;
    if (message !== undefined && !message.test(r.error.message)) return `expected ${code} with message ${message}`;
    return null;
  };
}

async function run(code, session, withEvents) {
  const events = [];
  const options = { session };
  if (withEvents) options.onEvent = (e) => events.push(e);
  const result = await broker.execute(code, options);
  return { result, events };
}

// Runs on a session of its own and cancels it mid-run: after the hang tool is entered, or
// (spin) a few milliseconds into a busy loop.
async function runCancel(i, mode) {
  const session = broker.createSession();
  try {
    if (mode === 'tool') {
      const token = `t${i}`;
      const entered = new Promise((resolve) => hangWaiters.set(token, resolve));
      const pending = session.execute(`return await callTool('hang', { token: '${token}' })`);
      await Promise.race([entered, pending]);
      hangWaiters.delete(token);
      await session.cancel('soak cancel');
      return { result: await pending, events: [] };
    }
    const pending = session.execute('let n = 0; while (true) { n++ }');
    await new Promise((resolve) => setTimeout(resolve, 5));
    await session.cancel('soak cancel');
    return { result: await pending, events: [] };
  } finally {
    await broker.terminateSession(session.sessionId);
  }
}

const MEMORY_32MIB = { enclaveConfig: { memoryLimit: 32 * MIB } };

// name, how often per cycle, run(i) -> {result, events}, check({result, events}, i) -> problem|null
const CASES = [
  // -- ordinary
  { name: 'ok: return', weight: 4, run: () => run('return 1 + 2'), check: ({ result }) => expectValue(3)(result) },
  {
    name: 'ok: tools + console',
    weight: 6,
    run: (i) =>
      run(
        `const a = await callTool('add', { a: ${i}, b: 1 });
         const b = await callTool('add', { a, b: 2 });
         console.log('sum', b);
         return { i: ${i}, b };`,
        undefined,
        true,
      ),
    check: ({ result, events }, i) =>
      expectValue({ i, b: i + 3 })(result) ?? (stdoutOf(events) === `sum ${i + 3}\n` ? null : 'wrong stdout'),
  },
  {
    name: 'ok: parallel tools',
    weight: 3,
    run: (i) => run(`return await Promise.all([1, 2, 3].map((n) => callTool('add', { a: n, b: ${i} })))`),
    check: ({ result }, i) => expectValue([i + 1, i + 2, i + 3])(result),
  },
  {
    name: 'ok: 200-item tool result',
    weight: 2,
    run: () => run("const xs = await callTool('list', { n: 200 }); return xs.reduce((s, x) => s + x.id, 0)"),
    check: ({ result }) => expectValue(19900)(result),
  },
  {
    name: 'ok: caught tool error',
    weight: 2,
    run: () => run("try { await callTool('fail', {}); return 'no'; } catch (e) { return [e.message, e.code]; }"),
    check: ({ result }) => expectValue(['tool failed on purpose', 'E_PURPOSE'])(result),
  },
  {
    name: 'ok: slow tool',
    weight: 2,
    run: () => run("return await callTool('slow', { ms: 2 })"),
    check: ({ result }) => expectValue('slept')(result),
  },
  {
    name: 'ok: echo + log levels',
    weight: 2,
    run: (i) =>
      run(
        `const r = await callTool('echo', { s: 'x${i}', n: [1, 2, { d: true }] });
         console.info('info'); console.warn('warn');
         return r;`,
        undefined,
        true,
      ),
    check: ({ result }, i) => expectValue({ s: `x${i}`, n: [1, 2, { d: true }] })(result),
  },
  // -- limits
  {
    name: 'TIMEOUT (while(true), toolTimeoutMs 100)',
    weight: 1,
    run: () => run('while (true) {}', { limits: { toolTimeoutMs: 100 } }),
    check: ({ result }) => expectError('TIMEOUT')(result),
  },
  {
    name: 'MEMORY_LIMIT (heap bomb, 32 MiB)',
    weight: 1,
    run: () => run("const a = []; while (true) a.push('x'.repeat(1000) + a.length)", MEMORY_32MIB),
    check: ({ result }) => expectError('MEMORY_LIMIT_EXCEEDED', 'MemoryLimitError')(result),
  },
  {
    name: 'MEMORY_LIMIT (ArrayBuffer bomb, 32 MiB)',
    weight: 1,
    run: () => run('const a = []; while (true) a.push(new ArrayBuffer(1024 * 1024))', MEMORY_32MIB),
    check: ({ result }) => expectError('MEMORY_LIMIT_EXCEEDED', 'MemoryLimitError')(result),
  },
  {
    name: 'MAX_TOOL_CALLS (limit 3)',
    weight: 1,
    run: () => run("for (let i = 0; i < 10; i++) await callTool('add', { a: i, b: 1 }); return 'no'", { limits: { maxToolCalls: 3 } }),
    check: ({ result }) => expectError('MAX_TOOL_CALLS_EXCEEDED')(result) ?? (result.stats.toolCallCount === 3 ? null : 'toolCallCount != 3'),
  },
  {
    name: 'stdout truncation (flood, maxStdoutBytes 4096)',
    weight: 1,
    run: () =>
      run("for (let i = 0; i < 5000; i++) console.log('line ' + i + ' ' + 'x'.repeat(40)); return 'done'", { limits: { maxStdoutBytes: 4096 } }, true),
    check: ({ result, events }) =>
      expectValue('done')(result) ??
      (Buffer.byteLength(stdoutOf(events)) === 4096 ? null : `stdout ${Buffer.byteLength(stdoutOf(events))} bytes, expected 4096`) ??
      (events.some((e) => e.type === 'log' && /Console output limit reached/.test(e.payload.message)) ? null : 'no truncation warning'),
  },
  {
    name: 'syntax error',
    weight: 1,
    run: () => run('const = 1'),
    check: ({ result }) => expectError('VALIDATION_ERROR', 'SyntaxError')(result),
  },
  {
    name: 'uncaught throw',
    weight: 1,
    run: (i) => run(`throw new TypeError('bad ${i}')`),
    check: ({ result }, i) => expectError('EXECUTION_ERROR', 'TypeError', new RegExp(`^bad ${i}$`))(result),
  },
  {
    name: 'cancel mid-run (in a tool call)',
    weight: 1,
    run: (i) => runCancel(i, 'tool'),
    check: ({ result }) => expectError('SESSION_CANCELLED')(result),
  },
  {
    name: 'cancel mid-run (busy loop)',
    weight: 1,
    run: (i) => runCancel(i, 'spin'),
    check: ({ result }) => expectError('SESSION_CANCELLED')(result),
  },
  {
    name: 'DEADLINE (busy loop, deadlineMs 50)',
    weight: 1,
    run: () => run('while (true) {}', { limits: { deadlineMs: 50 } }),
    check: ({ result }) => expectError('DEADLINE_EXCEEDED')(result),
  },
  {
    name: 'DEADLINE (in a tool call, deadlineMs 50)',
    weight: 1,
    run: (i) => run(`return await callTool('hang', { token: 'd${i}' })`, { limits: { deadlineMs: 50 } }),
    check: ({ result }) => expectError('DEADLINE_EXCEEDED')(result),
  },
  {
    name: 'RESULT_TOO_LARGE (maxResultBytes 1024)',
    weight: 1,
    run: () => run("return 'x'.repeat(2000)", { enclaveConfig: { maxResultBytes: 1024 } }),
    check: ({ result }) => expectError('RESULT_TOO_LARGE')(result),
  },
  {
    name: 'RESULT_TOO_LARGE (6 MB, default limit)',
    weight: 1,
    run: () => run("return 'x'.repeat(6 * 1024 * 1024)"),
    check: ({ result }) => expectError('RESULT_TOO_LARGE')(result),
  },
  {
    name: 'stack overflow',
    weight: 1,
    run: () => run('function f() { return f() + 1; } return f()'),
    check: ({ result }) => expectError('EXECUTION_ERROR', 'RangeError', /Maximum call stack size exceeded/)(result),
  },
];

// One cycle lists every case `weight` times, spread out (round-robin by remaining weight).
const CYCLE = (() => {
  const left = CASES.map((c) => c.weight);
  const out = [];
  while (left.some((n) => n > 0)) {
    for (let k = 0; k < CASES.length; k++) {
      if (left[k] > 0) {
        out.push(k);
        left[k]--;
      }
    }
  }
  return out;
})();

// ---------------------------------------------------------------- driver

const perCase = CASES.map(() => ({ count: 0, mismatches: 0, ms: [] }));
const mismatches = [];

async function one(i) {
  const k = CYCLE[i % CYCLE.length];
  const c = CASES[k];
  const started = performance.now();
  let problem;
  let outcome;
  try {
    outcome = await c.run(i);
    problem = c.check(outcome, i);
  } catch (error) {
    problem = `threw ${error?.stack ?? error}`;
  }
  const stat = perCase[k];
  stat.count++;
  stat.ms.push(performance.now() - started);
  if (problem !== null) {
    stat.mismatches++;
    mismatches.push({ i, case: c.name, problem, got: JSON.stringify(outcome?.result?.error ?? outcome?.result?.value ?? null)?.slice(0, 200) });
  }
}

async function block(from, to) {
  let next = from;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (next < to) await one(next++);
  });
  await Promise.all(workers);
}

// Node RSS outside the V8 heap: what grows with a native (addon) leak.
const outside = (c) => c.rss - c.heapTotal;

function snapshot() {
  global.gc();
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  // Size of each V8 heap space (MiB), to tell heap sizing (new space growth) from leaks.
  const spaces = Object.fromEntries(
    v8.getHeapSpaceStatistics().map((sp) => [sp.space_name.replace(/_space$/, ''), Math.round((sp.space_size / MIB) * 10) / 10]),
  );
  return { rss, heapUsed, heapTotal, external, spaces, engines: engineMemory(), engineStats: native.engineStats(), broker: broker.stats() };
}

async function main() {
  console.log(
    `soak: ${TOTAL} executions, ${CONCURRENCY} in flight, ${CASES.length} kinds (cycle of ${CYCLE.length}: ` +
      `${CASES.filter((c) => !c.name.startsWith('ok')).length} limit kinds, ordinary weight ${CASES.filter((c) => c.name.startsWith('ok')).reduce((s, c) => s + c.weight, 0)})`,
  );
  const start = performance.now();
  const checkpoints = [];
  for (let done = 0; done < TOTAL; ) {
    const to = Math.min(TOTAL, done + CHECKPOINT);
    await block(done, to);
    done = to;
    const s = snapshot();
    s.count = done;
    s.elapsed = (performance.now() - start) / 1000;
    checkpoints.push(s);
    const line =
      `[${String(done).padStart(5)}] ${s.elapsed.toFixed(1)} s  node RSS ${mib(s.rss)}  heapUsed ${mib(s.heapUsed)} (heapTotal ${mib(s.heapTotal)}, external ${mib(s.external)})  ` +
      `engines ${s.engines.count} procs RSS ${mib(s.engines.rss)} (PSS ${mib(s.engines.pss ?? 0)})  engineStats ${JSON.stringify(s.engineStats)}  ` +
      `sessions ${s.broker.totalSessions}  hang calls open ${hangCalls.started - hangCalls.aborted}  mismatches ${mismatches.length}`;
    console.log(line);
    console.log(`         V8 space sizes (MiB): ${JSON.stringify(s.spaces)}`);
  }
  const elapsed = (performance.now() - start) / 1000;

  console.log('\nper case:');
  console.log(
    table(
      ['case', 'count', 'mismatches', 'median ms', 'p95 ms'],
      CASES.map((c, k) => {
        const s = summarize(perCase[k].ms);
        return [c.name, perCase[k].count, perCase[k].mismatches, fmt(s.median), fmt(s.p95)];
      }),
    ),
  );

  if (mismatches.length > 0) {
    console.log(`\nMISMATCHES (${mismatches.length}; first 30):`);
    for (const m of mismatches.slice(0, 30)) console.log('  ', JSON.stringify(m));
  }

  let memoryPass = true;
  const base = checkpoints.find((c) => c.count === CHECKPOINT);
  const last = checkpoints[checkpoints.length - 1];
  console.log(`\ntotal: ${TOTAL} executions in ${elapsed.toFixed(1)} s (${(TOTAL / elapsed).toFixed(0)}/s), ${mismatches.length} mismatches`);
  if (base !== undefined && last !== base) {
    const change = (last.rss - base.rss) / base.rss;
    memoryPass = change <= RSS_TOLERANCE;
    console.log(
      `node RSS: ${mib(base.rss)} at ${base.count} -> ${mib(last.rss)} at ${last.count}: ${(change * 100).toFixed(1)}% ` +
        `(limit +${RSS_TOLERANCE * 100}%) ${memoryPass ? 'PASS' : 'FAIL'}`,
    );
    console.log(
      `node heapUsed: ${mib(base.heapUsed)} -> ${mib(last.heapUsed)}; heapTotal ${mib(base.heapTotal)} -> ${mib(last.heapTotal)}; ` +
        `external ${mib(base.external)} -> ${mib(last.external)}`,
    );
    console.log(
      `(informational) node RSS outside the V8 heap (rss - heapTotal): ${mib(outside(base))} -> ${mib(outside(last))}: ` +
        `${(((outside(last) - outside(base)) / outside(base)) * 100).toFixed(1)}%`,
    );
    console.log(
      `engine processes: ${base.engines.count} procs ${mib(base.engines.rss)} at ${base.count} -> ` +
        `${last.engines.count} procs ${mib(last.engines.rss)} at ${last.count} ` +
        `(${(((last.engines.rss - base.engines.rss) / Math.max(1, base.engines.rss)) * 100).toFixed(1)}%); ` +
        `PSS ${mib(base.engines.pss ?? 0)} -> ${mib(last.engines.pss ?? 0)}`,
    );
  } else {
    console.log('(fewer than two checkpoints: no RSS comparison)');
  }
  console.log(`sessions left: ${last.broker.totalSessions}; hang calls never aborted: ${hangCalls.started - hangCalls.aborted}`);
  await broker.dispose();
  console.log(`engineStats after dispose: ${JSON.stringify(native.engineStats())}`);
  const awaitingMismatches = AWAITING > 0 ? await awaitingPhase() : 0;
  if (mismatches.length > 0 || awaitingMismatches > 0 || !memoryPass) process.exitCode = 1;
}

// Executions that each await a slow tool, AWAITING_IN_FLIGHT at a time: every value checked.
// The memory budget is lifted for it (the default admits each execution at its worst case).
async function awaitingPhase() {
  const waiting = createBroker({
    sessions: { maxSessions: AWAITING_IN_FLIGHT + 100 },
    runtimePool: { memoryBudget: 2 ** 50, maxQueued: AWAITING_IN_FLIGHT + 100 },
  });
  waiting.tool('wait', {
    handler: ({ i }) => new Promise((resolve) => setTimeout(() => resolve({ i }), AWAITING_TOOL_MS)),
  });
  console.log(`\nawaiting tools: ${AWAITING} executions, ${AWAITING_IN_FLIGHT} in flight, each awaiting a ${AWAITING_TOOL_MS / 1000} s tool`);
  const start = performance.now();
  let next = 0;
  let wrong = 0;
  let first;
  let peakEngines = 0;
  const sampler = setInterval(() => {
    peakEngines = Math.max(peakEngines, engineMemory().pss ?? 0);
  }, 250);
  const workers = Array.from({ length: AWAITING_IN_FLIGHT }, async () => {
    while (next < AWAITING) {
      const i = next++;
      const r = await waiting.execute(`return (await callTool('wait', { i: ${i} })).i * 2`);
      if (!r.success || r.value !== i * 2) {
        wrong++;
        first ??= JSON.stringify(r.error ?? r.value).slice(0, 200);
      }
    }
  });
  await Promise.all(workers);
  clearInterval(sampler);
  const elapsed = (performance.now() - start) / 1000;
  global.gc();
  console.log(
    `awaiting tools: ${AWAITING} executions in ${elapsed.toFixed(1)} s, ${wrong} mismatches${first ? ` (first: ${first})` : ''}; ` +
      `peak engine PSS ${mib(peakEngines)}; node RSS ${mib(process.memoryUsage().rss)}; engineStats ${JSON.stringify(native.engineStats())}`,
  );
  await waiting.dispose();
  return wrong;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

