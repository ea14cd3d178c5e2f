// Prototype pollution of the host through tool results, tool args, return values, custom
// globals and events; and of one sandbox by another. After every case the host's
// standard prototypes must be exactly as they were before the file ran.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLEAN_HOST, PRE, fail, hostLooksClean, hostPrototypeSnapshot, makeBroker, ok, outcome } from './helpers.mjs';

const BEFORE = hostPrototypeSnapshot();
const { broker, state } = makeBroker({ enclave: { globals: { cfg: { a: 1, nested: { b: 2 } } } } });

afterEach(() => {
  expect(state.violations).toStrictEqual([]);
  expect(hostLooksClean()).toStrictEqual(CLEAN_HOST);
  expect(hostPrototypeSnapshot()).toStrictEqual(BEFORE);
});

afterAll(async () => {
  await broker.dispose();
});

async function run(code, options = {}) {
  return outcome(await broker.execute(PRE + code, options));
}

const PROTO_JSON = `'{"__proto__": {"polluted": "yes", "then": "x"}, "a": 1}'`;

describe('through tool results', () => {
  it('a JSON __proto__ key in a host result is dropped before the sandbox sees it', async () => {
    const r = await run(`const v = await callTool('protoJson', {}); return [v, Object.keys(v), ({}).polluted, Object.getPrototypeOf(v) === Object.prototype];`);
    expect(r).toStrictEqual(ok([{ a: 1 }, ['a'], null, true]));
  });

  it('constructor and prototype keys in a host result are dropped', async () => {
    const r = await run(`const v = await callTool('constructorJson', {}); return [v, typeof v.constructor, v.constructor === Object, ({}).polluted === undefined];`);
    expect(r).toStrictEqual(ok([{ b: 2 }, 'function', true, true]));
  });

  it('a __proto__ key echoed back through a tool is dropped on the way in', async () => {
    const r = await run(`const v = await callTool('echo', JSON.parse(${PROTO_JSON})); return [v, ({}).polluted === undefined];`);
    expect(r).toStrictEqual(ok([{ a: 1 }, true]));
  });

  it('a nested constructor.prototype payload echoed back is dropped at every level', async () => {
    const r = await run(`
      const v = await callTool('echo', { x: { constructor: { prototype: { polluted: 'yes' } } }, y: [{ __proto__: null, prototype: 1, ok: 1 }] });
      return [v, ({}).polluted === undefined];`);
    expect(r).toStrictEqual(ok([{ x: {}, y: [{ ok: 1 }] }, true]));
  });
});

describe('through tool args', () => {
  it('the handler receives __proto__ as an own data property and its prototype is intact', async () => {
    const r = await run(`return await callTool('keys', JSON.parse(${PROTO_JSON}));`);
    expect(r).toStrictEqual(ok({ keys: ['__proto__', 'a'], proto: true, ownProto: true }));
    expect(state.calls.at(-1).args.polluted).toBe(undefined);
  });

  it('constructor.prototype in args stays data on the host', async () => {
    await run(`await callTool('ok', { constructor: { prototype: { polluted: 'yes' } } });`);
    const args = state.calls.at(-1).args;
    expect(Object.getPrototypeOf(args)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(args, 'constructor')).toBe(true);
    expect(args.constructor).toStrictEqual({ prototype: { polluted: 'yes' } });
  });

  it('polluting the sandbox Object.prototype does not add inherited keys to args', async () => {
    await run(`Object.prototype.polluted = 'yes'; Array.prototype.polluted = 'yes'; await callTool('ok', { list: [1] });`);
    const args = state.calls.at(-1).args;
    expect(args).toStrictEqual({ list: [1] });
    expect(args.polluted).toBe(undefined);
  });

  it('a sandbox Object.prototype.toJSON turns args into a string the host refuses', async () => {
    const r = await run(`
      Object.prototype.toJSON = function () { return 'hijacked'; };
      let out;
      try { await callTool('ok', { a: 1 }); } catch (e) { out = [e.code, e.message]; }
      delete Object.prototype.toJSON;
      return out;`);
    expect(r).toStrictEqual(
      ok([
        'VALIDATION_ERROR',
        'Invalid arguments: [\n  {\n    "expected": "record",\n    "code": "invalid_type",\n    "path": [],\n    "message": "Invalid input: expected record, received string"\n  }\n]',
      ]),
    );
  });
});

describe('through return values and events', () => {
  it('a __proto__ key in the return value is dropped', async () => {
    const r = await broker.execute(PRE + `return JSON.parse(${PROTO_JSON});`);
    expect(outcome(r)).toStrictEqual(ok({ a: 1 }));
    expect(Object.prototype.hasOwnProperty.call(r.value, '__proto__')).toBe(false);
    expect(Object.getPrototypeOf(r.value)).toBe(Object.prototype);
  });

  it('a Map with __proto__/constructor/prototype keys loses them', async () => {
    expect(await run("return new Map([['__proto__', { polluted: 'yes' }], ['constructor', 1], ['prototype', 2], ['ok', 3]]);")).toStrictEqual(ok({ ok: 3 }));
  });

  it('nested constructor.prototype payloads in the return value are dropped', async () => {
    expect(await run("return [{ constructor: { prototype: { polluted: 'yes' } }, keep: 1 }];")).toStrictEqual(ok([{ keep: 1 }]));
  });

  it('__proto__ payloads in console output stay text in the event stream', async () => {
    const events = [];
    const r = await broker.execute(PRE + `console.log(JSON.parse(${PROTO_JSON})); console.warn('{"__proto__":{"polluted":1}}'); return 1;`, {
      onEvent: (e) => events.push(e),
    });
    expect(outcome(r)).toStrictEqual(ok(1));
    const output = events.filter((e) => e.type === 'stdout' || e.type === 'log').map((e) => e.payload);
    expect(output).toStrictEqual([
      { chunk: '{"__proto__":{"polluted":"yes","then":"x"},"a":1}\n' },
      { level: 'warn', message: '{"__proto__":{"polluted":1}}' },
    ]);
    for (const e of events) expect(Object.getPrototypeOf(e.payload)).toBe(Object.prototype);
  });

  it('a tool name of __proto__ appears in events as text only', async () => {
    const events = [];
    await broker.execute("await callTool('__proto__', { polluted: 1 }).catch(() => 0);", { onEvent: (e) => events.push(e) });
    const call = events.find((e) => e.type === 'tool_call');
    expect(call.payload.toolName).toBe('__proto__');
    expect(call.payload.args).toStrictEqual({ polluted: 1 });
  });
});

describe('inside the sandbox', () => {
  it('custom globals are frozen copies: writes through them fail', async () => {
    const r = await run(`
      return [attempt(() => { 'use strict'; cfg.a = 2; }), attempt(() => { 'use strict'; cfg.nested.b = 3; }), attempt(() => { 'use strict'; cfg.x = 1; }), cfg.a, Object.isFrozen(cfg.nested)];`);
    expect(r).toStrictEqual(
      ok([
        ['TypeError', "Cannot assign to read only property 'a' of object '#<Object>'"],
        ['TypeError', "Cannot assign to read only property 'b' of object '#<Object>'"],
        ['TypeError', 'Cannot add property x, object is not extensible'],
        1,
        true,
      ]),
    );
  });

  it('cfg.__proto__ is the sandbox Object.prototype, so polluting it stays in the sandbox', async () => {
    const r = await run(`cfg.__proto__.polluted = 'sandbox only'; return [({}).polluted, sameRealm(cfg)];`);
    expect(r).toStrictEqual(ok(['sandbox only', true]));
  });

  it('sandbox prototype pollution does not survive into the next execution', async () => {
    await run(`
      Object.prototype.polluted = 'yes';
      Array.prototype.polluted = 'yes';
      Function.prototype.polluted = 'yes';
      Object.defineProperty(Object.prototype, 'then', { value: 'x', configurable: true });
      Object.prototype[Symbol.for('leak')] = 'secret';
      return 1;`);
    const r = await run(`return [({}).polluted, [].polluted, (() => {}).polluted, ({}).then, ({})[Symbol.for('leak')]];`);
    expect(r).toStrictEqual(ok([null, null, null, null, null]));
  });

  it('an Object.prototype setter for code/name does not stop tool errors from carrying their code', async () => {
    const r = await run(`
      const seen = [];
      Object.defineProperty(Object.prototype, 'code', { set(v) { seen.push(v); }, configurable: true });
      const e = await callTool('fail', {}).catch((e) => e);
      throw e;`);
    expect(r).toStrictEqual(fail('E_BOOM', 'Error', 'boom'));
  });

  it('an Object.prototype setter for code runs in the sandbox and swallows the own property', async () => {
    // Surprising but harmless: the engine sets `code` with [[Set]], so a sandbox setter sees it.
    const r = await run(`
      const seen = [];
      Object.defineProperty(Object.prototype, 'code', { set(v) { seen.push([v, sameRealm(this)]); }, configurable: true });
      const e = await callTool('fail', {}).catch((e) => e);
      delete Object.prototype.code;
      return [Object.prototype.hasOwnProperty.call(e, 'code'), seen];`);
    expect(r).toStrictEqual(ok([false, [['E_BOOM', true]]]));
  });
});
