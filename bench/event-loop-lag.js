#!/usr/bin/env node
// Event-loop lag under a console flood: sessions whose scripts call `console.log()` 262,144
// times (one byte each, inside the default maxStdoutBytes) with a no-op `onEvent` listener,
// while Node's event loop is watched: perf_hooks.monitorEventLoopDelay, and a 5 ms interval
// timer whose lateness is recorded (the histogram has no sample at all when the loop is
// blocked from start to end). Each configuration runs in a fresh Node process; the same
// sessions run twice there (the first warms the engines).
//
//   node bench/event-loop-lag.js [--root DIR]   DIR: another checkout of this package to
//                                                compare (default: this one)
//
// Reported per configuration: the most a 5 ms timer fired late, the histogram's p99, the
// events each session's listener received, and the run's wall time.
'use strict';

const { spawnSync } = require('node:child_process');
const path = require('node:path');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : process.argv[i + 1];
}

const ROOT = path.resolve(arg('--root', path.join(__dirname, '..')));
const FLOOD = 'for (let i = 0; i < 262144; i++) console.log(); return 1;';

const CHILD = `
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { createBroker } = require(process.env.ROOT);
const [sessions, limits] = JSON.parse(process.env.CASE);
(async () => {
  const broker = createBroker({ limits: { toolTimeoutMs: 120000, ...limits } });
  const run = async () => {
    const counts = Array(sessions).fill(0);
    const histogram = monitorEventLoopDelay({ resolution: 5 });
    histogram.enable();
    let lateMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      lateMs = Math.max(lateMs, now - last - 5);
      last = now;
    }, 5);
    const started = Date.now();
    const results = await Promise.all(counts.map((_, i) => broker.execute(${JSON.stringify(FLOOD)}, { onEvent: () => { counts[i]++; } })));
    const wallMs = Date.now() - started;
    // One more tick measures a block that lasted until the results came.
    await new Promise((resolve) => setTimeout(resolve, 6));
    clearInterval(ticker);
    histogram.disable();
    if (!results.every((r) => r.success)) throw new Error(JSON.stringify(results.map((r) => r.error)));
    return { lateMs, p99Ms: histogram.percentile(99) / 1e6, events: counts, wallMs };
  };
  await run();
  process.stdout.write(JSON.stringify(await run()) + '\\n');
  await broker.dispose();
})().catch((error) => { console.error(error); process.exit(1); });
`;

const CASES = [
  ['1 session, default limits', 1, {}],
  ['4 sessions, default limits', 4, {}],
  ['1 session, maxStdoutEvents: 1e9', 1, { maxStdoutEvents: 1e9 }],
  ['4 sessions, maxStdoutEvents: 1e9', 4, { maxStdoutEvents: 1e9 }],
];

console.log(`event-loop lag under a console flood (262,144 console.log() per session), package at ${ROOT}`);
for (const [label, sessions, limits] of CASES) {
  const child = spawnSync(process.execPath, ['-e', CHILD], {
    env: { ...process.env, ROOT, CASE: JSON.stringify([sessions, limits]) },
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (child.status !== 0) {
    console.log(`${label}: failed (${child.stderr.trim().split('\n').at(-1)})`);
    continue;
  }
  const r = JSON.parse(child.stdout.trim().split('\n').at(-1));
  console.log(
    `${label.padEnd(36)} timer late by up to ${r.lateMs.toFixed(1)} ms (histogram p99 ${r.p99Ms.toFixed(1)} ms); events per listener ${r.events.join('/')}; wall ${r.wallMs} ms`,
  );
}
