// A benchmark's helper process, driven over IPC one request at a time: `request(msg)`
// sends `msg` and resolves with the process's next message; `ready` is its first message.
// A process that ends while a request is open ends the benchmark.
'use strict';

const { fork } = require('node:child_process');

function startWorker(file, args, { label, execArgv = [], env } = {}) {
  const child = fork(file, args, { execArgv, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let pending;
  child.on('message', (msg) => {
    const resolve = pending;
    pending = undefined;
    resolve?.(msg);
  });
  // 'close', not 'exit': it comes after the IPC channel has delivered every message.
  child.on('close', (code) => {
    if (pending !== undefined) {
      console.error(`\n${label ?? file} exited (${code}) while busy`);
      process.exit(1);
    }
  });
  const request = (msg) =>
    new Promise((resolve) => {
      pending = resolve;
      if (msg !== undefined) child.send(msg);
    });
  return { ready: request(), request };
}

module.exports = { startWorker };
