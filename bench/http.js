#!/usr/bin/env node
// HTTP load benchmark: an EnclaveBroker on listen() (its own Node process, so the load
// generator does not share its event loop) and 200 clients in a closed loop, each POSTing
// /execute and reading the NDJSON stream to its `final` event.
//
//   node bench/http.js [--clients N] [--seconds S] [--no-redis]
//
// Scenarios: `quick` (one tool call and one console.log: throughput), `held` (the tool
// answers after 100 ms, so every client's stream stays open: 200 streaming executions at
// once). Each runs on three set-ups, in the same run: one broker in memory (the baseline),
// one broker sharing its state through Redis, and three brokers on one Redis with the
// clients spread over them round-robin (a redis-server on a free port, started here when
// Debian's `redis-server` is installed). Reports requests/s, latency (request sent ->
// stream ended) p50/p99/max, time to the first byte, errors, the most sessions the brokers
// had active at once, Redis commands per execution (INFO commandstats: every command Redis
// ran, those inside scripts included, over the executions done), and the servers' memory.
'use strict';

const http = require('node:http');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
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
  const redisAt = process.argv.indexOf('--redis');
  const broker = new EnclaveBroker({
    redis: redisAt === -1 ? undefined : process.argv[redisAt + 1],
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

// `ports`: the brokers, taken round-robin request by request (a load balancer's policy).
async function load(ports, scenario, seconds, record) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const out = { latency: [], ttfb: [], events: 0, errors: [] };
  const stopAt = performance.now() + seconds * 1000;
  let next = 0;
  const client = async () => {
    while (performance.now() < stopAt) {
      const port = ports[next++ % ports.length];
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

// ---------------------------------------------------------------- Redis

// A redis-server of the benchmark's own (the test suite's, without persistence), or
// undefined when none is installed.
async function startRedis() {
  if (process.argv.includes('--no-redis')) return undefined;
  const helper = await import(pathToFileURL(path.join(ROOT, '__test__', 'helpers', 'redis.mjs')).href);
  let redis;
  try {
    redis = await helper.startRedis({ persist: false });
  } catch {
    return undefined;
  }
  return {
    url: redis.url,
    // Calls of every command since the last reset, INFO's own excluded.
    async commands() {
      const info = await redis.client.info('commandstats');
      let calls = 0;
      for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        if (match[1] !== 'info' && match[1] !== 'config|resetstat') calls += Number(match[2]);
      }
      return calls;
    },
    async resetStats() {
      await redis.client.config('RESETSTAT');
    },
    stop: () => redis.cleanup(),
  };
}

// ---------------------------------------------------------------- main

async function main() {
  const redis = await startRedis();
  const setups = [{ title: 'in memory, 1 broker', brokers: 1 }];
  if (redis !== undefined) {
    setups.push({ title: 'Redis, 1 broker', brokers: 1, redis: true }, { title: 'Redis, 3 brokers round-robin', brokers: 3, redis: true });
  }
  console.log(`enclave-broker-rs HTTP benchmark: ${CLIENTS} concurrent clients, ${SECONDS} s per scenario (+${WARMUP_SECONDS} s warm-up)`);
  if (redis === undefined) console.log('  (no redis-server found: the Redis rows are left out)');
  const rows = [];
  const reports = [];
  let failed = false;
  for (const scenario of SCENARIOS) {
    for (const setup of setups) {
      const args = ['--server', ...(setup.redis ? ['--redis', redis.url] : [])];
      const servers = Array.from({ length: setup.brokers }, (_, i) => startWorker(__filename, args, { label: `server ${i}` }));
      const ports = (await Promise.all(servers.map((srv) => srv.ready))).map((r) => r.port);
      process.stdout.write(`  ${scenario.title}, ${setup.title} ... `);
      await load(ports, scenario, WARMUP_SECONDS, false);
      await Promise.all(servers.map((srv) => srv.request({ cmd: 'reset' })));
      if (setup.redis) await redis.resetStats();
      const r = await load(ports, scenario, SECONDS, true);
      const commands = setup.redis ? await redis.commands() : undefined;
      const serverReports = await Promise.all(servers.map((srv) => srv.request({ cmd: 'report' })));
      await Promise.all(servers.map((srv) => srv.request({ cmd: 'stop' })));
      reports.push([scenario, setup, serverReports]);
      const lat = summarize(r.latency);
      const done = r.latency.length;
      rows.push([
        scenario.title,
        setup.title,
        fmt(done / r.elapsed, 1),
        fmt(lat.median),
        fmt(percentile(r.latency, 99)),
        fmt(lat.max),
        fmt(percentile(r.ttfb, 50)),
        String(done),
        String(r.errors.length),
        String(serverReports.reduce((sum, report) => sum + report.maxActive, 0)),
        commands === undefined ? '-' : fmt(commands / Math.max(1, done + r.errors.length), 1),
      ]);
      console.log(`${done} streams, ${r.errors.length} errors`);
      if (r.errors.length > 0) {
        failed = true;
        for (const e of [...new Set(r.errors)].slice(0, 5)) console.log(`    error: ${e}`);
      }
    }
  }
  if (redis !== undefined) await redis.stop();
  console.log();
  console.log(
    table(['scenario', 'set-up', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'ttfb p50 ms', 'streams', 'errors', 'max active', 'Redis cmds/exec'], rows),
  );
  console.log('\nlatency: request sent -> NDJSON stream ended (final event read); ttfb: -> first byte of the stream.');
  console.log('max active: most sessions the brokers had running at once (sampled every 20 ms, summed over brokers).');
  console.log('Redis cmds/exec: commands Redis ran during the measured seconds (INFO commandstats, scripts\' own calls included) per execution.');
  for (const [scenario, setup, serverReports] of reports) {
    for (const report of serverReports) {
      const e = report.engines;
      console.log(
        `${scenario.id}, ${setup.title}: node RSS ${mib(report.nodeRss)}; ${e.count} engine processes RSS ${mib(e.rss)}, PSS ${mib(e.pss)}; engineStats ${JSON.stringify(report.engineStats)}`,
      );
    }
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
