#!/usr/bin/env node
// Benchmark: this project against a baseline of two fresh node:vm contexts per execution
// (what the original @enclave-vm/broker pays; see baseline.js), in one run.
//
//   node bench/bench.js            runs everything and prints the table
//   node bench/bench.js --quick    fewer iterations (a smoke run of the harness)
//
// Each side runs in its own Node process (so one side's garbage and engine processes do
// not disturb the other's timings); import cost is measured in fresh child processes.
// Results are written to bench/results/latest.json.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { summarize, fmt, mib, table } = require('./lib/stats');
const { engineMemory, readRssBytes } = require('./lib/procs');
const { startWorker } = require('./lib/worker');

const ROOT = path.resolve(__dirname, '..');
const RESULTS = path.join(__dirname, 'results', 'latest.json');
const QUICK = process.argv.includes('--quick');
const scale = (n) => (QUICK ? Math.max(2, Math.ceil(n / 10)) : n);

const ITEM_COUNT = 10000;
const LARGE_ITEM_COUNT = 100000;
const CPU_EXPECTED = (() => {
  let s = 0;
  for (let i = 0; i < 1e6; i++) s += i * i;
  return s;
})();

// Scenario definitions, shared by both sides. `limits` maps to session limits (ours) or
// the baseline's options. `concurrency` runs that many executes at once per sample.
const SCENARIOS = [
  {
    id: 'a',
    title: "a. execute('return 1 + 2')",
    code: 'return 1 + 2',
    check: (v) => v === 3,
    warmup: 50,
    iterations: 1000,
  },
  {
    id: 'b',
    title: 'b. one tool call',
    code: "return await callTool('echo', { x: 1 })",
    check: (v) => v !== null && typeof v === 'object' && v.x === 1,
    warmup: 50,
    iterations: 1000,
  },
  {
    id: 'c',
    title: 'c. 100 sequential tool calls (total)',
    code: "let s = 0; for (let i = 0; i < 100; i++) s += (await callTool('echo', { i })).i; return s",
    check: (v) => v === 4950,
    limits: { maxToolCalls: 1000 },
    warmup: 10,
    iterations: 100,
  },
  {
    id: 'd',
    title: 'd. 50 concurrent executes, 1 tool call each',
    code: "return await callTool('echo', { x: 1 })",
    check: (v) => v !== null && typeof v === 'object' && v.x === 1,
    concurrency: 50,
    warmup: 3,
    iterations: 30,
  },
  {
    id: 'n',
    title: 'n. 200 concurrent executes, 1 tool call each',
    code: "return await callTool('echo', { x: 1 })",
    check: (v) => v !== null && typeof v === 'object' && v.x === 1,
    concurrency: 200,
    warmup: 2,
    iterations: 20,
  },
  {
    id: 'e',
    title: 'e. CPU loop 1e6 (s += i * i), warm (after 10 runs)',
    code: 'let s = 0; for (let i = 0; i < 1e6; i++) s += i * i; return s',
    check: (v) => v === CPU_EXPECTED,
    warmup: 10,
    iterations: 200,
  },
  {
    id: 'f',
    title: `f. tool returns ${ITEM_COUNT} objects, script returns count`,
    code: "const items = await callTool('items', {}); return items.length",
    check: (v) => v === ITEM_COUNT,
    warmup: 5,
    iterations: 40,
  },
  {
    id: 'j',
    title: `j. tool returns ${LARGE_ITEM_COUNT} objects, script returns count`,
    code: "const items = await callTool('manyItems', {}); return items.length",
    check: (v) => v === LARGE_ITEM_COUNT,
    // About 6 MB of JSON: over the default 5 MiB cap on a tool result.
    limits: { maxToolResultBytes: 64 * 1024 * 1024 },
    warmup: 2,
    iterations: 15,
  },
  {
    id: 'i',
    title: 'i. while (true) {} under a 100 ms script timeout',
    code: 'while (true) {}',
    // Both sides must report a failure (ours: TIMEOUT); the time is when it was reported.
    check: (v, r) => r.success === false && (r.error.code === 'TIMEOUT' || r.error.code === 'EXECUTION_ERROR'),
    expectFailure: true,
    limits: { toolTimeoutMs: 100 },
    warmup: 3,
    iterations: 40,
  },
];

// Extracted mode (a runtime worker process on this machine, reached over WebSocket on
// 127.0.0.1) against embedded mode, in the same run: what the network hop costs.
const EXTRACTED_SCENARIOS = [
  ...SCENARIOS.filter((s) => ['a', 'b', 'c'].includes(s.id)),
  {
    id: 'x',
    title: 'x. 200 concurrent executes, 1 tool call each',
    code: "return await callTool('echo', { x: 1 })",
    check: (v) => v !== null && typeof v === 'object' && v.x === 1,
    concurrency: 200,
    warmup: 2,
    iterations: 20,
  },
];

// A 50 MB document moved from one tool to another: by reference (the sidecar keeps it on the
// host, the script holds a reference string) beside the copying path (into the engine and
// out again), and the node:vm baseline's copies, in the same run.
const DOCUMENT_BYTES = 50 * 1024 * 1024;
const DOCUMENT_SCENARIOS = [
  {
    id: 'k',
    title: 'k. 50 MB document from one tool to another',
    code: "const doc = await callTool('document', {}); return await callTool('store', { body: doc })",
    check: (v) => v === DOCUMENT_BYTES,
    limits: { maxToolResultBytes: 64 * 1024 * 1024, memoryLimit: 512 * 1024 * 1024 },
    warmup: 1,
    iterations: 10,
  },
];

const IMPORT_RUNS = QUICK ? 2 : 15;

const MiB = 1024 * 1024;
const INFLIGHT_COUNT = QUICK ? 200 : 1000;
const INFLIGHT_TOOL_MS = 2000;
const PER_EXECUTION_COUNT = 50;
const BURST_COUNT = 200;

// One measurement as a row's statistics.
const one = (v) => summarize([v]);
const allStarted = (r) => r.allStartedMs ?? Infinity;
// Tree PSS above its idle level `second` seconds after a burst, in MiB.
const afterBurst = (r, second) => (r.samples.find((x) => x.s === second).pss - r.basePss) / MiB;

// Density scenarios (bench/density.js), each side in a fresh process.
function runDensity() {
  const density = path.join(__dirname, 'density.js');
  const run = (args) => runChild(['--expose-gc', density, ...args], 120000);
  const pair = (args) => ({ ours: run(['ours', ...args]), baseline: run(['baseline', ...args]) });
  process.stdout.write('running density children (in flight, per execution, burst) ... ');
  const t = performance.now();
  const out = {
    inflight: pair(['inflight', String(INFLIGHT_COUNT), String(INFLIGHT_TOOL_MS)]),
    perExecution: pair(['inflight', String(PER_EXECUTION_COUNT), String(INFLIGHT_TOOL_MS)]),
    burst: pair(['burst', String(BURST_COUNT)]),
  };
  console.log(`${((performance.now() - t) / 1000).toFixed(1)} s`);
  return out;
}

function makeItems(count = ITEM_COUNT) {
  return Array.from({ length: count }, (_, i) => ({
    id: i,
    name: `item-${i}`,
    tags: ['alpha', 'beta', i % 2 === 0 ? 'even' : 'odd'],
  }));
}

const strip = ({ median, p95, min, max, n }) => ({ median, p95, min, max, n });

function gc() {
  if (typeof global.gc === 'function') global.gc();
}

// ---------------------------------------------------------------- worker: one side

function createSide(side) {
  const items = makeItems();
  const manyItems = makeItems(LARGE_ITEM_COUNT);
  const document = 'd'.repeat(DOCUMENT_BYTES);
  const tools = {
    echo: { handler: async (args) => args },
    items: { handler: async () => items },
    manyItems: { handler: async () => manyItems },
    document: { handler: async () => document },
    store: { handler: async ({ body }) => body.length },
  };
  if (side === 'reference' || side === 'copying') {
    const { createBroker } = require(ROOT);
    const broker = createBroker(side === 'reference' ? { enclave: { sidecar: { enabled: true } } } : {});
    for (const [name, def] of Object.entries(tools)) broker.tool(name, def);
    return {
      run: (code, limits) => broker.execute(code, { session: { limits } }),
      dispose: () => broker.dispose(),
    };
  }
  if (side === 'ours' || side === 'embedded' || side === 'extracted') {
    const { createBroker } = require(ROOT);
    // Room for scenarios j's, n's and x's 200 concurrent sessions (the default maxSessions is 100).
    const sessions = { maxSessions: 1000 };
    const broker =
      side === 'extracted'
        ? createBroker({ mode: 'extracted', runtimeUrl: process.env.BENCH_RUNTIME_URL, sessions })
        : createBroker({ sessions });
    for (const [name, def] of Object.entries(tools)) broker.tool(name, def);
    return {
      run: (code, limits) => broker.execute(code, limits === undefined ? {} : { session: { limits } }),
      dispose: () => broker.dispose(),
    };
  }
  const { VmBaselineBroker } = require('./baseline');
  const broker = new VmBaselineBroker();
  for (const [name, def] of Object.entries(tools)) broker.tool(name, def);
  return {
    run: (code, limits) =>
      broker.execute(code, limits === undefined ? {} : { maxToolCalls: limits.maxToolCalls, timeoutMs: limits.toolTimeoutMs }),
    dispose: () => broker.dispose(),
  };
}

async function sample(side, scenario, failures) {
  const once = async () => {
    const result = await side.run(scenario.code, scenario.limits);
    const passed = scenario.expectFailure ? scenario.check(undefined, result) : result.success && scenario.check(result.value);
    if (!passed) {
      failures.push({ scenario: scenario.id, result: JSON.stringify(result).slice(0, 300) });
    }
  };
  const concurrency = scenario.concurrency ?? 1;
  const started = performance.now();
  if (concurrency === 1) await once();
  else await Promise.all(Array.from({ length: concurrency }, once));
  return performance.now() - started;
}

// A worker process runs one side. The orchestrator drives both workers over IPC, in
// alternating chunks, so load from elsewhere on the machine hits both sides alike.
function worker(sideName) {
  const side = createSide(sideName);
  const failures = [];
  process.on('message', async (msg) => {
    if (msg.cmd === 'run') {
      const scenario = [...SCENARIOS, ...EXTRACTED_SCENARIOS, ...DOCUMENT_SCENARIOS].find((s) => s.id === msg.id);
      gc();
      const warm = [];
      for (let i = 0; i < msg.warmup; i++) await sample(side, scenario, warm);
      failures.push(...warm);
      const times = [];
      for (let i = 0; i < msg.iterations; i++) times.push(await sample(side, scenario, failures));
      process.send({ times });
    } else if (msg.cmd === 'finish') {
      gc();
      const out = { failures, memory: { nodeRss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed } };
      if (sideName === 'ours' || sideName === 'embedded') {
        out.engineStats = require(path.join(ROOT, 'lib', 'native.js')).engineStats();
        out.engines = engineMemory();
      }
      const disposeStarted = performance.now();
      await side.dispose();
      out.disposeMs = performance.now() - disposeStarted;
      process.send(out, () => process.exit(0));
    }
  });
  process.send({ ready: true });
}

function startSideWorker(side, env) {
  return startWorker(__filename, ['--worker', side], { label: `${side} worker`, execArgv: ['--expose-gc'], env });
}

// Per scenario: warm-up on both sides, then CHUNKS alternating chunks of iterations.
const CHUNKS = 5;

async function runSides(order = ['ours', 'baseline'], list = SCENARIOS, env = undefined) {
  const workers = Object.fromEntries(order.map((side) => [side, startSideWorker(side, env)]));
  for (const side of order) await workers[side].ready;
  const scenarios = Object.fromEntries(order.map((side) => [side, {}]));
  for (const scenario of list) {
    const t = performance.now();
    process.stdout.write(`  ${scenario.title} ... `);
    const times = Object.fromEntries(order.map((side) => [side, []]));
    for (const side of order) await workers[side].request({ cmd: 'run', id: scenario.id, warmup: scale(scenario.warmup), iterations: 0 });
    const iterations = scale(scenario.iterations);
    for (let c = 0; c < CHUNKS; c++) {
      const n = Math.floor(iterations / CHUNKS) + (c < iterations % CHUNKS ? 1 : 0);
      // Alternate which side goes first, too.
      for (const side of c % 2 === 0 ? order : order.toReversed()) {
        const r = await workers[side].request({ cmd: 'run', id: scenario.id, warmup: 0, iterations: n });
        times[side].push(...r.times);
      }
    }
    for (const side of order) {
      const entry = { unit: 'ms', times: times[side], ...summarize(times[side]) };
      if (scenario.concurrency !== undefined) {
        // Throughput per round; its "p95" is the rate of the p95 (slow) round.
        const rates = times[side].map((x) => (scenario.concurrency * 1000) / x);
        Object.assign(entry, { unit: 'exec/s', rates, median: summarize(rates).median, p95: (scenario.concurrency * 1000) / entry.p95 });
      }
      scenarios[side][scenario.id] = entry;
    }
    console.log(`${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const finals = {};
  for (const side of order) finals[side] = await workers[side].request({ cmd: 'finish' });
  return Object.fromEntries(order.map((side) => [side, { scenarios: scenarios[side], ...finals[side] }]));
}

// Starts an `enclave-runtime` process on a free local port, then runs the extracted
// scenarios on an embedded and an extracted broker (each in its own process).
async function runExtracted() {
  const { spawn } = require('node:child_process');
  const cli = path.join(ROOT, 'bin', 'enclave-runtime.js');
  const runtime = spawn(process.execPath, [cli, '--port', '0', '--host', '127.0.0.1', '--max-sessions', '256'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    runtime.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (ws:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    runtime.once('exit', (code) => reject(new Error(`enclave-runtime exited (${code}) before listening`)));
  });
  console.log(`running extracted-mode scenarios (runtime worker pid ${runtime.pid}, ${url}):`);
  try {
    return await runSides(['embedded', 'extracted'], EXTRACTED_SCENARIOS, { ...process.env, BENCH_RUNTIME_URL: url });
  } finally {
    runtime.kill('SIGTERM');
  }
}

// ---------------------------------------------------------------- child: import cost

async function importChild(sideName) {
  const target = sideName === 'ours' ? ROOT : 'node:vm';
  const t0 = process.hrtime.bigint();
  const mod = require(target);
  const t1 = process.hrtime.bigint();
  const rss = process.memoryUsage().rss;
  const enginesAfterImport = engineMemory();
  // The first execution in a fresh process (cold start: engine processes, first contexts).
  // Then the CPU loop once: cold, in a fresh process (ours: a fresh isolate too).
  const broker = sideName === 'ours' ? mod.createBroker() : new (require('./baseline').VmBaselineBroker)();
  let s = performance.now();
  const r = await broker.execute('return 1 + 2');
  const firstExecMs = performance.now() - s;
  s = performance.now();
  const cpu = await broker.execute(SCENARIOS.find((x) => x.id === 'e').code);
  const cpuColdMs = performance.now() - s;
  const firstOk = r.value === 3 && cpu.value === CPU_EXPECTED;
  await broker.dispose();
  process.stdout.write(
    `${JSON.stringify({ importMs: Number(t1 - t0) / 1e6, rss, enginesAfterImport: enginesAfterImport.count, firstExecMs, cpuColdMs, firstOk })}\n`,
  );
  process.exit(0);
}

// ---------------------------------------------------------------- orchestrator

function runChild(args, timeoutMs) {
  const r = spawnSync(process.execPath, args, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`child ${args.join(' ')} failed: status ${r.status} ${r.signal ?? ''}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

async function main() {
  const started = performance.now();
  console.log(`enclave-broker-rs benchmark — node ${process.version}, ${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? ''}`);
  console.log(QUICK ? '(quick mode: reduced iterations)\n' : '');
  console.log(`running scenarios (ours and baseline workers, ${CHUNKS} alternating chunks each):`);
  const sides = await runSides();
  const extracted = await runExtracted();
  console.log('running the document scenario (by reference, copying, and the baseline):');
  const documents = await runSides(['reference', 'copying', 'baseline'], DOCUMENT_SCENARIOS);
  process.stdout.write(`running import children (${IMPORT_RUNS} each, alternating) ... `);
  const t = performance.now();
  const imports = { ours: [], baseline: [] };
  for (let i = 0; i < IMPORT_RUNS; i++) {
    for (const side of ['ours', 'baseline']) imports[side].push(runChild([__filename, '--import', side], 60000));
  }
  console.log(`${((performance.now() - t) / 1000).toFixed(1)} s`);
  const density = runDensity();
  console.log('');

  const rows = [];
  const json = { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, quick: QUICK, scenarios: [] };
  const addRow = (id, title, unit, ours, base, higherIsBetter) => {
    const ratio = higherIsBetter ? ours.median / base.median : base.median / ours.median;
    rows.push([title, unit, fmt(ours.median), fmt(ours.p95), fmt(base.median), fmt(base.p95), `${fmt(ratio)}x`]);
    json.scenarios.push({ id, title, unit, higherIsBetter, ours, baseline: base, ratio });
  };
  for (const scenario of SCENARIOS) {
    const ours = sides.ours.scenarios[scenario.id];
    const base = sides.baseline.scenarios[scenario.id];
    addRow(scenario.id, scenario.title, ours.unit, strip(ours), strip(base), ours.unit === 'exec/s');
  }
  const importStat = (side, key) => summarize(imports[side].map((r) => r[key]));
  addRow('g-time', 'g. import time (fresh child, hrtime around require)', 'ms', importStat('ours', 'importMs'), importStat('baseline', 'importMs'), false);
  const rssMib = (side) => summarize(imports[side].map((r) => r.rss / (1024 * 1024)));
  addRow('g-rss', 'g. RSS after import (child process)', 'MiB', rssMib('ours'), rssMib('baseline'), false);
  addRow('h', 'h. cold start: first execute in a fresh process', 'ms', importStat('ours', 'firstExecMs'), importStat('baseline', 'firstExecMs'), false);
  addRow('e-cold', 'e. CPU loop 1e6, cold (second execute of a fresh process)', 'ms', importStat('ours', 'cpuColdMs'), importStat('baseline', 'cpuColdMs'), false);
  const { inflight, perExecution, burst } = density;
  addRow('o-start', `o. ${INFLIGHT_COUNT} in flight awaiting a ${INFLIGHT_TOOL_MS / 1000} s tool: all started (ms after submit)`, 'ms', one(allStarted(inflight.ours)), one(allStarted(inflight.baseline)), false);
  addRow('o-done', `o. ${INFLIGHT_COUNT} in flight: all finished`, 'ms', one(inflight.ours.completedMs), one(inflight.baseline.completedMs), false);
  addRow('o-pss', `o. ${INFLIGHT_COUNT} in flight: peak PSS of the process tree (Node + engines)`, 'MiB', one(inflight.ours.peakPss / MiB), one(inflight.baseline.peakPss / MiB), false);
  addRow('p', `p. memory per in-flight execution (PSS, ${PER_EXECUTION_COUNT} awaiting a tool)`, 'MiB', one(perExecution.ours.perExecutionPss / MiB), one(perExecution.baseline.perExecutionPss / MiB), false);
  addRow('q-0', `q. tree PSS above idle right after a burst of ${BURST_COUNT}`, 'MiB', one(afterBurst(burst.ours, 0)), one(afterBurst(burst.baseline, 0)), false);
  addRow('q-5', `q. tree PSS above idle 5 s after a burst of ${BURST_COUNT}`, 'MiB', one(afterBurst(burst.ours, 5)), one(afterBurst(burst.baseline, 5)), false);

  console.log(table(['scenario', 'unit', 'ours median', 'ours p95', 'baseline median', 'baseline p95', 'ratio'], rows));
  console.log('\nextracted mode (runtime worker process on this machine, WebSocket on 127.0.0.1) beside embedded mode:');
  const extractedRows = [];
  json.extracted = [];
  for (const scenario of EXTRACTED_SCENARIOS) {
    const local = extracted.embedded.scenarios[scenario.id];
    const remote = extracted.extracted.scenarios[scenario.id];
    const perSecond = local.unit === 'exec/s';
    const delta = remote.median - local.median;
    const cost = perSecond ? `${fmt(remote.median / local.median)}x` : `${delta < 0 ? '-' : '+'}${fmt(Math.abs(delta))} ms`;
    extractedRows.push([scenario.title, local.unit, fmt(local.median), fmt(local.p95), fmt(remote.median), fmt(remote.p95), cost]);
    json.extracted.push({ id: scenario.id, title: scenario.title, unit: local.unit, embedded: strip(local), extracted: strip(remote) });
  }
  console.log(table(['scenario', 'unit', 'embedded median', 'embedded p95', 'extracted median', 'extracted p95', 'extracted vs embedded'], extractedRows));
  console.log('extracted vs embedded: time rows = the difference of the medians; exec/s row = extracted / embedded.');
  console.log('\nlarge data by reference (enclave.sidecar) beside the copying path and the baseline:');
  json.documents = [];
  const documentRows = DOCUMENT_SCENARIOS.map((scenario) => {
    const [ref, copy, base] = ['reference', 'copying', 'baseline'].map((side) => documents[side].scenarios[scenario.id]);
    json.documents.push({ id: scenario.id, title: scenario.title, reference: strip(ref), copying: strip(copy), baseline: strip(base) });
    return [scenario.title, 'ms', fmt(ref.median), fmt(ref.p95), fmt(copy.median), fmt(copy.p95), fmt(base.median), `${fmt(base.median / ref.median)}x`];
  });
  console.log(
    table(['scenario', 'unit', 'reference median', 'reference p95', 'copying median', 'copying p95', 'baseline median', 'ratio'], documentRows),
  );
  console.log('reference: the script holds a reference string, the data stays on the host; copying: the same broker');
  console.log('without the sidecar (the document goes into the engine and out again); ratio = baseline / reference.');
  console.log(`
ratio: time rows = baseline / ours; exec/s row = ours / baseline. In both, > 1 means ours is better.
p95: time rows = 95th-percentile latency; exec/s row = throughput of the 95th-percentile (slow) round.
baseline: two fresh node:vm contexts per execution (parent + inner, never reused), script compiled and
  run in the inner one, callTool -> parent bridge -> awaited async host handler, JSON copies across
  realms. It omits the original's AST validation/transform and value sanitizer, so it is a lower bound.
g. baseline import = require('node:vm') only: the original @enclave-vm/broker is not installed here,
  so its real import cost is not measurable. Ours = require of this package (no engine processes
  started at import: ${Math.max(...imports.ours.map((r) => r.enginesAfterImport))} found after import).
h. is extra: the first execute after import in a fresh process (includes starting engine processes).
o. each side in a fresh process; ours with runtimePool.memoryBudget large enough for all at once (the default
  budget admits each execution at its worst case). "all started": when the last tool handler ran.
p. (peak PSS while ${PER_EXECUTION_COUNT} executions wait on a tool - PSS when idle) / ${PER_EXECUTION_COUNT}, whole process tree.
q. PSS of the process tree (gc() first) minus its idle PSS before the burst.
e. runs in different V8 builds (Node ${process.versions.v8} vs the engine's deno_core V8).
i. the time from execute() to the reported timeout: the overshoot past 100 ms is how promptly a
  spinning script is stopped (ours: timer -> stop frame -> the engine's reader thread -> V8 terminate_execution;
  baseline: vm's timeout).`);

  const failures = [
    ...sides.ours.failures,
    ...sides.baseline.failures.map((f) => ({ ...f, side: 'baseline' })),
    ...extracted.embedded.failures.map((f) => ({ ...f, side: 'embedded' })),
    ...extracted.extracted.failures.map((f) => ({ ...f, side: 'extracted' })),
    ...['reference', 'copying', 'baseline'].flatMap((side) => documents[side].failures.map((f) => ({ ...f, side }))),
  ];
  const importFailures = [...imports.ours, ...imports.baseline].filter((r) => !r.firstOk).length;
  for (const [name, pair] of Object.entries(density)) {
    for (const [side, r] of Object.entries(pair)) {
      if (r.mismatches > 0) failures.push({ scenario: name, side, mismatches: r.mismatches, error: r.firstError });
    }
  }
  if (failures.length > 0 || importFailures > 0) {
    console.log(`\nWRONG RESULTS: ${failures.length} executions, ${importFailures} cold starts`);
    for (const f of failures.slice(0, 10)) console.log('  ', JSON.stringify(f));
  }

  const o = sides.ours;
  console.log(`\nours at the end (before dispose), in the ours worker process:`);
  console.log(`  engineStats(): ${JSON.stringify(o.engineStats)}`);
  console.log(
    `  RSS: node ${mib(o.memory.nodeRss)} + ${o.engines.count} engine processes ${mib(o.engines.rss)} = ${mib(o.memory.nodeRss + o.engines.rss)}` +
      ` (engine PSS, shared pages split: ${mib(o.engines.pss ?? 0)}, ${mib((o.engines.pss ?? 0) / Math.max(1, o.engines.count))} per process)` +
      ` (node heapUsed ${mib(o.memory.heapUsed)})`,
  );
  console.log(`baseline worker at the end: RSS ${mib(sides.baseline.memory.nodeRss)} (heapUsed ${mib(sides.baseline.memory.heapUsed)})`);
  console.log(`orchestrator RSS ${mib(readRssBytes(process.pid))}; total bench time ${((performance.now() - started) / 1000).toFixed(1)} s`);

  json.imports = imports;
  json.density = density;
  json.failures = failures;
  json.ours = { engineStats: o.engineStats, nodeRss: o.memory.nodeRss, heapUsed: o.memory.heapUsed, engines: o.engines };
  json.baseline = { nodeRss: sides.baseline.memory.nodeRss, heapUsed: sides.baseline.memory.heapUsed };
  json.samples = Object.fromEntries(
    ['ours', 'baseline'].map((s) => [s, Object.fromEntries(Object.entries(sides[s].scenarios).map(([k, v]) => [k, v.times]))]),
  );
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`results written to ${path.relative(ROOT, RESULTS)}`);
  if (failures.length > 0 || importFailures > 0) process.exitCode = 1;
}

const workerIndex = process.argv.indexOf('--worker');
const importIndex = process.argv.indexOf('--import');
if (workerIndex !== -1) {
  worker(process.argv[workerIndex + 1]);
} else if (importIndex !== -1) {
  importChild(process.argv[importIndex + 1]).catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
