// The engine sandbox seen from outside, on a listening server: engine processes hold
// nothing of the service's environment and no descriptor but their pipes, even one the
// service holds without close-on-exec, while the server keeps serving. (What an engine
// cannot do once confined, open files, sockets, execve, fork, is probed by `cargo test`:
// crates/core/tests/sandbox.rs.)
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INDEX_URL, ROOT, ndjsonLines, postJson, splitSandboxLog } from '../helpers/index.mjs';
import { enginesOf } from './helpers.mjs';

const MARKER = `sandbox-marker-${randomUUID()}`;

// The service: a listening EnclaveBroker with two engines started ahead, holding fd 200
// without close-on-exec (a secrets file its supervisor opened, as bash's `exec 200<file`
// does), and a tool that holds its run until told on stdin.
const SERVICE = `
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { EnclaveBroker } from ${JSON.stringify(INDEX_URL)};
const native = createRequire(${JSON.stringify(path.join(ROOT, 'package.json'))})('./lib/native.js');
const flags = fs.readFileSync('/proc/self/fdinfo/200', 'utf8').match(/^flags:\\s+(\\d+)/m)[1];
let release;
const released = new Promise((resolve) => { release = resolve; });
process.stdin.setEncoding('utf8');
process.stdin.on('data', (text) => {
  if (text.includes('release')) release();
  if (text.includes('stats')) process.stdout.write('STATS ' + JSON.stringify(native.engineStats()) + '\\n');
});
process.stdin.on('end', async () => { await broker.close({ timeout: 0 }); process.exit(0); });
const broker = new EnclaveBroker({
  limits: { heartbeatIntervalMs: 0 },
  runtimePool: { minSize: 2 },
  tools: {
    echo: async (args) => args,
    hold: async () => { process.stdout.write('HELD\\n'); await released; return 'released'; },
  },
});
await broker.listen(0, '127.0.0.1');
process.stdout.write('READY ' + JSON.stringify({ port: broker.port, fd200: fs.readlinkSync('/proc/self/fd/200'), flags }) + '\\n');
`;

// What each of its descriptors points at.
const descriptors = (pid) =>
  Object.fromEntries(fs.readdirSync(`/proc/${pid}/fd`).map((fd) => [fd, fs.readlinkSync(`/proc/${pid}/fd/${fd}`)]));

let dir;
let service;
let lines;
let stderr = '';

// Resolves the first line of the service's stdout that starts with `prefix`.
function nextLine(prefix) {
  return new Promise((resolve) => {
    const look = () => {
      const index = lines.findIndex((line) => line.startsWith(prefix));
      if (index === -1) return false;
      resolve(lines.splice(index, 1)[0].slice(prefix.length).trim());
      return true;
    };
    if (!look()) service.stdout.on('data', function onData() {
      if (look()) service.stdout.off('data', onData);
    });
  });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-sandbox-'));
  const secret = path.join(dir, 'secrets.env');
  fs.writeFileSync(secret, `DATABASE_URL=${MARKER}\n`);
  service = spawn('bash', ['-c', 'exec 200<"$SECRET_FILE"; exec "$NODE" --input-type=module -e "$SERVICE"'], {
    env: { ...process.env, SERVICE_SECRET: MARKER, SECRET_FILE: secret, NODE: process.execPath, SERVICE },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  lines = [];
  let pending = '';
  service.stdout.setEncoding('utf8');
  service.stdout.on('data', (chunk) => {
    pending += chunk;
    const complete = pending.split('\n');
    pending = complete.pop();
    lines.push(...complete);
  });
  service.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
});

afterAll(async () => {
  const exited = new Promise((resolve) => service.once('close', resolve));
  service.stdin.end();
  await exited;
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('engine processes of a listening server', () => {
  it('hold no environment and no descriptor but their pipes, while the server serves', async () => {
    const ready = JSON.parse(await nextLine('READY'));
    const base = `http://127.0.0.1:${ready.port}`;
    // The service holds the secrets file as fd 200, without close-on-exec.
    expect(ready.fd200).toMatch(/secrets\.env$/);
    expect(Number.parseInt(ready.flags, 8) & 0o2000000).toBe(0);

    for (let i = 0; i < 3; i++) {
      const response = await postJson(`${base}/execute`, { code: `return (await callTool('echo', { i: ${i} })).i` });
      const events = ndjsonLines(await response.text());
      expect(events.at(-1).payload).toMatchObject({ ok: true, result: i });
    }

    const held = postJson(`${base}/execute`, { code: "return await callTool('hold', {})" }).then((r) => r.text());
    await nextLine('HELD');
    const engines = enginesOf(service.pid);
    expect(engines.length).toBeGreaterThanOrEqual(2);
    for (const pid of engines) {
      expect(fs.readFileSync(`/proc/${pid}/environ`, 'utf8')).toBe('');
      const fds = descriptors(pid);
      expect([fds['0'], fds['1'], fds['2']].every((target) => /^pipe:\[\d+\]$/.test(target))).toBe(true);
      // Beyond its pipes, only what the engine's own runtime made (epoll, eventfd, socketpair).
      const others = Object.entries(fds).filter(([fd]) => Number(fd) > 2);
      expect(others.filter(([, target]) => !/^(anon_inode:\[(eventpoll|eventfd)\]|socket:\[\d+\])$/.test(target))).toStrictEqual([]);
      expect(Object.values(fds).some((target) => target.includes('secrets'))).toBe(false);
    }

    service.stdin.write('release\n');
    const events = ndjsonLines(await held);
    expect(events.at(-1).payload).toMatchObject({ ok: true, result: 'released' });

    service.stdin.write('stats\n');
    const stats = JSON.parse(await nextLine('STATS'));
    expect(stats.sandbox).toEqual(
      expect.arrayContaining(['environment: empty', 'descriptors: only its stdin/stdout/stderr pipes', 'capabilities: none', 'no_new_privs']),
    );
    expect(stats.sandbox.some((layer) => layer.startsWith('seccomp: allow-list'))).toBe(true);
    // Logged once, on the service's stderr.
    const { sandboxLog } = splitSandboxLog(stderr);
    expect(sandboxLog).toBe(`enclave-broker-rs: engine sandbox: ${stats.sandbox.join('; ')}\n`);
  });
});
