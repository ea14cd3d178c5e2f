// Sandbox escapes: the three advisories' techniques re-expressed against this API, the
// constructor.constructor / prototype walks from every value the sandbox receives,
// Error.prepareStackTrace call sites, caller chains, and code generation in all forms.
// Each case states its exact outcome; none may reach the host realm.
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

async function run(code) {
  return outcome(await broker.execute(PRE + code));
}

// What the host's process object would give away if it were reached.
const PAYLOAD = "'return typeof process === \"object\" ? process.pid : \"no process\"'";

describe('advisory proofs of concept, re-expressed', () => {
  // CVE-2026-22686: a host Error handed to the sandbox for a failed tool call; its
  // constructor chain reached the host Function constructor.
  it('CVE-2026-22686: tool error constructor.constructor cannot compile code', async () => {
    const r = await run(`
      try { await callTool('fail', {}); } catch (e) {
        const F = e.constructor.constructor;
        return [F === Function, sameRealm(e), attempt(() => F(${PAYLOAD})())];
      }`);
    expect(r).toStrictEqual(ok([true, true, CODEGEN]));
  });

  it('CVE-2026-22686: __proto__ walk from a tool error ends at the sandbox Object.prototype', async () => {
    const r = await run(`
      try { await callTool('fail', {}); } catch (e) {
        const chain = [];
        for (let p = e; p !== null; p = p.__proto__) chain.push(p === Object.prototype ? 'Object.prototype' : p === Error.prototype ? 'Error.prototype' : p === e ? 'error' : 'other');
        return chain;
      }`);
    expect(r).toStrictEqual(ok(['error', 'Error.prototype', 'Object.prototype']));
  });

  it('CVE-2026-22686: a string-thrown tool failure arrives as a sandbox Error with a code', async () => {
    const r = await run(`
      try { await callTool('failString', {}); } catch (e) {
        return [e instanceof Error, e.message, e.code, attempt(() => e.constructor.constructor(${PAYLOAD})())];
      }`);
    expect(r).toStrictEqual(ok([true, 'plain failure', 'EXECUTION_ERROR', CODEGEN]));
  });

  // CVE-2026-25533: Error.prepareStackTrace received call sites of host frames, and
  // getThis()/getFunction() handed out host objects.
  it('CVE-2026-25533: call sites of a failed tool call expose no frames at all', async () => {
    const r = await run(`
      Error.prepareStackTrace = (err, sites) => sites;
      try { await callTool('fail', {}); } catch (e) {
        return [Array.isArray(e.stack), e.stack.length];
      }`);
    expect(r).toStrictEqual(ok([true, 0]));
  });

  it('CVE-2026-25533: getThis/getFunction on every frame under callTool argument errors stay in the sandbox', async () => {
    const r = await run(`
      Error.prepareStackTrace = (err, sites) => sites.map((s) => [s.getFunctionName(), typeof s.getThis(), typeof s.getFunction(), sameRealm(s.getThis()), sameRealm(s.getFunction())]);
      try { await callTool('echo', null); } catch (e) { return e.stack; }`);
    expect(r).toStrictEqual(
      ok([
        ['callTool', 'undefined', 'undefined', true, true],
        [null, 'undefined', 'undefined', true, true],
      ]),
    );
  });

  it('CVE-2026-25533: prepareStackTrace is called with the sandbox Error as receiver', async () => {
    const r = await run(`
      let receiver;
      Error.prepareStackTrace = function (err, sites) { receiver = this; return 'formatted'; };
      const stack = new Error('x').stack;
      return [stack, receiver === Error, sameRealm(receiver)];`);
    expect(r).toStrictEqual(ok(['formatted', true, true]));
  });

  // CVE-2026-27597: the host touched values the sandbox handed out (thenables, getters,
  // Proxies) and ran sandbox functions with host arguments (e.g. resolve functions).
  it('CVE-2026-27597: a returned thenable is resolved inside the sandbox with sandbox functions', async () => {
    const r = await run(`
      return { then(resolve, reject) { resolve([sameRealm(resolve), sameRealm(reject), attempt(() => resolve.constructor(${PAYLOAD})())]); } };`);
    expect(r).toStrictEqual(ok([true, true, CODEGEN]));
  });

  it('CVE-2026-27597: a Proxy returned to the host only ever sees sandbox arguments in its traps', async () => {
    const r = await run(`
      const p = new Proxy({ a: 1, b: 2 }, {
        get(t, k, recv) { return k === 'a' ? [typeof k, sameRealm(t), sameRealm(recv), recv === p] : Reflect.get(t, k, recv); },
        ownKeys(t) { return sameRealm(t) ? Reflect.ownKeys(t) : ['host']; },
      });
      return p;`);
    expect(r).toStrictEqual(ok({ a: ['string', true, true, true], b: 2 }));
  });

  it('CVE-2026-27597: getters on the return value run in the sandbox with a sandbox receiver', async () => {
    const r = await run(`
      return { get probe() { return [sameRealm(this), attempt(() => this.constructor.constructor(${PAYLOAD})())]; } };`);
    expect(r).toStrictEqual(ok({ probe: [true, CODEGEN] }));
  });

  it('CVE-2026-27597: a thenable passed as a tool argument is serialized, never called', async () => {
    const r = await run(`
      let called = false;
      const out = await callTool('echo', { thenable: { then() { called = true; } }, x: 1 });
      return [out, called];`);
    expect(r).toStrictEqual(ok([{ thenable: {}, x: 1 }, false]));
    expect(state.calls.at(-1)).toStrictEqual({ name: 'echo', args: { thenable: {}, x: 1 } });
  });
});

describe('constructor.constructor from every value the sandbox receives', () => {
  const sources = {
    'callTool': 'callTool',
    'parallel': 'parallel',
    'console': 'console',
    'console.log': 'console.log',
    'the promise callTool returns': "callTool('ok', {})",
    'a tool result object': "await callTool('echo', { a: 1 })",
    'a tool result array': "await callTool('array', {})",
    'a tool result string': "await callTool('string', {})",
    'a tool result number': "await callTool('number', {})",
    'a converted rich tool result': "await callTool('rich', {})",
    'a tool result Date (ISO string)': "(await callTool('rich', {})).date",
    'the ToolContext a tool returned': "await callTool('ctx', {})",
    'the signal inside a returned ToolContext': "(await callTool('ctx', {})).signal",
    'a host class instance (copied)': "await callTool('instance', {})",
    'a host Proxy (copied)': "await callTool('hostProxy', {})",
    'a custom global': 'cfg',
    'a nested custom global': 'cfg.nested',
    'a custom global array': 'cfg.list',
    'globalThis': 'globalThis',
    'an unknown-tool error': "await callTool('nope', {}).catch((e) => e)",
    'a tool error with code': "await callTool('fail', {}).catch((e) => e)",
    'an argument TypeError from callTool': "await callTool('echo', []).catch((e) => e)",
    'a parallel() TypeError': 'await parallel(1).catch((e) => e)',
    'a stack-overflow RangeError': '(() => { const f = () => f(); try { f(); } catch (e) { return e; } })()',
    'the import() rejection': "await import('fs').catch((e) => e)",
    'an async function': '(async () => {})',
    'a generator function': '(function* () {})',
    'an async generator function': '(async function* () {})',
    'a class': '(class {})',
    'a bound function': '(function () {}).bind(null)',
    'Symbol.for registry symbol (boxed)': "Object(Symbol.for('nodejs.util.inspect.custom'))",
    'a Proxy of a function': 'new Proxy(function () {}, {})',
  };
  for (const [label, expr] of Object.entries(sources)) {
    it(`from ${label}`, async () => {
      const r = await run(`
        const v = ${expr};
        const F = v.constructor.constructor;
        return [sameRealm(v), sameRealm(F), attempt(() => F(${PAYLOAD})()), attempt(() => new F(${PAYLOAD}))];`);
      expect(r).toStrictEqual(ok([true, true, CODEGEN, CODEGEN]));
    });
  }
});

describe('code generation in every form', () => {
  const forms = {
    'eval': "eval('1 + 1')",
    'indirect eval': "(0, eval)('1 + 1')",
    'globalThis.eval': "globalThis.eval('this')",
    'Function': "Function('return this')()",
    'new Function': "new Function('return this')()",
    'AsyncFunction': "Object.getPrototypeOf(async function () {}).constructor('return 1')",
    'GeneratorFunction': "Object.getPrototypeOf(function* () {}).constructor('yield 1')",
    'AsyncGeneratorFunction': "Object.getPrototypeOf(async function* () {}).constructor('yield 1')",
    'Reflect.construct(Function)': "Reflect.construct(Function, ['return 1'])",
    'Function.prototype.call.call': "Function.prototype.call.call(Function, null, 'return 1')",
    'Function via Object.getOwnPropertyDescriptor': "Object.getOwnPropertyDescriptor(Function.prototype, 'constructor').value('return 1')",
    'Function via the Symbol.hasInstance method': 'Function.prototype[Symbol.hasInstance].constructor("return 1")',
    'eval of a natives-syntax call': "eval('%DebugPrint(1)')",
  };
  for (const [label, expr] of Object.entries(forms)) {
    it(`${label} throws EvalError`, async () => {
      expect(await run(`return attempt(() => ${expr});`)).toStrictEqual(ok(CODEGEN));
    });
  }

  it('natives syntax in the script itself is a syntax error', async () => {
    expect(await run('return %GetOptimizationStatus(Object);')).toStrictEqual(
      fail('VALIDATION_ERROR', 'SyntaxError', "Failed to parse AgentScript code: Unexpected token '%' (5:7)"),
    );
  });

  it('an uncaught EvalError ends the script as EXECUTION_ERROR', async () => {
    expect(await run("callTool.constructor.constructor('return process')()")).toStrictEqual(
      fail('EXECUTION_ERROR', 'EvalError', CODEGEN[1]),
    );
  });

  it('import() rejects with a sandbox TypeError for every specifier', async () => {
    const r = await run(`
      const out = [];
      for (const s of ['fs', 'node:child_process', 'ext:core/ops', 'data:text/javascript,export default 1', './x.js']) {
        try { await import(s); out.push('imported'); } catch (e) { out.push([e.name, e.message, sameRealm(e)]); }
      }
      return out;`);
    const rejected = ['TypeError', 'import() is not available in the sandbox', true];
    expect(r).toStrictEqual(ok([rejected, rejected, rejected, rejected, rejected]));
  });

  it('import.meta is a syntax error outside modules', async () => {
    expect(await run('return import.meta;')).toStrictEqual(
      fail('VALIDATION_ERROR', 'SyntaxError', "Failed to parse AgentScript code: Cannot use 'import.meta' outside a module (5:14)"),
    );
  });

  it('closing the wrapper function early is refused', async () => {
    expect(outcome(await broker.execute('}); globalThis.escaped = 1; (async function () {'))).toStrictEqual(
      fail(
        'VALIDATION_ERROR',
        'SyntaxError',
        "Failed to parse AgentScript code: Unexpected token '}' (the script closes its own function body)",
      ),
    );
  });
});

describe('Error.prepareStackTrace and CallSite methods', () => {
  const SITE = `(s) => ({
    fn: s.getFunctionName(), thisType: typeof s.getThis(), fnType: typeof s.getFunction(),
    realm: sameRealm(s.getThis()) && sameRealm(s.getFunction()), file: s.getFileName(),
    evalOrigin: s.getEvalOrigin(), native: s.isNative(), isEval: s.isEval(),
  })`;

  it('sites from a plain sandbox error belong to sandbox functions', async () => {
    const r = await run(`
      Error.prepareStackTrace = (e, sites) => sites.map(${SITE});
      function inner() { return new Error('x').stack; }
      return inner();`);
    // getEvalOrigin() is undefined for these frames, so the key is dropped by the result copy.
    const base = { file: 'agentscript.js', native: false, isEval: false, realm: true };
    expect(r).toStrictEqual(
      ok([
        { ...base, fn: 'inner', thisType: 'object', fnType: 'function' },
        { ...base, fn: null, thisType: 'object', fnType: 'function' },
      ]),
    );
  });

  it('getFunction on a sandbox frame returns the sandbox function itself', async () => {
    const r = await run(`
      Error.prepareStackTrace = (e, sites) => sites;
      function me() { return new Error('x').stack; }
      const sites = me();
      return [sites[0].getFunction() === me, sites[0].getThis() === globalThis];`);
    expect(r).toStrictEqual(ok([true, true]));
  });

  it('prelude frames (parallel) are censored: no this, no function, for them and every frame below', async () => {
    const r = await run(`
      Error.prepareStackTrace = (e, sites) => sites.map((s) => [s.getFunctionName(), typeof s.getFunction(), typeof s.getThis()]);
      let stack;
      await parallel([1], function cb() { stack = new Error('x').stack; return 1; });
      return stack;`);
    expect(r).toStrictEqual(
      ok([
        ['cb', 'function', 'object'],
        [null, 'undefined', 'undefined'],
        ['map', 'undefined', 'undefined'],
        ['parallel', 'undefined', 'undefined'],
        [null, 'undefined', 'undefined'],
      ]),
    );
  });

  it('codec frames seen from a getter on the return value are censored', async () => {
    const r = await run(`
      Error.prepareStackTrace = (e, sites) => sites.map((s) => [s.getFunctionName(), typeof s.getFunction(), typeof s.getThis()]);
      return { get x() { return new Error('x').stack; } };`);
    expect(r).toStrictEqual(
      ok({
        x: [
          ['get x', 'function', 'object'],
          ['convertObject', 'undefined', 'undefined'],
          ['convert', 'undefined', 'undefined'],
          ['toPlain', 'undefined', 'undefined'],
          ['toJson', 'undefined', 'undefined'],
          ['encodeResult', 'undefined', 'undefined'],
        ],
      }),
    );
  });

  it('the error describer frames seen from a thrown message getter are censored', async () => {
    const r = await run(`
      Error.prepareStackTrace = (e, sites) => sites.map((s) => [s.getFunctionName(), typeof s.getFunction(), typeof s.getThis()]);
      throw { get message() { return JSON.stringify(new Error('x').stack); } };`);
    expect(r).toStrictEqual(
      fail('EXECUTION_ERROR', 'Error', '[["get message","function","object"],["describeError","undefined","undefined"]]'),
    );
  });

  it('console formatting frames seen from a toString gadget are censored', async () => {
    const r = await run(`
      Error.prepareStackTrace = (e, sites) => sites.map((s) => [s.getFunctionName(), typeof s.getFunction(), typeof s.getThis()]);
      let stack;
      console.log({ big: 1n, toString() { stack = new Error('x').stack; return 'gadget'; } });
      return stack;`);
    expect(r).toStrictEqual(
      ok([
        ['toString', 'function', 'object'],
        ['String', 'undefined', 'undefined'],
        ['formatArg', 'undefined', 'undefined'],
        ['map', 'undefined', 'undefined'],
        [null, 'undefined', 'undefined'],
        [null, 'undefined', 'undefined'],
      ]),
    );
  });

  it('native frames (Array.prototype.map) give nothing away', async () => {
    const r = await run(`
      Error.prepareStackTrace = (e, sites) => sites.map((s) => [s.getFunctionName(), typeof s.getFunction(), sameRealm(s.getThis())]);
      try { [1].map(function m() { throw new Error('x'); }); } catch (e) { return e.stack; }`);
    expect(r).toStrictEqual(
      ok([
        ['m', 'function', true],
        ['map', 'undefined', true],
        [null, 'undefined', true],
      ]),
    );
  });

  it('stack-overflow errors carry only sandbox frames', async () => {
    const r = await run(`
      Error.prepareStackTrace = (e, sites) => sites;
      function f() { return f(); }
      try { f(); } catch (e) {
        const sites = e.stack;
        return [e instanceof RangeError, sites.length > 0, sites.every((s) => s.getFunction() === f || s.getFunction() === undefined || sameRealm(s.getFunction())), sites.every((s) => sameRealm(s.getThis()))];
      }`);
    expect(r).toStrictEqual(ok([true, true, true, true]));
  });

  it('CallSite methods exist only as sandbox functions', async () => {
    const r = await run(`
      Error.prepareStackTrace = (e, sites) => sites[0];
      const site = new Error('x').stack;
      const proto = Object.getPrototypeOf(site);
      const names = Object.getOwnPropertyNames(proto).filter((n) => n !== 'constructor').sort();
      return [names.every((n) => sameRealm(proto[n])), attempt(() => proto.getThis.constructor(${PAYLOAD})()), sameRealm(site)];`);
    expect(r).toStrictEqual(ok([true, CODEGEN, true]));
  });

  it('Error.captureStackTrace on any object uses only the sandbox hook', async () => {
    const r = await run(`
      let args;
      Error.prepareStackTrace = (e, sites) => { args = [sameRealm(e), sites.every((s) => sameRealm(s.getThis()))]; return 'hooked'; };
      const o = {};
      Error.captureStackTrace(o);
      return [o.stack, args];`);
    expect(r).toStrictEqual(ok(['hooked', [true, true]]));
  });

  it('a prepareStackTrace getter that loops forever ends as TIMEOUT', async () => {
    const r = await broker.execute(
      "Object.defineProperty(Error, 'prepareStackTrace', { get() { for (;;) {} } }); return new Error('x').stack;",
      { session: { limits: { toolTimeoutMs: 300 } } },
    );
    expect(outcome(r)).toStrictEqual(fail('TIMEOUT', 'Error', 'Script execution timed out after 300ms'));
  });

  // Design choice: the engine swallows the hook's exception and `stack` is undefined.
  it('a throwing prepareStackTrace leaves stack undefined and the script running', async () => {
    const r = await run(`
      Error.prepareStackTrace = () => { throw new Error('hook failed'); };
      let stack;
      try { stack = new Error('x').stack; } catch (e) { return ['threw', e.message]; }
      return ['no throw', typeof stack];`);
    expect(r).toStrictEqual(ok(['no throw', 'undefined']));
  });
});

describe('caller chains into prelude and engine code', () => {
  it('a sloppy callback called by parallel sees only its sloppy caller', async () => {
    const r = await run(`
      let seen;
      function g() { seen = g.caller; return 1; }
      await parallel([1], function h() { return g(); });
      return [typeof seen, seen && seen.name];`);
    expect(r).toStrictEqual(ok(['function', 'h']));
  });

  it('a callback called directly by strict prelude code sees caller null', async () => {
    const r = await run(`
      let seen = 'unset';
      function cb() { seen = cb.caller; return 1; }
      await parallel([1], cb);
      return seen;`);
    expect(r).toStrictEqual(ok(null));
  });

  it('a toJSON called while serializing tool args sees caller null', async () => {
    const r = await run(`
      let seen = 'unset';
      function t() { seen = t.caller; return 'J'; }
      await callTool('echo', { a: { toJSON: t } });
      return seen;`);
    expect(r).toStrictEqual(ok(null));
  });

  it('a toString called by console formatting sees caller null', async () => {
    const r = await run(`
      let seen = 'unset';
      function t() { seen = t.caller; return 'S'; }
      console.log({ big: 1n, toString: t });
      return seen;`);
    expect(r).toStrictEqual(ok(null));
  });

  it('a getter function called by the result codec sees caller null', async () => {
    const r = await run(`
      function g() { return String(g.caller); }
      const o = {};
      Object.defineProperty(o, 'x', { get: g, enumerable: true });
      return o;`);
    expect(r).toStrictEqual(ok({ x: 'null' }));
  });

  it('arguments.callee.caller from a message getter read by the error describer is null', async () => {
    const r = await run(`
      const o = {};
      Object.defineProperty(o, 'message', { get: function m() { return String(m.caller); } });
      throw o;`);
    expect(r).toStrictEqual(fail('EXECUTION_ERROR', 'Error', 'null'));
  });
});
