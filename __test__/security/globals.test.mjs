// The global surface: exactly the allowed names, nothing host-like (Deno, ops, process,
// require, timers, WebAssembly...), custom globals as frozen data, and no state shared
// between executions, sequential or concurrent.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLEAN_HOST, CODEGEN, PRE, fail, hostLooksClean, makeBroker, ok, outcome } from './helpers.mjs';

const { broker, state } = makeBroker({ enclave: { globals: { cfg: { a: 1, list: [1, 2], nested: { b: 'c' } } } } });

afterEach(() => {
  expect(state.violations).toStrictEqual([]);
  expect(hostLooksClean()).toStrictEqual(CLEAN_HOST);
});

afterAll(async () => {
  await broker.dispose();
});

async function run(code, options = {}) {
  return outcome(await broker.execute(PRE + code, options));
}

// Standard JavaScript as V8 ships it, minus WebAssembly, SharedArrayBuffer, Atomics and
// FinalizationRegistry, plus callTool, parallel, console and the custom global `cfg`.
const ALLOWED_GLOBALS = [
  'AggregateError', 'Array', 'ArrayBuffer', 'AsyncDisposableStack', 'BigInt', 'BigInt64Array', 'BigUint64Array',
  'Boolean', 'DataView', 'Date', 'DisposableStack', 'Error', 'EvalError', 'Float16Array', 'Float32Array',
  'Float64Array', 'Function', 'Infinity', 'Int16Array', 'Int32Array', 'Int8Array', 'Intl', 'Iterator', 'JSON',
  'Map', 'Math', 'NaN', 'Number', 'Object', 'Promise', 'Proxy', 'RangeError', 'ReferenceError', 'Reflect',
  'RegExp', 'Set', 'String', 'SuppressedError', 'Symbol', 'SyntaxError', 'TypeError', 'URIError', 'Uint16Array',
  'Uint32Array', 'Uint8Array', 'Uint8ClampedArray', 'WeakMap', 'WeakRef', 'WeakSet', 'callTool', 'cfg', 'console',
  'decodeURI', 'decodeURIComponent', 'encodeURI', 'encodeURIComponent', 'escape', 'eval', 'globalThis', 'isFinite',
  'isNaN', 'parallel', 'parseFloat', 'parseInt', 'queueMicrotask', 'undefined', 'unescape',
];

const HOST_NAMES = [
  'Deno', '__bootstrap', 'process', 'require', 'module', 'exports', '__dirname', '__filename', 'Buffer', 'global',
  'setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'structuredClone', 'fetch',
  'WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry', 'gc', 'performance', 'navigator',
  'ShadowRealm', 'Temporal', 'importScripts', 'postMessage', 'self', 'window', 'print', 'quit', 'load', 'read',
  'readbuffer', 'os', 'd8', 'version', 'Realm', 'TextEncoder', 'TextDecoder', 'URL', 'AbortController', 'Worker',
  'MessageChannel', 'BroadcastChannel', 'crypto', 'Response', 'Request', 'Headers', 'EventTarget', 'ops',
];

describe('the global object', () => {
  it('has exactly the allowed own property names', async () => {
    expect(await run('return Object.getOwnPropertyNames(globalThis).sort();')).toStrictEqual(ok(ALLOWED_GLOBALS));
  });

  it('has no own symbol properties', async () => {
    expect(await run('return Object.getOwnPropertySymbols(globalThis).map(String);')).toStrictEqual(ok([]));
  });

  it('has a plain prototype chain ending at the sandbox Object.prototype', async () => {
    const r = await run(`
      const p = Object.getPrototypeOf(globalThis);
      return [Object.getOwnPropertyNames(p), Object.getOwnPropertySymbols(p).length, Object.getPrototypeOf(p) === Object.prototype, sameRealm(globalThis)];`);
    expect(r).toStrictEqual(ok([['constructor'], 0, true, true]));
  });

  for (const name of HOST_NAMES) {
    it(`has no ${name}`, async () => {
      const r = await run(`return [typeof ${name}, '${name}' in globalThis, globalThis['${name}'] === undefined, attempt(() => ${name})];`);
      expect(r).toStrictEqual(ok(['undefined', false, true, ['ReferenceError', `${name} is not defined`]]));
    });
  }

  it('has no Deno internals behind registered symbols', async () => {
    const r = await run(`
      const keys = ['Deno.internal', 'Deno.core', 'Deno.customInspect', 'nodejs.util.inspect.custom', 'Deno.privateCustomInspect'];
      return keys.map((k) => [globalThis[Symbol.for(k)], Object.prototype[Symbol.for(k)], Function.prototype[Symbol.for(k)]]);`);
    expect(r).toStrictEqual(ok([[null, null, null], [null, null, null], [null, null, null], [null, null, null], [null, null, null]]));
  });

  it('this at top level, in sloppy functions and via indirect calls is the sandbox global', async () => {
    const r = await run(`
      const viaFn = (function () { return this; })();
      const viaCall = Function.prototype.call.call(function () { return this; }, undefined);
      return [this === globalThis, viaFn === globalThis, viaCall === globalThis, attempt(() => Function('return this')())];`);
    expect(r).toStrictEqual(ok([true, true, true, CODEGEN]));
  });

  it('callTool and parallel cannot be replaced or deleted', async () => {
    const r = await run(`
      const d1 = Object.getOwnPropertyDescriptor(globalThis, 'callTool');
      const d2 = Object.getOwnPropertyDescriptor(globalThis, 'parallel');
      callTool = () => 'replaced';
      const del = delete globalThis.callTool;
      return [d1.writable, d1.configurable, d2.writable, d2.configurable, del, attempt(() => Object.defineProperty(globalThis, 'callTool', { value: 1 })), await callTool('ok', {})];`);
    expect(r).toStrictEqual(ok([false, false, false, false, false, ['TypeError', 'Cannot redefine property: callTool'], 'ok']));
  });

  it('console is the script\u2019s to replace, and replacing it stays in the sandbox', async () => {
    const events = [];
    const r = await broker.execute("console = { log() { throw new Error('nope'); } }; try { console.log('x'); } catch (e) { return e.message; }", {
      onEvent: (e) => events.push(e.type),
    });
    expect(outcome(r)).toStrictEqual(ok('nope'));
    expect(events).toStrictEqual(['session_init', 'final']);
  });

  it('console methods are frozen sandbox functions', async () => {
    const r = await run(`
      return [Object.isFrozen(console), Object.keys(console).sort(), Object.values(console).every((f) => typeof f === 'function' && sameRealm(f)), attempt(() => console.log.constructor('return 1'))];`);
    expect(r).toStrictEqual(ok([true, ['debug', 'dir', 'error', 'info', 'log', 'trace', 'warn'], true, CODEGEN]));
  });

  it('WebAssembly cannot be reached through any prototype', async () => {
    const r = await run(`
      const names = new Set();
      for (const root of [Object, Function, Array, Promise, Reflect, Intl, Iterator]) {
        for (let p = root; p !== null; p = Object.getPrototypeOf(p)) for (const n of Object.getOwnPropertyNames(p)) names.add(n);
      }
      return ['WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry'].filter((n) => names.has(n));`);
    expect(r).toStrictEqual(ok([]));
  });

  it('resizable ArrayBuffers are refused, and the real constructor stays unreachable', async () => {
    const r = await run(`
      const refused = (() => { try { new ArrayBuffer(8, { maxByteLength: 16 }); return 'made'; } catch (e) { return e.message; } })();
      const ctors = [new Uint8Array(1).buffer.constructor, Object.getPrototypeOf(new ArrayBuffer(1)).constructor,
        ArrayBuffer[Symbol.species], new ArrayBuffer(4).slice(1).constructor];
      return [refused, ctors.every((c) => c === ArrayBuffer), new ArrayBuffer(8, {}).byteLength];`);
    expect(r).toStrictEqual(ok(['Resizable ArrayBuffers are not available in the sandbox', true, 8]));
  });

  it('queueMicrotask and WeakRef are standard and confined', async () => {
    const r = await run(`
      let ran = false;
      queueMicrotask(() => { ran = true; });
      await null;
      const w = new WeakRef({});
      return [ran, typeof w.deref(), sameRealm(queueMicrotask)];`);
    expect(r).toStrictEqual(ok([true, 'object', true]));
  });

  it('function sources of the prelude are visible but reveal nothing reachable', async () => {
    const r = await run('return [callTool.toString().startsWith("function callTool(name, args)"), typeof callTool.prototype, callTool.length, parallel.length];');
    expect(r).toStrictEqual(ok([true, 'object', 2, 2]));
  });
});

describe('custom globals', () => {
  it('are deeply frozen copies with sandbox prototypes', async () => {
    const r = await run(`return [cfg, Object.isFrozen(cfg), Object.isFrozen(cfg.list), Object.isFrozen(cfg.nested), sameRealm(cfg), sameRealm(cfg.list)];`);
    expect(r).toStrictEqual(ok([{ a: 1, list: [1, 2], nested: { b: 'c' } }, true, true, true, true, true]));
  });

  it('cannot be redefined or deleted', async () => {
    const r = await run(`return [delete globalThis.cfg, attempt(() => Object.defineProperty(globalThis, 'cfg', { value: 2 })), attempt(() => cfg.list.push(3))];`);
    expect(r).toStrictEqual(ok([false, ['TypeError', 'Cannot redefine property: cfg'], ['TypeError', 'Cannot add property 2, object is not extensible']]));
  });

  const rejected = {
    'a function': [{ g: { f: () => 1 } }, 'Custom global "g" contains a function. Globals are copied into the sandbox as plain data.'],
    'a symbol': [{ g: Symbol('s') }, 'Custom global "g" contains a symbol'],
    'a symbol key': [{ g: { [Symbol('k')]: 1 } }, 'Custom global "g" has a symbol key'],
    'a getter': [{ g: { get x() { return 1; } } }, 'Custom global "g" has a getter or setter'],
    'a JSON __proto__ key': [{ g: JSON.parse('{"__proto__": {"polluted": 1}}') }, 'Custom global "g" has a forbidden key "__proto__"'],
    'a constructor key': [{ g: { constructor: 1 } }, 'Custom global "g" has a forbidden key "constructor"'],
    'a prototype key': [{ g: { inner: { prototype: 1 } } }, 'Custom global "g" has a forbidden key "prototype"'],
    'a top-level constructor name': [JSON.parse('{"constructor": 1}'), 'Custom global "constructor" is not allowed'],
    'more than 10 levels': [
      { g: { a: { a: { a: { a: { a: { a: { a: { a: { a: { a: { a: 1 } } } } } } } } } } } },
      'Custom global "g" exceeds maximum depth (10)',
    ],
  };
  for (const [label, [globals, message]] of Object.entries(rejected)) {
    it(`with ${label} are refused when the broker is created`, () => {
      expect(() => makeBroker({ enclave: { globals } })).toThrow(new Error(message));
    });
  }

  it('a Proxy global is copied through its traps on the host at configuration time', async () => {
    const { broker: b } = makeBroker({ enclave: { globals: { g: new Proxy({ real: 1 }, {}) } } });
    expect(outcome(await b.execute('return [g, Object.isFrozen(g)];'))).toStrictEqual(ok([{ real: 1 }, true]));
    await b.dispose();
  });

  it('naming a global after callTool fails the execution instead of replacing it', async () => {
    const { broker: b } = makeBroker({ enclave: { globals: { callTool: 1 } } });
    expect(outcome(await b.execute('return typeof callTool;'))).toStrictEqual(
      fail('VALIDATION_ERROR', 'Error', 'Custom globals must be plain JSON data'),
    );
    await b.dispose();
  });
});

describe('no state crosses executions', () => {
  it('globals, prototypes, registered-symbol slots and hooks set in one execution are absent in the next', async () => {
    const first = await run(`
      globalThis.leak = 'secret';
      var leakedVar = 'var';
      Object.prototype.leak = 'proto';
      Object.prototype[Symbol.for('enclave.leak')] = 'symbol slot';
      Error.prepareStackTrace = () => 'hooked';
      Error.stackTraceLimit = 0;
      JSON.parse = () => 'patched';
      Array.prototype.map = () => 'patched';
      Math.random = () => 4;
      RegExp.prototype.exec = () => null;
      /(se)(cret)/.test('secret');
      return 'set';`);
    expect(first).toStrictEqual(ok('set'));
    const second = await run(`
      return [typeof leak, typeof leakedVar, ({}).leak, ({})[Symbol.for('enclave.leak')], typeof Error.prepareStackTrace, Error.stackTraceLimit, JSON.parse('1'), [1].map((x) => x + 1), Math.random() < 1, /a/.test('a'), RegExp.$1];`);
    expect(second).toStrictEqual(ok(['undefined', 'undefined', null, null, 'undefined', 10, 1, [2], true, true, '']));
  });

  it('many sequential executions all start from a pristine realm', async () => {
    const seen = [];
    for (let i = 0; i < 20; i++) {
      const r = await run(`const before = typeof globalThis.counter; globalThis.counter = ${i}; Object.prototype.mark = ${i}; return before;`);
      seen.push(r.value);
    }
    expect(seen).toStrictEqual(Array.from({ length: 20 }, () => 'undefined'));
  });

  it('a pending tool call abandoned by a finished execution cannot touch the next one', async () => {
    const signals = state.signals.length;
    const first = await run("callTool('never', {}).then(() => { globalThis.late = 1; }, () => { globalThis.late = 2; }); return 'done';");
    expect(first).toStrictEqual(ok('done'));
    expect(state.signals.length).toBe(signals + 1);
    expect(state.signals.at(-1).aborted).toBe(true);
    const second = await run('await null; await null; return typeof globalThis.late;');
    expect(second).toStrictEqual(ok('undefined'));
  });

  it('concurrent executions do not see each other\u2019s globals', async () => {
    const a = broker.execute(PRE + "globalThis.shared = 'from A'; Object.prototype.fromA = 1; await callTool('ok', {}); return [typeof globalThis.fromB, ({}).fromB];");
    const b = broker.execute(PRE + "globalThis.fromB = 'from B'; Object.prototype.fromB = 1; await callTool('ok', {}); return [typeof globalThis.shared, ({}).fromA];");
    const [ra, rb] = await Promise.all([a, b]);
    expect([outcome(ra), outcome(rb)]).toStrictEqual([ok(['undefined', null]), ok(['undefined', null])]);
  });

  it('an execution after a TIMEOUT starts clean', async () => {
    const t = await run("globalThis.beforeTimeout = 1; Object.prototype.beforeTimeout = 1; for (;;) {}", { session: { limits: { toolTimeoutMs: 300 } } });
    expect(t).toStrictEqual(fail('TIMEOUT', 'Error', 'Script execution timed out after 300ms'));
    expect(await run('return [typeof beforeTimeout, ({}).beforeTimeout];')).toStrictEqual(ok(['undefined', null]));
  });
});
