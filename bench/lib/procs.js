// Resident memory of a process and of its child processes (the engine processes), read
// from /proc. Children are found through /proc/<pid>/task/*/children when the kernel
// provides it, else by scanning /proc/*/stat for the parent pid.
'use strict';

const fs = require('node:fs');

function readRssBytes(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0; // The process exited meanwhile.
  }
}

// Proportional set size: shared pages (the engine binary's text, shared libraries) split
// among the processes that map them, so a sum over processes is not inflated.
function readPssBytes(pid) {
  try {
    const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const match = /^Pss:\s+(\d+)\s+kB/m.exec(rollup);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function childrenFromTasks(pid) {
  const tasks = fs.readdirSync(`/proc/${pid}/task`);
  const out = new Set();
  for (const tid of tasks) {
    const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (text !== '') for (const child of text.split(/\s+/)) out.add(Number(child));
  }
  return [...out];
}

function childrenFromScan(pid) {
  const out = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may contain spaces; fields follow the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

function childPids(pid = process.pid) {
  try {
    return childrenFromTasks(pid);
  } catch {
    return childrenFromScan(pid);
  }
}

function commandName(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

// The engine processes under `pid` (direct children running `enclave-engine`; the name
// is truncated to 15 characters by the kernel) and their total RSS and PSS.
function engineMemory(pid = process.pid) {
  const pids = childPids(pid).filter((child) => commandName(child).startsWith('enclave-engine'));
  const sum = (read) => pids.map(read).reduce((a, b) => a + b, 0);
  return { count: pids.length, rss: sum(readRssBytes), pss: sum(readPssBytes), pids };
}

module.exports = { readRssBytes, readPssBytes, childPids, engineMemory };
