// A real redis-server for the suites that share state through Redis (and for bench:http):
// a free port on 127.0.0.1, its own temporary directory (with `persist`, the default, an
// append-only file synced on every write, so a stop and a start keep the data as a restarted
// production Redis would), stopped and removed by `cleanup()`. Debian's `redis-server`
// package provides it; `.ci/run` installs it when missing.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A port nothing listens on right now (the kernel's pick, released at once).
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function redisServerPath() {
  const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (found.error !== undefined || found.status !== 0) {
    throw new Error('redis-server is not installed: `apt-get install -y redis-server` (.ci/run installs it)');
  }
  return 'redis-server';
}

// Whether something answers PING on `port`.
function pings(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let answer = '';
    socket.setTimeout(1000);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      answer += data;
      if (answer.includes('\r\n')) {
        socket.destroy();
        resolve(answer.startsWith('+PONG'));
      }
    });
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(false));
  });
}

async function waitUntil(check, label, timeoutMs = 15000) {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`Timed out waiting for ${label}`);
    await sleep(20);
  }
}

// A certificate authority and a certificate for 127.0.0.1 signed by it, made with the
// `openssl` command in `dir`: {ca, cert, key} file paths.
function certificates(dir) {
  const run = (...args) => {
    const done = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (done.error !== undefined || done.status !== 0) throw new Error(`openssl ${args[0]} failed: ${done.stderr ?? done.error}`);
  };
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=enclave test CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(path.join(dir, 'san.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.cnf');
  return { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };
}

// `tls`: also serve TLS on `tlsPort`, with a certificate of a fresh CA (`tls.ca`, its file).
export async function startRedis({ persist = true, tls = false } = {}) {
  const binary = redisServerPath();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-redis-'));
  const port = await freePort();
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--protected-mode', 'no',
    '--logfile', path.join(dir, 'redis.log'),
    ...(persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
  ];
  let tlsPort;
  let files;
  if (tls) {
    files = certificates(dir);
    tlsPort = await freePort();
    args.push('--tls-port', String(tlsPort), '--tls-cert-file', files.cert, '--tls-key-file', files.key);
    args.push('--tls-ca-cert-file', files.ca, '--tls-auth-clients', 'no');
  }
  let child;
  let exited;
  const start = async () => {
    child = spawn(binary, args, { stdio: 'ignore' });
    exited = new Promise((resolve) => child.once('exit', resolve));
    await waitUntil(() => pings(port), `redis-server on port ${port}`);
  };
  const stop = async () => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
    await waitUntil(async () => !(await pings(port)), `redis-server on port ${port} to stop`);
  };
  await start();
  const url = `redis://127.0.0.1:${port}`;
  // A client of the test's own, for looking at what the brokers stored.
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true });
  return {
    url,
    port,
    dir,
    client,
    tlsPort,
    tls: files,
    start,
    stop,
    async cleanup() {
      client.disconnect();
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
