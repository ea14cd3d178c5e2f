// The copy-only boundary: what leaves the sandbox (tool args, return values, thrown
// values) and what enters it (tool results, tool errors). Getters, Proxies, thenables,
// toJSON/valueOf/toString/Symbol.toPrimitive gadgets may only run inside the sandbox; the
// host handler must receive plain JSON data; error codes cannot be forged.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLEAN_HOST, PRE, fail, hostLooksClean, makeBroker, ok, outcome } from './helpers.mjs';

const { broker, state } = makeBroker();

afterEach(() => {
  expect(state.violations).toStrictEqual([]);
  expect(hostLooksClean()).toStrictEqual(CLEAN_HOST);
});

afterAll(async () => {
  await broker.dispose();
});

async function run(code, limits) {
  const options = limits === undefined ? {} : { session: { limits } };
  return outcome(await broker.execute(PRE + code, options));
}

const lastArgs = () => state.calls.at(-1).args;

const NOT_SERIALIZABLE = ['TypeError', 'Tool arguments must be JSON-serializable'];
const DEPTH_21 = 'exceeds maximum depth (20). This limit prevents deeply nested objects that could cause stack overflow.';

describe('tool args reach the host handler as plain data', () => {
  it('getters are evaluated in the sandbox; the handler gets data properties', async () => {
    const r = await run(`
      let reads = 0;
      const args = { get a() { reads++; return [sameRealm(this), 'from getter']; }, b: { get c() { reads++; return 3; } } };
      await callTool('ok', args);
      return reads;`);
    expect(r).toStrictEqual(ok(2));
    expect(lastArgs()).toStrictEqual({ a: [true, 'from getter'], b: { c: 3 } });
  });

  it('a Proxy as args: traps run in the sandbox; the handler gets a plain copy', async () => {
    const r = await run(`
      const trapped = [];
      const args = new Proxy({ x: 1 }, {
        ownKeys(t) { trapped.push('ownKeys'); return ['x', 'y']; },
        getOwnPropertyDescriptor(t, k) { trapped.push('gopd:' + k); return { value: 0, enumerable: true, configurable: true }; },
        get(t, k) { trapped.push('get:' + String(k)); return k === 'toJSON' ? undefined : 'trapped ' + String(k); },
      });
      await callTool('ok', args);
      return trapped;`);
    expect(r).toStrictEqual(ok(['get:toJSON', 'ownKeys', 'gopd:x', 'gopd:y', 'get:x', 'get:y']));
    expect(lastArgs()).toStrictEqual({ x: 'trapped x', y: 'trapped y' });
  });

  it('nested Proxies and class instances arrive as plain objects', async () => {
    await run(`
      class Secret { constructor() { this.v = 1; } method() { return 2; } }
      await callTool('ok', { p: new Proxy([1, 2], {}), inst: new Secret(), nullProto: Object.assign(Object.create(null), { n: 1 }) });`);
    expect(lastArgs()).toStrictEqual({ p: [1, 2], inst: { v: 1 }, nullProto: { n: 1 } });
  });

  it('functions, symbols, undefined and thenables in args are dropped by serialization', async () => {
    await run(`
      await callTool('ok', { f() {}, s: Symbol('s'), u: undefined, then() { throw new Error('called'); }, [Symbol('k')]: 1, keep: [undefined, () => 1, Symbol('x')] });`);
    expect(lastArgs()).toStrictEqual({ keep: [null, null, null] });
  });

  it('toString/valueOf/Symbol.toPrimitive gadgets are never coerced by the host', async () => {
    const r = await run(`
      const calls = [];
      const gadget = { toString() { calls.push('toString'); return 'T'; }, valueOf() { calls.push('valueOf'); return 1; }, [Symbol.toPrimitive]() { calls.push('toPrimitive'); return 'P'; } };
      await callTool('ok', { gadget, arr: [gadget] });
      return calls;`);
    expect(r).toStrictEqual(ok([]));
    expect(lastArgs()).toStrictEqual({ gadget: {}, arr: [{}] });
  });

  it('toJSON runs in the sandbox with a sandbox receiver', async () => {
    await run(`
      await callTool('ok', { a: { toJSON(key) { return ['toJSON', key, sameRealm(this)]; } } });`);
    expect(lastArgs()).toStrictEqual({ a: ['toJSON', 'a', true] });
  });

  it('Date, Map, Set, RegExp, Error, typed arrays and special numbers follow JSON.stringify', async () => {
    await run(`
      await callTool('ok', { d: new Date(0), m: new Map([[1, 2]]), s: new Set([1]), r: /x/g, e: new Error('m'), t: new Uint8Array([1, 2]), n: NaN, i: -Infinity, z: -0 });`);
    expect(lastArgs()).toStrictEqual({ d: '1970-01-01T00:00:00.000Z', m: {}, s: {}, r: {}, e: {}, t: { 0: 1, 1: 2 }, n: null, i: null, z: 0 });
  });

  it('a __proto__ own key arrives as an own data property, prototype untouched', async () => {
    const r = await run(`return await callTool('keys', JSON.parse('{"__proto__": {"polluted": "yes"}, "a": 1}'));`);
    expect(r).toStrictEqual(ok({ keys: ['__proto__', 'a'], proto: true, ownProto: true }));
  });

  it('a computed ["__proto__"] key arrives as an own data property', async () => {
    const r = await run(`return await callTool('keys', { ['__proto__']: { polluted: 'yes' } });`);
    expect(r).toStrictEqual(ok({ keys: ['__proto__'], proto: true, ownProto: true }));
  });

  it('10,000 levels of nested args reach the handler as plain data', async () => {
    const r = await run(`
      let o = { leaf: 1 };
      for (let i = 0; i < 10000; i++) o = { o };
      return await callTool('ok', o);`);
    expect(r).toStrictEqual(ok('ok'));
    let depth = 0;
    for (let o = lastArgs(); o.o !== undefined; o = o.o) depth++;
    expect(depth).toBe(10000);
  });

  it('args that are arrays, null or primitives are refused in the sandbox', async () => {
    const r = await run(`
      const out = [];
      for (const a of [[1], null, 1, 'x', undefined, true]) out.push(await callTool('ok', a).then(() => 'called', (e) => [e.name, e.message, sameRealm(e)]));
      return out;`);
    const refused = ['TypeError', 'Tool arguments must be an object', true];
    expect(r).toStrictEqual(ok([refused, refused, refused, refused, refused, refused]));
  });

  it('a non-string tool name is refused without coercion', async () => {
    const r = await run(`
      let coerced = false;
      const name = { toString() { coerced = true; return 'ok'; } };
      const e = await callTool(name, {}).catch((e) => e);
      return [e.name, e.message, coerced];`);
    expect(r).toStrictEqual(ok(['TypeError', 'Tool name must be a string', false]));
  });

  const unserializable = {
    'circular args': 'const a = {}; a.a = a; await callTool("ok", a);',
    'BigInt args': 'await callTool("ok", { n: 1n });',
    'a throwing getter': 'await callTool("ok", { get x() { throw new Error("getter"); } });',
    'a throwing toJSON': 'await callTool("ok", { toJSON() { throw new Error("toJSON"); } });',
    'a Proxy with a throwing ownKeys trap': 'await callTool("ok", new Proxy({}, { ownKeys() { throw new Error("trap"); } }));',
  };
  for (const [label, code] of Object.entries(unserializable)) {
    it(`${label} is refused as not JSON-serializable`, async () => {
      const calls = state.calls.length;
      const r = await run(`try { ${code} return 'called'; } catch (e) { return [e.name, e.message]; }`);
      expect(r).toStrictEqual(ok(NOT_SERIALIZABLE));
      expect(state.calls.length).toBe(calls);
    });
  }

  it('a revoked Proxy as args fails the array check inside the sandbox', async () => {
    const calls = state.calls.length;
    const r = await run(`const { proxy, revoke } = Proxy.revocable({}, {}); revoke(); try { await callTool('ok', proxy); } catch (e) { return [e.name, e.message, sameRealm(e)]; }`);
    expect(r).toStrictEqual(ok(['TypeError', "Cannot perform 'IsArray' on a proxy that has been revoked", true]));
    expect(state.calls.length).toBe(calls);
  });

  it('a getter in args that loops forever ends as TIMEOUT without calling the host', async () => {
    const calls = state.calls.length;
    const r = await run('await callTool("ok", { get x() { for (;;) {} } });', { toolTimeoutMs: 300 });
    expect(r).toStrictEqual(fail('TIMEOUT', 'Error', 'Script execution timed out after 300ms'));
    expect(state.calls.length).toBe(calls);
  });

  it('args larger than maxToolResultBytes fail with TOOL_ARGS_TOO_LARGE before the host sees them', async () => {
    const calls = state.calls.length;
    const r = await run(`
      try { await callTool('ok', { s: 'x'.repeat(5 * 1024 * 1024) }); } catch (e) { return [e.name, e.code, e.message]; }`);
    expect(r).toStrictEqual(ok(['Error', 'TOOL_ARGS_TOO_LARGE', 'Tool request exceeds maximum size (5242880 bytes)']));
    expect(state.calls.length).toBe(calls);
  });
});

describe('tool results enter the sandbox as fresh sandbox data', () => {
  it('objects and arrays have sandbox prototypes and are mutable copies', async () => {
    const r = await run(`
      const a = await callTool('echo', { x: [1, { y: 2 }] });
      const b = await callTool('array', {});
      a.x.push(3); b.push(4);
      return [sameRealm(a), sameRealm(a.x), sameRealm(b), Object.getPrototypeOf(a) === Object.prototype, Array.isArray(b), a, b];`);
    expect(r).toStrictEqual(ok([true, true, true, true, true, { x: [1, { y: 2 }, 3] }, [1, 'two', { three: 3 }, 4]]));
  });

  it('carry no symbol-keyed or well-known-symbol properties of their own', async () => {
    const r = await run(`
      const o = await callTool('rich', {});
      const a = await callTool('array', {});
      return [Object.getOwnPropertySymbols(o).length, Object.getOwnPropertySymbols(a).length, Object.prototype.toString.call(o), o[Symbol.toPrimitive], a[Symbol.iterator] === Array.prototype[Symbol.iterator], typeof o[Symbol.for('nodejs.util.inspect.custom')]];`);
    expect(r).toStrictEqual(ok([0, 0, '[object Object]', null, true, 'undefined']));
  });

  it('rich host values are converted to plain data before entering', async () => {
    const r = await run("return await callTool('rich', {});");
    expect(r).toStrictEqual(
      ok({
        date: '1970-01-01T00:00:00.000Z',
        map: { k: 1 },
        set: [1, 2],
        big: '10',
        buf: [104, 105],
        re: '/x+/g',
        nan: null,
        inf: null,
        err: { name: 'TypeError', message: 'host type error' },
        nested: { deeper: [{ x: 1 }] },
      }),
    );
  });

  it('a host class instance arrives without its prototype or methods', async () => {
    const r = await run(`const v = await callTool('instance', {}); return [v, typeof v.method, sameRealm(v)];`);
    expect(r).toStrictEqual(ok([{ visible: 1 }, 'undefined', true]));
  });

  it('a host function in a result is refused with TOOL_ERROR', async () => {
    const r = await run(`try { await callTool('hostFunction', {}); } catch (e) { return [e.code, e.message, sameRealm(e)]; }`);
    expect(r).toStrictEqual(
      ok([
        'TOOL_ERROR',
        'Tool handler returned a function. Functions cannot be returned to sandbox code as they could be used for code injection or host scope access.',
        true,
      ]),
    );
  });

  it('a host symbol result is refused with TOOL_ERROR', async () => {
    const r = await run(`try { await callTool('hostSymbol', {}); } catch (e) { return [e.code, e.message]; }`);
    expect(r).toStrictEqual(ok(['TOOL_ERROR', 'Tool handler returned a symbol. Symbols cannot be returned to sandbox code.']));
  });

  it('symbol-keyed host properties are not copied', async () => {
    const r = await run(`const v = await callTool('hostSymbolKey', {}); return [v, Object.getOwnPropertySymbols(v).length];`);
    expect(r).toStrictEqual(ok([{ plain: 1 }, 0]));
  });

  it('host getters are read on the host and arrive as data properties', async () => {
    const r = await run(`const v = await callTool('hostGetter', {}); const d = Object.getOwnPropertyDescriptor(v, 'secret'); return [v.secret, typeof d.get, d.writable];`);
    expect(r).toStrictEqual(ok(['computed on host', 'undefined', true]));
  });

  it('a throwing host getter becomes a TOOL_ERROR', async () => {
    const r = await run(`try { await callTool('hostThrowingGetter', {}); } catch (e) { return [e.code, e.message]; }`);
    expect(r).toStrictEqual(ok(['TOOL_ERROR', 'host getter failed']));
  });

  it('a host Proxy arrives as a plain copy of what its traps returned', async () => {
    const r = await run(`const v = await callTool('hostProxy', {}); return [v, sameRealm(v)];`);
    expect(r).toStrictEqual(ok([{ a: 'proxied' }, true]));
  });

  it('a circular host result is cut with [Circular]', async () => {
    expect(await run("return await callTool('circular', {});")).toStrictEqual(ok({ name: 'loop', self: '[Circular]' }));
  });

  it('an undefined host result is undefined in the sandbox', async () => {
    expect(await run("const v = await callTool('nothing', {}); return [typeof v, v === undefined];")).toStrictEqual(ok(['undefined', true]));
  });

  it('the ToolContext (signal, secrets) crosses only as plain data', async () => {
    const r = await run(`
      const c = await callTool('ctx', {});
      return [Object.keys(c), typeof c.sessionId, typeof c.callId, c.secrets, c.signal, sameRealm(c.signal)];`);
    expect(r).toStrictEqual(ok([['sessionId', 'callId', 'secrets', 'signal'], 'string', 'string', {}, {}, true]));
  });

  it('a host result deeper than 20 levels is refused with TOOL_ERROR', async () => {
    const r = await run(`try { await callTool('deep', { levels: 25 }); } catch (e) { return [e.code, e.message]; }`);
    expect(r).toStrictEqual(ok(['TOOL_ERROR', `Tool handler return value ${DEPTH_21}`]));
  });

  it('a 10,000-level host result is refused with TOOL_ERROR', async () => {
    const r = await run(`try { await callTool('deep', { levels: 10000 }); } catch (e) { return [e.code, e.message]; }`);
    expect(r).toStrictEqual(ok(['TOOL_ERROR', `Tool handler return value ${DEPTH_21}`]));
  });

  it('echoing 10,000-level args back is refused with TOOL_ERROR', async () => {
    const r = await run(`
      let o = {}; for (let i = 0; i < 10000; i++) o = { o };
      try { await callTool('echo', o); } catch (e) { return [e.code, e.message]; }`);
    expect(r).toStrictEqual(ok(['TOOL_ERROR', `Tool handler return value ${DEPTH_21}`]));
  });

  it('a host result over maxToolResultBytes is refused with TOOL_RESULT_TOO_LARGE', async () => {
    const r = await run(`try { await callTool('big', { bytes: 6 * 1024 * 1024 }); } catch (e) { return [e.code, e.message]; }`);
    expect(r).toStrictEqual(ok(['TOOL_RESULT_TOO_LARGE', 'Tool response exceeds maximum size (5242880 bytes)']));
  });
});

describe('tool errors', () => {
  it('carry only message and code, as sandbox Errors', async () => {
    const r = await run(`
      try { await callTool('fail', {}); } catch (e) {
        return [Object.getOwnPropertyNames(e).sort(), e.name, e.message, e.code, sameRealm(e), e instanceof Error];
      }`);
    expect(r).toStrictEqual(ok([['code', 'message', 'stack'], 'Error', 'boom', 'E_BOOM', true, true]));
  });

  it('an uncaught tool error reports its code', async () => {
    expect(await run("await callTool('fail', {});")).toStrictEqual(fail('E_BOOM', 'Error', 'boom'));
  });

  it('an unknown tool error reports UNKNOWN_TOOL when uncaught', async () => {
    expect(await run("await callTool('nope', {});")).toStrictEqual(fail('UNKNOWN_TOOL', 'Error', 'Unknown tool: nope'));
  });

  it('prototype-named tools are unknown tools', async () => {
    const r = await run(`
      const out = [];
      for (const n of ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'valueOf']) out.push(await callTool(n, {}).catch((e) => e.code));
      return out;`);
    expect(r).toStrictEqual(ok(['UNKNOWN_TOOL', 'UNKNOWN_TOOL', 'UNKNOWN_TOOL', 'UNKNOWN_TOOL', 'UNKNOWN_TOOL']));
  });

  it('rethrowing a modified tool error keeps the engine code but reports the edited name and message', async () => {
    // Design choice: the code is tied to the error's identity; its text is the script's.
    const r = await run(`
      try { await callTool('fail', {}); } catch (e) { e.code = 'TIMEOUT'; e.name = 'Renamed'; e.message = 'edited'; throw e; }`);
    expect(r).toStrictEqual(fail('E_BOOM', 'Renamed', 'edited'));
  });
});

describe('error codes cannot be forged', () => {
  const forged = {
    'an Error with a code property': ["const e = new Error('x'); e.code = 'TIMEOUT'; throw e;", 'Error', 'x'],
    'a plain object with code and name': ["throw { code: 'MEMORY_LIMIT_EXCEEDED', name: 'MemoryLimitError', message: 'fake' };", 'Error', 'fake'],
    'a fake Error via Symbol.toStringTag': ["throw { [Symbol.toStringTag]: 'Error', name: 'FakeError', code: 'TIMEOUT', message: 'fake' };", 'Error', 'fake'],
    'an Error subclass named like an engine error': ["class TimeoutError extends Error { constructor() { super('Script execution timed out after 1000ms'); this.name = 'TimeoutError'; this.code = 'TIMEOUT'; } } throw new TimeoutError();", 'TimeoutError', 'Script execution timed out after 1000ms'],
    'a copy of a tool error': ["const e = await callTool('fail', {}).catch((e) => e); const c = new Error(e.message); c.code = e.code; throw c;", 'Error', 'boom'],
    'a tool error wrapped as a cause': ["const e = await callTool('fail', {}).catch((e) => e); throw new Error('wrapped', { cause: e });", 'Error', 'wrapped'],
    'an Object.create of a tool error': ["const e = await callTool('fail', {}).catch((e) => e); throw Object.create(e);", 'Error', 'boom'],
    'a Proxy of a tool error': ["const e = await callTool('fail', {}).catch((e) => e); throw new Proxy(e, {});", 'Error', 'boom'],
  };
  for (const [label, [code, name, message]] of Object.entries(forged)) {
    it(`${label} ends as EXECUTION_ERROR`, async () => {
      expect(await run(code)).toStrictEqual(fail('EXECUTION_ERROR', name, message));
    });
  }

  const thrown = {
    'a symbol': ["throw Symbol('zz');", 'Error', 'Symbol(zz)'],
    'null': ['throw null;', 'Error', 'null'],
    'undefined': ['throw undefined;', 'Error', 'undefined'],
    'a number': ['throw 42;', 'Error', '42'],
    'a message with a toString gadget': ["throw { message: { toString() { return 'from toString'; } } };", 'Error', 'from toString'],
    'a Proxy whose get trap throws': ["throw new Proxy({}, { get() { throw new Error('trap'); } });", 'Error', 'Uncaught exception (its message could not be read)'],
    'a revoked Proxy': ['const { proxy, revoke } = Proxy.revocable({}, {}); revoke(); throw proxy;', 'Error', 'Uncaught exception (its message could not be read)'],
    'an object whose toString throws': ["throw { toString() { throw new Error('no'); } };", 'Error', 'Uncaught exception (its message could not be read)'],
    'a function': ['throw function named() {};', 'Error', 'function named() {}'],
  };
  for (const [label, [code, name, message]] of Object.entries(thrown)) {
    it(`throwing ${label} is described inside the sandbox`, async () => {
      expect(await run(code)).toStrictEqual(fail('EXECUTION_ERROR', name, message));
    });
  }

  it('a message getter that loops forever ends as TIMEOUT', async () => {
    expect(await run('throw { get message() { for (;;) {} } };', { toolTimeoutMs: 300 })).toStrictEqual(
      fail('TIMEOUT', 'Error', 'Script execution timed out after 300ms'),
    );
  });
});

describe('return values leave as plain data copied inside the sandbox', () => {
  it('special values are converted', async () => {
    const r = await run(`
      return { p: Promise.resolve(1), ab: new ArrayBuffer(4), wm: new WeakMap(), ta: new Uint8Array([1, 2]), s: new String('ab'), re: /a.b/gi, n: NaN, i: -Infinity, z: -0, sp: [1, , 3], u: [undefined], e: new RangeError('r'), d: new Date(0), bad: new Date(NaN), m: new Map([['k', new Set([1n])]]) };`);
    expect(r).toStrictEqual(
      ok({ p: {}, ab: {}, wm: {}, ta: [1, 2], s: { 0: 'a', 1: 'b' }, re: '/a.b/gi', n: null, i: null, z: 0, sp: [1, null, 3], u: [null], e: { name: 'RangeError', message: 'r' }, d: '1970-01-01T00:00:00.000Z', bad: null, m: { k: ['1'] } }),
    );
  });

  it('a function anywhere in the value is refused', async () => {
    expect(await run('return { deep: [{ f() {} }] };')).toStrictEqual(
      fail('EXECUTION_ERROR', 'TypeError', 'Return value contains a function. Functions cannot leave the sandbox.'),
    );
  });

  it('toJSON is a function and is refused rather than called', async () => {
    expect(await run("return { toJSON() { return 'hijack'; } };")).toStrictEqual(
      fail('EXECUTION_ERROR', 'TypeError', 'Return value contains a function. Functions cannot leave the sandbox.'),
    );
  });

  it('valueOf/toString gadgets are refused as functions', async () => {
    expect(await run('return { valueOf() { return 1; } };')).toStrictEqual(
      fail('EXECUTION_ERROR', 'TypeError', 'Return value contains a function. Functions cannot leave the sandbox.'),
    );
  });

  it('Symbol.toPrimitive and other symbol keys are ignored', async () => {
    expect(await run('return { [Symbol.toPrimitive]() { return 1; }, [Symbol.iterator]: 5, a: 2 };')).toStrictEqual(ok({ a: 2 }));
  });

  it('a symbol value is refused', async () => {
    expect(await run("return [Symbol.for('x')];")).toStrictEqual(
      fail('EXECUTION_ERROR', 'TypeError', 'Return value contains a symbol. Symbols cannot leave the sandbox.'),
    );
  });

  it('a fake Date (Symbol.toStringTag, Symbol.hasInstance) is copied as a plain object', async () => {
    const r = await run(`
      Object.defineProperty(Date, Symbol.hasInstance, { value: () => true });
      return { [Symbol.toStringTag]: 'Date', t: 1 };`);
    expect(r).toStrictEqual(ok({ t: 1 }));
  });

  it('a Date whose toISOString was patched is still converted by the captured intrinsic', async () => {
    expect(await run("const d = new Date(0); d.toISOString = () => 'evil'; Date.prototype.toISOString = () => 'evil2'; return d;")).toStrictEqual(
      ok('1970-01-01T00:00:00.000Z'),
    );
  });

  it('patched Map iteration does not change how a Map is copied', async () => {
    const r = await run(`
      Map.prototype.entries = function* () { yield ['evil', 1]; };
      Object.getPrototypeOf(new Map().entries()).next = () => ({ done: true });
      return new Map([['k', 'v']]);`);
    expect(r).toStrictEqual(ok({ k: 'v' }));
  });

  it('patched Object.keys, JSON.stringify and Array.prototype.push do not change the copy', async () => {
    const r = await run(`
      Object.keys = () => ['evil']; JSON.stringify = () => '"evil"'; Array.prototype.push = () => { throw new Error('push'); };
      return { a: [1, 2], b: 'c' };`);
    expect(r).toStrictEqual(ok({ a: [1, 2], b: 'c' }));
  });

  it('an Array.prototype index setter only affects the script\u2019s own copied arrays', async () => {
    // Surprising but harmless: copied arrays inherit the sandbox Array.prototype.
    const r = await run("Object.defineProperty(Array.prototype, '0', { set(v) { globalThis.hit = v; }, configurable: true }); return [[5, 6], { a: [7] }];");
    expect(r).toStrictEqual(ok([null, { a: [null] }]));
  });

  it('Object.prototype.toJSON in the sandbox only affects the script\u2019s own copied arrays', async () => {
    // Surprising but harmless: JSON.stringify of the copy consults toJSON on arrays.
    const r = await run("Object.prototype.toJSON = function () { return 'hijacked'; }; return { a: [1, 2], b: { c: 1 } };");
    expect(r).toStrictEqual(ok({ a: 'hijacked', b: { c: 1 } }));
  });

  it('a Proxy return value is copied through its traps inside the sandbox', async () => {
    const r = await run(`
      return new Proxy({}, { ownKeys() { return ['a']; }, getOwnPropertyDescriptor() { return { value: 1, enumerable: true, configurable: true }; }, get(t, k) { return k === 'a' ? 7 : undefined; } });`);
    expect(r).toStrictEqual(ok({ a: 7 }));
  });

  it('a Proxy return value with a throwing trap fails inside the sandbox', async () => {
    expect(await run("return new Proxy({}, { ownKeys() { throw new RangeError('trap says no'); } });")).toStrictEqual(
      fail('EXECUTION_ERROR', 'RangeError', 'trap says no'),
    );
  });

  it('a revoked Proxy return value fails with a TypeError (the async return reads .then)', async () => {
    expect(await run('const { proxy, revoke } = Proxy.revocable([], {}); revoke(); return proxy;')).toStrictEqual(
      fail('EXECUTION_ERROR', 'TypeError', "Cannot perform 'get' on a proxy that has been revoked"),
    );
  });

  it('a throwing getter on the return value fails inside the sandbox', async () => {
    expect(await run("return { get x() { throw new URIError('getter'); } };")).toStrictEqual(fail('EXECUTION_ERROR', 'URIError', 'getter'));
  });

  it('a getter that loops forever on the return value ends as TIMEOUT', async () => {
    expect(await run('return { get x() { for (;;) {} } };', { toolTimeoutMs: 300 })).toStrictEqual(
      fail('TIMEOUT', 'Error', 'Script execution timed out after 300ms'),
    );
  });

  it('a circular return value is cut with [Circular]', async () => {
    expect(await run('const a = { n: 1 }; a.self = a; a.list = [a]; return a;')).toStrictEqual(
      ok({ n: 1, self: '[Circular]', list: ['[Circular]'] }),
    );
  });

  it('21 nested objects (depths 0..20) are allowed, 22 are refused', async () => {
    const r21 = await run('let o = 1; for (let i = 0; i < 21; i++) o = { o }; let d = 0; for (let p = o; typeof p === "object"; p = p.o) d++; return d;');
    expect(r21).toStrictEqual(ok(21));
    const copied = await run('let o = 1; for (let i = 0; i < 21; i++) o = { o }; return o;');
    expect(copied.success).toBe(true);
    expect(await run('let o = 1; for (let i = 0; i < 22; i++) o = { o }; return o;')).toStrictEqual(
      fail('EXECUTION_ERROR', 'RangeError', `Return value ${DEPTH_21}`),
    );
  });

  it('a 10,000-level return value is refused by depth', async () => {
    expect(await run('let o = {}; for (let i = 0; i < 10000; i++) o = { o }; return o;')).toStrictEqual(
      fail('EXECUTION_ERROR', 'RangeError', `Return value ${DEPTH_21}`),
    );
  });

  it('a return value over 5 MiB is refused with RESULT_TOO_LARGE', async () => {
    expect(await run("return 'x'.repeat(6 * 1024 * 1024);")).toStrictEqual(
      fail('RESULT_TOO_LARGE', 'Error', 'Return value exceeds maximum size (5242880 bytes)'),
    );
  });

  it('undefined leaves as no value', async () => {
    expect(await run('return undefined;')).toStrictEqual(ok(undefined));
  });
});

describe('thenables returned to the host', () => {
  it('a resolving thenable is unwrapped inside the sandbox', async () => {
    expect(await run('return { then(resolve) { resolve(42); } };')).toStrictEqual(ok(42));
  });

  it('a thenable that never settles ends as TIMEOUT, not a hang', async () => {
    expect(await run('return { then() {} };', { toolTimeoutMs: 300 })).toStrictEqual(
      fail('TIMEOUT', 'Error', 'Script execution timed out after 300ms'),
    );
  });

  it('a rejecting thenable ends as EXECUTION_ERROR', async () => {
    expect(await run("return { then(_, reject) { reject(new RangeError('thenable rejected')); } };")).toStrictEqual(
      fail('EXECUTION_ERROR', 'RangeError', 'thenable rejected'),
    );
  });

  it('a throwing then ends as EXECUTION_ERROR', async () => {
    expect(await run("return { then() { throw new TypeError('then threw'); } };")).toStrictEqual(
      fail('EXECUTION_ERROR', 'TypeError', 'then threw'),
    );
  });

  it('a non-callable then is just data', async () => {
    expect(await run("return { then: 5, a: 'b' };")).toStrictEqual(ok(JSON.parse('{"then": 5, "a": "b"}')));
  });

  it('Object.prototype.then in the sandbox makes every object a sandbox thenable', async () => {
    const r = await run("Object.prototype.then = function (resolve) { delete Object.prototype.then; resolve(['unwrapped', sameRealm(resolve)]); }; return { a: 1 };");
    expect(r).toStrictEqual(ok(['unwrapped', true]));
  });

  it('a thenable nested in the value is copied as data, never called', async () => {
    expect(await run("let called = false; return [{ then: 1, x: 'y' }, called];")).toStrictEqual(ok([JSON.parse('{"then": 1, "x": "y"}'), false]));
  });
});
