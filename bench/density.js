#!/usr/bin/env node
// Density scenarios of `npm run bench`, each run in a fresh Node process (so one scenario's
// engines and garbage cannot count in another's memory) and printed as one JSON line:
//
//   node --expose-gc bench/density.js <ours|baseline> inflight <count> <toolMs>
//     `count` executions at once, each awaiting a tool that answers after `toolMs`: when
//     each emitted its tool call (the handler ran), when all finished, wrong results, and
//     the proportional memory (PSS) of the whole process tree (Node and its engine
//     processes) before and at its peak while they wait.
//   node --expose-gc bench/density.js <ours|baseline> burst <count>
//     a burst of `count` executions at once with one quick tool call each, then the tree's
//     PSS every second for 8 s: how soon idle memory is given back.
//
// Ours runs with a memory budget large enough for every execution at once (the default
// budget, sized for every execution at its worst, would queue most of them: see README
// "Engine memory budget").
'use strict';

const path = require('node:path');
const { childPids, readPssBytes } = require('./lib/procs');

const ROOT = path.resolve(__dirname, '..');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function treePss() {
  return [process.pid, ...childPids(process.pid)].map(readPssBytes).reduce((a, b) => a + b, 0);
}

function gc() {
  if (typeof global.gc === 'function') global.gc();
}

function createSide(sideName, count, tools) {
  if (sideName === 'ours') {
    const { createBroker } = require(ROOT);
    const broker = createBroker({
      sessions: { maxSessions: count + 100 },
      runtimePool: { memoryBudget: 2 ** 50, maxQueued: count + 100 },
    });
    for (const [name, handler] of Object.entries(tools)) broker.tool(name, { handler });
    return { run: (code) => broker.execute(code), dispose: () => broker.dispose() };
  }
  const { VmBaselineBroker } = require('./baseline');
  const broker = new VmBaselineBroker();
  for (const [name, handler] of Object.entries(tools)) broker.tool(name, { handler });
  return { run: (code) => broker.execute(code), dispose: () => broker.dispose() };
}

async function inflight(sideName, count, toolMs) {
  const started = [];
  let t0 = performance.now();
  const side = createSide(sideName, count, {
    wait: async (args) => {
      started.push(performance.now() - t0);
      await sleep(toolMs);
      return args;
    },
  });
  // Warm: engines started and idle, as a service that has run before.
  await side.run("return await callTool('wait', { i: 0 })");
  started.length = 0;
  await sleep(500);
  gc();
  const basePss = treePss();
  let peakPss = basePss;
  const sampler = setInterval(() => {
    peakPss = Math.max(peakPss, treePss());
  }, 100);
  t0 = performance.now();
  const runs = Array.from({ length: count }, (_, i) => side.run(`return (await callTool('wait', { i: ${i} })).i`));
  const results = await Promise.all(runs);
  const completedMs = performance.now() - t0;
  clearInterval(sampler);
  const wrong = results.filter((r, i) => !r.success || r.value !== i);
  await side.dispose();
  return {
    count,
    toolMs,
    started: started.length,
    allStartedMs: started.length === count ? Math.max(...started) : null,
    startedWithinToolMs: started.filter((t) => t <= toolMs).length,
    completedMs,
    basePss,
    peakPss,
    perExecutionPss: (peakPss - basePss) / count,
    mismatches: wrong.length,
    firstError: wrong[0]?.error ?? null,
  };
}

async function burst(sideName, count) {
  const side = createSide(sideName, count, { echo: async (args) => args });
  await side.run("return await callTool('echo', { i: 0 })");
  await sleep(500);
  gc();
  const basePss = treePss();
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: count }, (_, i) => side.run(`return (await callTool('echo', { i: ${i} })).i`)),
  );
  const burstMs = performance.now() - t0;
  gc();
  const samples = [{ s: 0, pss: treePss() }];
  for (let s = 1; s <= 8; s++) {
    await sleep(1000);
    gc();
    samples.push({ s, pss: treePss() });
  }
  const mismatches = results.filter((r, i) => !r.success || r.value !== i).length;
  await side.dispose();
  return { count, burstMs, basePss, samples, mismatches };
}

async function main() {
  const [sideName, scenario, ...args] = process.argv.slice(2);
  const out =
    scenario === 'inflight' ? await inflight(sideName, Number(args[0]), Number(args[1])) : await burst(sideName, Number(args[0]));
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
