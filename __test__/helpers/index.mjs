// Shared helpers for the JS suites: timing, ID formats, event collection, leak counters and
// child processes.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { afterEach } from 'vitest';
import { EnclaveBroker, createBroker } from '../../index.mjs';

const require = createRequire(import.meta.url);
// The facade's host channel (same module instance as the one index.mjs loads).
const host = require('../../lib/host.js');

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const INDEX_URL = pathToFileURL(path.join(ROOT, 'index.mjs')).href;

export const UUID_V4 = '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}';
export const SESSION_ID_RE = new RegExp(`^s_${UUID_V4}$`);
export const CALL_ID_RE = new RegExp(`^c_${UUID_V4}$`);
export const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export const ENVELOPE_KEYS = ['protocolVersion', 'sessionId', 'seq', 'type', 'payload'];
export const RESULT_STATS_KEYS = ['duration', 'toolCallCount', 'iterationCount', 'startTime', 'endTime'];
export const INFO_KEYS = ['sessionId', 'state', 'createdAt', 'expiresAt', 'isExpired'];

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls `predicate` until it holds (or fails the test after `timeoutMs`).
export async function waitFor(predicate, timeoutMs = 5000, label = 'condition') {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`Timed out waiting for ${label}`);
    await sleep(5);
  }
}

// Resolves with `promise`'s value, or with the string 'PENDING' after `ms`.
export function settleWithin(promise, ms) {
  return Promise.race([promise, sleep(ms).then(() => 'PENDING')]);
}

// A listener that records events.
export function collector() {
  const events = [];
  const onEvent = (event) => events.push(event);
  return { events, onEvent, types: () => events.map((e) => e.type) };
}

// What hostCounts() is when nothing leaked.
export const NO_LEAKS = Object.freeze({ sessions: 0, toolSignals: 0, runsInFlight: 0, finishWatchers: 0 });

// Leak counters of the facade: sessions awaiting completion, running tool handlers,
// executions keeping Node alive.
export function hostCounts() {
  return host._counts();
}

// A handler that never settles; records its call and whether its signal aborted.
export function hangingTool() {
  const calls = [];
  return {
    calls,
    def: {
      handler: (args, ctx) => {
        const call = { ctx, aborted: false };
        calls.push(call);
        ctx.signal.addEventListener('abort', () => {
          call.aborted = true;
        });
        return new Promise(() => {});
      },
    },
  };
}

// The one line a process running engines logs to stderr: its engines' sandbox layers.
const SANDBOX_LOG = /^enclave-broker-rs: engine sandbox: [^\n]*\n/m;

// A child's stderr without the sandbox line, and that line (undefined if it is missing).
export function splitSandboxLog(stderr) {
  const match = SANDBOX_LOG.exec(stderr);
  if (match === null) return { stderr, sandboxLog: undefined };
  return { stderr: stderr.slice(0, match.index) + stderr.slice(match.index + match[0].length), sandboxLog: match[0] };
}

// Runs an ES module script in a child Node process. `source` may use `INDEX` for the
// package entry URL; `env` adds environment variables. Resolves {code, signal, stdout,
// stderr, sandboxLog, ms, killed} (stderr without the sandbox line); a child still running
// after `timeoutMs` is killed (killed: true).
// `aliveAfter: {output, ms}` kills the child `ms` after its stdout first holds `output`
// (with `timeoutMs` still the bound before that): "still alive a while after X happened"
// is then decided from what the child printed, not from how fast it started.
export function runNode(source, { timeoutMs = 10000, env = {}, aliveAfter } = {}) {
  const code = source.replaceAll('INDEX', JSON.stringify(INDEX_URL));
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    let aliveTimer;
    child.stdout.on('data', (d) => {
      stdout += d;
      if (aliveAfter !== undefined && aliveTimer === undefined && stdout.includes(aliveAfter.output)) {
        aliveTimer = setTimeout(() => {
          killed = true;
          child.kill('SIGKILL');
        }, aliveAfter.ms);
      }
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      clearTimeout(aliveTimer);
      resolve({ code: exitCode, signal, stdout, ...splitSandboxLog(stderr), ms: Date.now() - started, killed });
    });
  });
}

// A tool whose calls stay pending until the test opens the gate: streams can be observed
// mid-run without timing assumptions.
export function gatedTool(broker, name = 'wait') {
  const waiters = [];
  let opened = false;
  broker.tool(name, {
    handler: () =>
      opened
        ? 'open'
        : new Promise((resolve) => {
            waiters.push(resolve);
          }),
  });
  return {
    open() {
      opened = true;
      for (const resolve of waiters.splice(0)) resolve('open');
    },
  };
}

// `makeBroker(config)` for a suite: every broker it makes is disposed after each test.
export function brokersDisposedAfterEach() {
  const brokers = [];
  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((broker) => broker.dispose()));
  });
  return (config) => {
    const broker = createBroker(config);
    brokers.push(broker);
    return broker;
  };
}

// NDJSON text as parsed events.
export const ndjsonLines = (text) =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));

// Reads an NDJSON body line by line, keeping the raw lines to compare bytes.
export function ndjsonReader(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    async next() {
      for (;;) {
        const newline = buffer.indexOf('\n');
        if (newline >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          return { line, event: JSON.parse(line) };
        }
        const { value, done } = await reader.read();
        if (done) {
          if (buffer !== '') throw new Error(`unterminated line: ${buffer}`);
          return null;
        }
        buffer += decoder.decode(value, { stream: true });
      }
    },
    async until(predicate) {
      const seen = [];
      for (;;) {
        const item = await this.next();
        if (item === null) throw new Error('stream ended early');
        seen.push(item.event);
        if (predicate(item.event)) return seen;
      }
    },
    async rest() {
      const out = [];
      for (let item = await this.next(); item !== null; item = await this.next()) out.push(item.event);
      return out;
    },
  };
}

// POSTs `body` (JSON unless already a string) to `url`.
export const postJson = (url, body, headers = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

// `serve(options, setup)` for a suite: an EnclaveBroker listening on a free local port
// (heartbeats off), closed after each test; resolves {broker, base}.
export function listeningBrokersClosedAfterEach() {
  const open = [];
  afterEach(async () => {
    while (open.length > 0) await open.pop().close({ timeout: 0 });
  });
  return async (options = {}, setup = () => {}) => {
    const broker = new EnclaveBroker({ limits: { heartbeatIntervalMs: 0 }, ...options });
    setup(broker);
    await broker.listen(0, '127.0.0.1');
    open.push(broker);
    return { broker, base: `http://127.0.0.1:${broker.port}` };
  };
}

// The events of one tool call, and of a run that makes exactly one (1.K in docs/compatibility.md).
export const TOOL_CALL_EVENTS = Object.freeze(['tool_call', 'tool_progress', 'tool_progress', 'tool_result_applied']);
export const ONE_TOOL_CALL_RUN = Object.freeze(['session_init', ...TOOL_CALL_EVENTS, 'final']);
