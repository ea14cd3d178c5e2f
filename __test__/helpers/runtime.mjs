// Runtime workers for the extracted-mode suites: the `enclave-runtime` CLI as a separate
// process on 127.0.0.1 (a free port), stopped after the suite.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll } from 'vitest';
import { ROOT } from './index.mjs';

export const CLI = path.join(ROOT, 'bin', 'enclave-runtime.js');

// Starts `enclave-runtime --port 0 --host 127.0.0.1 ...args`; resolves once it listens.
export function startWorkerProcess({ args = [], env = {} } = {}) {
  const child = spawn(process.execPath, [CLI, '--port', '0', '--host', '127.0.0.1', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const listening = new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /listening on ws:\/\/127\.0\.0\.1:(\d+)(\/\S*)/.exec(output);
      if (match) resolve({ port: Number(match[1]), path: match[2] });
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    exited.then(({ code, signal }) => reject(new Error(`enclave-runtime exited (${code ?? signal}) before listening:\n${output}`)));
  });
  return listening.then(({ port, path: wsPath }) => ({
    child,
    port,
    url: `ws://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}${wsPath}`,
    exited,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      child.kill('SIGKILL');
      return exited;
    },
  }));
}

// `start(options)` for a suite: every worker it starts is stopped after the suite.
export function workersStoppedAfterAll() {
  const workers = [];
  afterAll(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.stop()));
  });
  return async (options) => {
    const worker = await startWorkerProcess(options);
    workers.push(worker);
    return worker;
  };
}
