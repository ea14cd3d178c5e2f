// Shared fixtures for the security corpus: a broker with attack-surface tools, a checker
// that host handlers only ever receive plain data, and a child-process runner for
// attacks that might take the whole host process down.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { types } from 'node:util';
import { createBroker } from '../../index.mjs';
import { splitSandboxLog } from '../helpers/index.mjs';

export const MiB = 1024 * 1024;
export const MEMORY_LIMIT = 32 * MiB;
// Scripts that should finish get a timeout no loaded machine reaches (it also counts the
// wait for an engine process); the ones that must time out set their own.
export const TIMEOUT_MS = 10000;

export const CODEGEN = ['EvalError', 'Code generation from strings disallowed for this context'];
// The heap's report, the off-heap budget's (a refused ArrayBuffer, or ICU memory held by
// Intl objects), or the engine process's: killed past its memory ceiling (2 x limit +
// 256 MiB), or aborted by V8.
export const memoryMessage = (limitMb) =>
  new RegExp(
    `^Memory limit exceeded: (the script's heap reached the ${limitMb}\\.00MB limit \\(\\d+\\.\\d\\dMB in use\\)` +
      `|an ArrayBuffer of \\d+\\.\\d\\dMB would exceed the ${limitMb}\\.00MB limit \\(\\d+\\.\\d\\dMB of ArrayBuffers in use\\)` +
      `|Intl objects hold \\d+\\.\\d\\dMB of ICU memory, which with \\d+\\.\\d\\dMB of ArrayBuffers exceeds the ${limitMb}\\.00MB limit` +
      `|the engine process grew past its ${limitMb * 2 + 256}\\.00MB ceiling` +
      `|V8 aborted the engine process \\(an allocation was too large\\))$`,
  );
export const MEMORY_MESSAGE = memoryMessage(32);

// Sandbox-side helpers prepended to scripts. `sameRealm(v)`: every prototype chain from
// `v` ends at this context's Object.prototype (or `v` has none), so `v` cannot be a host
// object. `attempt(fn)`: what calling `fn` does, as data.
export const PRE = `
const rootOf = (v) => { let p = v; for (let i = 0; i < 1000; i++) { const q = Object.getPrototypeOf(p); if (q === null) return p; p = q; } return p; };
const sameRealm = (v) => v === null || (typeof v !== 'object' && typeof v !== 'function') || rootOf(v) === Object.prototype || rootOf(v) === v;
const attempt = (fn) => { try { const v = fn(); return ['returned', typeof v]; } catch (e) { return [e.name, e.message]; } };
`;

// The outcome of an execution without the timing stats.
export function outcome(r) {
  return r.success ? { success: true, value: r.value } : { success: false, error: r.error };
}

export const ok = (value) => ({ success: true, value });
export const fail = (code, name, message) => ({ success: false, error: { message, name, code } });

// Everything that makes a value not plain JSON data, as a list of findings. Iterative,
// so 10,000-level args do not overflow the host's stack in the checker itself.
export function plainDataViolations(root, rootPath = 'args') {
  const out = [];
  const stack = [[root, rootPath]];
  while (stack.length > 0) {
    const [value, path] = stack.pop();
    if (value === null) continue;
    const type = typeof value;
    if (type === 'function' || type === 'symbol' || type === 'bigint' || type === 'undefined') {
      out.push(`${path}: ${type}`);
      continue;
    }
    if (type !== 'object') continue;
    if (types.isProxy(value)) out.push(`${path}: proxy`);
    const proto = Object.getPrototypeOf(value);
    const expected = Array.isArray(value) ? Array.prototype : Object.prototype;
    if (proto !== expected) out.push(`${path}: unexpected prototype`);
    for (const key of Reflect.ownKeys(value)) {
      if (typeof key === 'symbol') {
        out.push(`${path}: symbol key`);
        continue;
      }
      const d = Object.getOwnPropertyDescriptor(value, key);
      if (d.get !== undefined || d.set !== undefined) out.push(`${path}.${key}: accessor`);
      else if (!(Array.isArray(value) && key === 'length')) stack.push([d.value, `${path}.${key}`]);
    }
  }
  return out;
}

// A broker with the tools the corpus attacks through. `state.violations` collects every
// way a handler ever received something other than plain data; `state.calls` the args.
export function makeBroker({ limits = {}, enclave = {} } = {}) {
  const state = { violations: [], calls: [], signals: [] };
  const broker = createBroker({
    limits: { toolTimeoutMs: TIMEOUT_MS, ...limits },
    enclave: { memoryLimit: MEMORY_LIMIT, ...enclave },
  });
  const check = (name, args, ctx) => {
    state.calls.push({ name, args });
    state.violations.push(...plainDataViolations(args, `${name}.args`));
    if (ctx.signal !== undefined) state.signals.push(ctx.signal);
  };
  const tool = (name, handler) =>
    broker.tool(name, {
      handler: async (args, ctx) => {
        check(name, args, ctx);
        return handler(args, ctx);
      },
    });
  tool('echo', (args) => args);
  tool('ok', () => 'ok');
  tool('fail', () => {
    const error = new Error('boom');
    error.code = 'E_BOOM';
    throw error;
  });
  tool('failString', () => {
    throw 'plain failure';
  });
  tool('number', () => 42);
  tool('string', () => 'hello');
  tool('nothing', () => undefined);
  tool('array', () => [1, 'two', { three: 3 }]);
  tool('rich', () => ({
    date: new Date(0),
    map: new Map([['k', 1]]),
    set: new Set([1, 2]),
    big: 10n,
    buf: Buffer.from('hi'),
    re: /x+/g,
    nan: NaN,
    inf: Infinity,
    err: new TypeError('host type error'),
    nested: { deeper: [{ x: 1 }] },
    undef: undefined,
  }));
  tool('instance', () => {
    class HostThing {
      constructor() {
        this.visible = 1;
      }
      method() {
        return process;
      }
    }
    return new HostThing();
  });
  tool('hostFunction', () => ({ run: () => process }));
  tool('hostSymbol', () => Symbol('host'));
  tool('hostSymbolKey', () => ({ [Symbol('k')]: process, plain: 1 }));
  tool('hostGetter', () => ({
    get secret() {
      return 'computed on host';
    },
  }));
  tool('hostThrowingGetter', () => ({
    get boom() {
      throw new Error('host getter failed');
    },
  }));
  tool('hostProxy', () => new Proxy({ a: 1 }, { get: (t, k) => (k === 'a' ? 'proxied' : Reflect.get(t, k)) }));
  tool('ctx', (_args, ctx) => ctx);
  tool('protoJson', () => JSON.parse('{"__proto__": {"polluted": "yes"}, "a": 1}'));
  tool('constructorJson', () => ({ constructor: { prototype: { polluted: 'yes' } }, prototype: { polluted: 'yes' }, b: 2 }));
  tool('circular', () => {
    const o = { name: 'loop' };
    o.self = o;
    return o;
  });
  tool('deep', (args) => {
    let o = { leaf: true };
    for (let i = 0; i < args.levels; i++) o = { o };
    return o;
  });
  tool('big', (args) => 'x'.repeat(args.bytes));
  tool('never', () => new Promise(() => {}));
  tool('keys', (args) => ({
    keys: Object.keys(args),
    proto: Object.getPrototypeOf(args) === Object.prototype,
    ownProto: Object.prototype.hasOwnProperty.call(args, '__proto__'),
  }));
  return { broker, state };
}

const names = (o) => Reflect.ownKeys(o).map(String).toSorted();

// Standard-library names in the host that must stay pristine.
export function hostPrototypeSnapshot() {
  return {
    object: names(Object.prototype),
    array: names(Array.prototype),
    function: names(Function.prototype),
    promise: names(Promise.prototype),
    error: names(Error.prototype),
    string: names(String.prototype),
  };
}

// Properties a polluted host prototype would show on fresh host objects.
export function hostLooksClean() {
  const probe = {};
  return {
    polluted: probe.polluted,
    thenable: typeof probe.then,
    arrayPolluted: [].polluted,
    fnPolluted: (() => {}).polluted,
  };
}

export const CLEAN_HOST = { polluted: undefined, thenable: 'undefined', arrayPolluted: undefined, fnPolluted: undefined };

const RUNNER = fileURLToPath(new URL('./child-runner.mjs', import.meta.url));

// Runs `code` in a fresh Node process with its own broker (config as given), then a
// trivial script to prove the broker still works. Resolves with the exit status, the
// outcome, the follow-up value, the peak RSS and the process's raw output (stderr without
// the sandbox line, which is in `sandboxLog`).
export function runInChild(code, config = {}, { timeoutMs = 25000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RUNNER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      let report = null;
      const line = stdout.split('\n').find((l) => l.startsWith('REPORT '));
      if (line !== undefined) report = JSON.parse(line.slice('REPORT '.length));
      resolve({ status, signal, report, stdout, ...splitSandboxLog(stderr) });
    });
    child.stdin.end(JSON.stringify({ code, config }));
  });
}

// The engine processes started by `parent` (their parent pid, as /proc/<pid>/stat gives it).
export function enginesOf(parent) {
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.includes('(enclave-engine)') && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
      } catch {
        return false;
      }
    });
}
