#!/usr/bin/env node
// HTTP load benchmark: an EnclaveBroker on listen() (its own Node process, so the load
// generator does not share its event loop) and 200 clients in a closed loop, each POSTing
// /execute and reading the NDJSON stream to its `final` event.
//
//   node bench/http.js [--clients N] [--seconds S]
//
// Scenarios: `quick` (one tool call and one console.log: throughput), `held` (the tool
// answers after 100 ms, so every client's stream stays open: 200 streaming executions at
// once). Reports requests/s, latency (request sent -> stream ended) p50/p99/max, time to
// the first byte, errors, the largest number of sessions the server had active at once, and
// the server's memory (Node + engine processes).
'use strict';

const http = require('node:http');
const path = require('node:path');
const { summarize, percentile, fmt, mib, table } = require('./lib/stats');
const { engineMemory, readRssBytes } = require('./lib/procs');
const { startWorker } = require('./lib/worker');

const ROOT = path.resolve(__dirname, '..');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
}

const CLIENTS = arg('--clients', 200);
const SECONDS = arg('--seconds', 10);
const WARMUP_SECONDS = 2;

const SCENARIOS = [
  {
    id: 'quick',
    title: 'quick: 1 tool call + console.log',
    code: "const r = await callTool('echo', { i: 7 }); console.log('echoed', r.i); return r.i",
    expect: 7,
  },
  {
    id: 'held',
    title: 'held: tool answers after 100 ms',
    code: "const r = await callTool('wait', { ms: 100 }); return r",
    expect: 'waited',
  },
];

// ---------------------------------------------------------------- server process

async function server() {
  const { EnclaveBroker } = require(ROOT);
  const broker = new EnclaveBroker({
    maxConcurrentSessions: 10000,
    limits: { heartbeatIntervalMs: 0 },
    tools: {
      echo: async (args) => args,
      wait: ({ ms }) => new Promise((resolve) => setTimeout(() => resolve('waited'), ms)),
    },
  });
  await broker.listen(0, '127.0.0.1');
  let maxActive = 0;
  const sampler = setInterval(() => {
    maxActive = Math.max(maxActive, broker.stats().activeSessions);
  }, 20);
  process.on('message', async (msg) => {
    if (msg.cmd === 'reset') {
      maxActive = 0;
      process.send({ ok: true });
    } else if (msg.cmd === 'report') {
      const engines = engineMemory();
      process.send({ maxActive, nodeRss: readRssBytes(process.pid), engines, engineStats: require(path.join(ROOT, 'lib', 'native.js')).engineStats() });
    } else if (msg.cmd === 'stop') {
      clearInterval(sampler);
      await broker.close({ timeout: 1000 });
      process.send({ ok: true }, () => process.exit(0));
    }
  });
  process.send({ port: broker.port });
}

// ---------------------------------------------------------------- load generator

// One streaming execution: resolves with its timings, or an error description.
function execute(agent, port, code) {
  return new Promise((resolve) => {
    const body = JSON.stringify({ code });
    const started = performance.now();
    let firstByte;
    const req = http.request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/execute',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          firstByte ??= performance.now();
          text += chunk;
        });
        res.on('end', () => {
          const ended = performance.now();
          if (res.statusCode !== 200) {
            resolve({ error: `HTTP ${res.statusCode} ${text.slice(0, 120)}` });
            return;
          }
          const lines = text.trim().split('\n');
          let final;
          try {
            final = JSON.parse(lines[lines.length - 1]);
          } catch {
            resolve({ error: `unparsable stream end ${lines[lines.length - 1].slice(0, 120)}` });
            return;
          }
          if (final.type !== 'final' || final.payload.ok !== true) {
            resolve({ error: `final not ok: ${JSON.stringify(final).slice(0, 160)}` });
            return;
          }
          resolve({ latency: ended - started, ttfb: firstByte - started, events: lines.length, result: final.payload.result });
        });
        res.on('error', (error) => resolve({ error: `response: ${error.message}` }));
      },
    );
    req.on('error', (error) => resolve({ error: `request: ${error.message}` }));
    req.end(body);
  });
}

async function load(port, scenario, seconds, record) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const out = { latency: [], ttfb: [], events: 0, errors: [] };
  const stopAt = performance.now() + seconds * 1000;
  const client = async () => {
    while (performance.now() < stopAt) {
      const r = await execute(agent, port, scenario.code);
      if (!record) continue;
      if (r.error !== undefined) out.errors.push(r.error);
      else if (r.result !== scenario.expect) out.errors.push(`wrong result ${JSON.stringify(r.result)}`);
      else {
        out.latency.push(r.latency);
        out.ttfb.push(r.ttfb);
        out.events += r.events;
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, client));
  out.elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  return out;
}

async function main() {
  console.log(`enclave-broker-rs HTTP benchmark: ${CLIENTS} concurrent clients, ${SECONDS} s per scenario (+${WARMUP_SECONDS} s warm-up)`);
  const srv = startWorker(__filename, ['--server'], { label: 'server' });
  const { port } = await srv.ready;
  const rows = [];
  const reports = [];
  let failed = false;
  for (const scenario of SCENARIOS) {
    process.stdout.write(`  ${scenario.title} ... `);
    await load(port, scenario, WARMUP_SECONDS, false);
    await srv.request({ cmd: 'reset' });
    const r = await load(port, scenario, SECONDS, true);
    const report = await srv.request({ cmd: 'report' });
    reports.push([scenario, report]);
    const lat = summarize(r.latency);
    const done = r.latency.length;
    rows.push([
      scenario.title,
      fmt(done / r.elapsed, 1),
      fmt(lat.median),
      fmt(percentile(r.latency, 99)),
      fmt(lat.max),
      fmt(percentile(r.ttfb, 50)),
      String(done),
      String(r.errors.length),
      String(report.maxActive),
    ]);
    console.log(`${done} streams, ${r.errors.length} errors`);
    if (r.errors.length > 0) {
      failed = true;
      for (const e of [...new Set(r.errors)].slice(0, 5)) console.log(`    error: ${e}`);
    }
  }
  await srv.request({ cmd: 'stop' });
  console.log();
  console.log(
    table(['scenario', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'ttfb p50 ms', 'streams', 'errors', 'max active'], rows),
  );
  console.log('\nlatency: request sent -> NDJSON stream ended (final event read); ttfb: -> first byte of the stream.');
  console.log('max active: most sessions the server had running at once (sampled every 20 ms).');
  for (const [scenario, report] of reports) {
    const e = report.engines;
    console.log(
      `server after ${scenario.id}: node RSS ${mib(report.nodeRss)}; ${e.count} engine processes RSS ${mib(e.rss)}, PSS ${mib(e.pss)}; engineStats ${JSON.stringify(report.engineStats)}`,
    );
  }
  if (failed) process.exitCode = 1;
}

if (process.argv.includes('--server')) {
  server().catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
