// Resource limits that must hold in-process: script timeout (busy loops, microtask floods,
// regex backtracking, never-settling awaits), heap limit for gradual growth, stack
// overflow, console output caps, tool-call caps, and isolation between concurrent runs.
// Attacks that can take the host down are in host-crash.test.mjs (child processes).
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { createBroker } from '../../index.mjs';
import { CLEAN_HOST, MEMORY_MESSAGE, PRE, fail, hostLooksClean, makeBroker, ok, outcome } from './helpers.mjs';

const { broker, state } = makeBroker();

afterEach(() => {
  expect(state.violations).toStrictEqual([]);
  expect(hostLooksClean()).toStrictEqual(CLEAN_HOST);
});

afterAll(async () => {
  await broker.dispose();
});

async function timed(code, limits) {
  const options = limits === undefined ? {} : { session: { limits } };
  const started = Date.now();
  const r = await broker.execute(PRE + code, options);
  return { r: outcome(r), ms: Date.now() - started, raw: r };
}

async function run(code, limits) {
  return (await timed(code, limits)).r;
}

// Leaves an idle engine process in the pool (a run that completes keeps its process), so
// the next run starts at once: its timeout, which counts the wait for an engine, is then
// all the script's own.
async function warm() {
  expect(await run('return 1')).toStrictEqual(ok(1));
}

const TIMEOUT_300 = fail('TIMEOUT', 'Error', 'Script execution timed out after 300ms');
const memoryExceeded = () => ({
  success: false,
  error: { message: expect.stringMatching(MEMORY_MESSAGE), name: 'MemoryLimitError', code: 'MEMORY_LIMIT_EXCEEDED' },
});

describe('script timeout', () => {
  const spinners = {
    'while (true) {}': 'while (true) {}',
    'for (;;) {}': 'for (;;) {}',
    'do {} while (1)': 'do {} while (1);',
    'a never-resolving await': 'await new Promise(() => {});',
    'a queueMicrotask flood': 'function f() { queueMicrotask(f); } f(); await new Promise(() => {});',
    'an endless then chain': 'let p = Promise.resolve(); function g() { p = p.then(g); } g(); await new Promise(() => {});',
    'a microtask flood after return': 'queueMicrotask(function f() { queueMicrotask(f); }); return 1;',
    'catastrophic backtracking /(a+)+b/': "return /(a+)+b/.test('a'.repeat(40));",
    'catastrophic backtracking with a lookahead': "return /^((?=a)a|a)*(?!a)b$/.test('a'.repeat(64));",
    'an infinite generator drained by for-of': 'function* g() { for (;;) yield 1; } for (const x of g()) {}',
    'an infinite loop in a sort comparator': 'return [3, 2, 1].sort(() => { for (;;) {} });',
    'an infinite loop in a JSON reviver': "return JSON.parse('[1]', () => { for (;;) {} });",
    'an infinite loop inside a tool-arg toJSON': "await callTool('ok', { toJSON() { for (;;) {} } });",
    'an infinite loop in a parallel callback': 'await parallel([1], () => { for (;;) {} });',
    'an infinite loop in a console toString gadget': 'console.log({ big: 1n, toString() { for (;;) {} } });',
    'an infinite async loop': 'for (;;) await null;',
    'a never-settling tool call': "await callTool('never', {});",
  };
  for (const [label, code] of Object.entries(spinners)) {
    it(`${label} ends as TIMEOUT, never before the limit`, async () => {
      const { r, ms } = await timed(code, { toolTimeoutMs: 300 });
      expect(r).toStrictEqual(TIMEOUT_300);
      expect(ms).toBeGreaterThanOrEqual(290);
      // A stop that did not work would hang until the test's own timeout.
      expect(ms).toBeLessThan(15000);
    });
  }

  it('aborts the signal of a tool call left pending by a timeout', async () => {
    await warm();
    const signals = state.signals.length;
    expect(await run("await callTool('never', {});", { toolTimeoutMs: 300 })).toStrictEqual(TIMEOUT_300);
    expect(state.signals.length).toBe(signals + 1);
    expect(state.signals.at(-1).aborted).toBe(true);
  });

  it('the broker keeps working after a timeout', async () => {
    expect(await run('for (;;) {}', { toolTimeoutMs: 300 })).toStrictEqual(TIMEOUT_300);
    expect(await run("return [1 + 1, await callTool('ok', {})];")).toStrictEqual(ok([2, 'ok']));
  });
});

describe('heap limit (gradual growth)', () => {
  const bombs = {
    'an array of objects': 'const a = []; for (let i = 0; ; i++) a.push({ i, s: "y" + i });',
    'a growing Map': 'const m = new Map(); for (let i = 0; ; i++) m.set(i, { i });',
    'strings kept alive': 'const keep = []; for (let i = 0; ; i++) keep.push(("x".repeat(1e5) + i).slice(1));',
    'a self-referencing chain': 'let o = {}; for (;;) o = { o, pad: [1, 2, 3, 4] };',
    'recursive async functions': 'async function f() { await null; return f(); } await f();',
    'a getter on the return value': 'return { get x() { const a = []; for (;;) a.push({ a }); } };',
    'a toJSON inside tool args': "await callTool('ok', { toJSON() { const a = []; for (;;) a.push([a]); } });",
    'a message getter of a thrown object': 'throw { get message() { const a = []; for (;;) a.push({ a }); } };',
    '1,000,000 nested arrays': 'let a = []; for (let i = 0; i < 1e7; i++) a = [a];',
    'a Proxy chain': 'let p = {}; for (let i = 0; i < 1e7; i++) p = new Proxy(p, {});',
  };
  for (const [label, code] of Object.entries(bombs)) {
    it(`${label} ends as MEMORY_LIMIT_EXCEEDED`, async () => {
      expect(await run(code, { toolTimeoutMs: 10000 })).toStrictEqual(memoryExceeded());
    });
  }

  const bufferBombs = {
    '16 MiB ArrayBuffers in a loop': 'const k = []; for (;;) k.push(new ArrayBuffer(16 * 1024 * 1024));',
    '1 MiB typed arrays in a loop, caught': 'const k = []; try { for (;;) k.push(new Uint8Array(1024 * 1024)); } catch (e) { return e.name; }',
    'one 8 GiB ArrayBuffer, caught': 'try { return new ArrayBuffer(2 ** 33).byteLength; } catch (e) { return e.name; }',
    'typed-array copies via slice': 'const k = [new Uint8Array(8 * 1024 * 1024)]; for (;;) k.push(k[0].slice());',
  };
  for (const [label, code] of Object.entries(bufferBombs)) {
    it(`${label} ends as MEMORY_LIMIT_EXCEEDED (backing stores are charged)`, async () => {
      expect(await run(code, { toolTimeoutMs: 10000 })).toStrictEqual(memoryExceeded());
    });
  }

  it('the broker keeps working after a memory limit', async () => {
    expect(await run('const a = []; for (;;) a.push({ a });', { toolTimeoutMs: 10000 })).toStrictEqual(memoryExceeded());
    expect(await run("return [1 + 1, await callTool('ok', {})];")).toStrictEqual(ok([2, 'ok']));
  });

  it('100,000 pending promises are fine', async () => {
    expect(await run('const ps = []; for (let i = 0; i < 100000; i++) ps.push(new Promise(() => {})); return ps.length;')).toStrictEqual(ok(100000));
  });

  it('10,000 settled promises through Promise.all are fine', async () => {
    expect(await run('const ps = []; for (let i = 0; i < 10000; i++) ps.push(Promise.resolve(i).then((x) => x + 1)); return (await Promise.all(ps)).length;')).toStrictEqual(ok(10000));
  });
});

describe('size limits that throw inside the sandbox', () => {
  it('a cons string of 2**28 characters is cheap and has its length', async () => {
    // V8 builds 'x'.repeat(n) as a rope; nothing is materialized until it is flattened.
    expect(await run("return 'x'.repeat(2 ** 28).length;")).toStrictEqual(ok(268435456));
  });

  it('a string over V8\u2019s maximum length is a RangeError', async () => {
    expect(await run("return attempt(() => 'x'.repeat(2 ** 30));")).toStrictEqual(ok(['RangeError', 'Invalid string length']));
  });

  it('an array over 2**32-1 elements is a RangeError', async () => {
    expect(await run('return [new Array(2 ** 32 - 1).length, attempt(() => new Array(2 ** 32))];')).toStrictEqual(
      ok([4294967295, ['RangeError', 'Invalid array length']]),
    );
  });

  it('an ArrayBuffer over the maximum size is a RangeError', async () => {
    expect(await run('return attempt(() => new ArrayBuffer(2 ** 53));')).toStrictEqual(ok(['RangeError', 'Invalid array buffer length']));
  });
});

describe('stack overflow', () => {
  it('is an ordinary catchable RangeError', async () => {
    expect(await run('function f(n) { return f(n + 1) + 1; } try { f(0); } catch (e) { return [e instanceof RangeError, e.message]; }')).toStrictEqual(
      ok([true, 'Maximum call stack size exceeded']),
    );
  });

  it('uncaught, it ends as EXECUTION_ERROR RangeError', async () => {
    expect(await run('function f() { f(); } f();')).toStrictEqual(fail('EXECUTION_ERROR', 'RangeError', 'Maximum call stack size exceeded'));
  });

  it('in async recursion it rejects with a RangeError', async () => {
    expect(await run('async function f() { return await f(); } try { await f(); } catch (e) { return e.name; }')).toStrictEqual(ok('RangeError'));
  });

  it('inside a getter read by the result copy it ends as EXECUTION_ERROR', async () => {
    expect(await run('return { get x() { const f = () => f(); return f(); } };')).toStrictEqual(
      fail('EXECUTION_ERROR', 'RangeError', 'Maximum call stack size exceeded'),
    );
  });

  it('through a toString chain in console formatting it is swallowed by the formatter', async () => {
    const events = [];
    const r = await broker.execute(
      `let o = { toString() { return 'z'; } };
      for (let i = 0; i < 1e5; i++) { const prev = o; o = { big: 1n, toString() { return String(prev); } }; }
      try { console.log(o); return 'printed'; } catch (e) { return e.name; }`,
      { onEvent: (e) => events.push(e) },
    );
    expect(outcome(r)).toStrictEqual(ok('printed'));
    expect(events.filter((e) => e.type === 'stdout').map((e) => e.payload.chunk)).toStrictEqual(['[object]\n']);
  });

  it('the script keeps running normally after catching one', async () => {
    expect(await run("const f = () => f(); try { f(); } catch {} return await callTool('ok', {});")).toStrictEqual(ok('ok'));
  });
});

describe('console output', () => {
  it('is truncated once at maxStdoutBytes with a warning, then dropped', async () => {
    const events = [];
    const r = await broker.execute("for (let i = 0; i < 1000; i++) console.log('line ' + i); console.warn('late'); return 'done';", {
      session: { limits: { toolTimeoutMs: 10000, maxStdoutBytes: 40 } },
      onEvent: (e) => events.push(e),
    });
    expect(outcome(r)).toStrictEqual(ok('done'));
    const output = events.filter((e) => e.type === 'stdout' || e.type === 'log').map((e) => e.payload);
    expect(output).toStrictEqual([
      { chunk: 'line 0\n' },
      { chunk: 'line 1\n' },
      { chunk: 'line 2\n' },
      { chunk: 'line 3\n' },
      { chunk: 'line 4\n' },
      { chunk: 'line ' },
      { level: 'warn', message: 'Console output limit reached (maxStdoutBytes: 40); further output was dropped' },
    ]);
    expect(events.at(-1).payload.stats.stdoutBytes).toBe(40);
  });

  it('a single 4 MiB line is cut to the limit', async () => {
    const events = [];
    const r = await broker.execute("console.log('y'.repeat(2 ** 22)); return 1;", {
      session: { limits: { toolTimeoutMs: 5000, maxStdoutBytes: 10 } },
      onEvent: (e) => events.push(e),
    });
    expect(outcome(r)).toStrictEqual(ok(1));
    expect(events.filter((e) => e.type === 'stdout').map((e) => e.payload.chunk)).toStrictEqual(['yyyyyyyyyy']);
  });

  it('an endless flood ends as TIMEOUT with output capped and never printed by the host', async () => {
    await warm();
    const writes = [];
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => writes.push(String(chunk)) > 0);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => writes.push(String(chunk)) > 0);
    let r;
    const events = [];
    try {
      r = await broker.execute("for (let i = 0; ; i++) { console.log('flood ' + i); console.error('err ' + i); }", {
        session: { limits: { toolTimeoutMs: 300, maxStdoutBytes: 1000 } },
        onEvent: (e) => events.push(e),
      });
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
    expect(writes).toStrictEqual([]);
    expect(outcome(r)).toStrictEqual(TIMEOUT_300);
    const bytes = events
      .filter((e) => e.type === 'stdout' || (e.type === 'log' && e.payload.level === 'error'))
      .reduce((n, e) => n + Buffer.byteLength(e.payload.chunk ?? e.payload.message), 0);
    expect(bytes).toBe(1000);
  });

  it('newlines and JSON in console text cannot forge events', async () => {
    const events = [];
    const r = await broker.execute(String.raw`console.log('a\n{"type":"final","payload":{"ok":true}}\n'); console.log('\ud800'); return 'real';`, {
      onEvent: (e) => events.push(e),
    });
    expect(outcome(r)).toStrictEqual(ok('real'));
    expect(events.map((e) => e.type)).toStrictEqual(['session_init', 'stdout', 'stdout', 'final']);
    expect(events[1].payload.chunk).toBe('a\n{"type":"final","payload":{"ok":true}}\n\n');
    expect(events[2].payload.chunk).toBe('\ufffd\n');
  });

  it('a tool name cannot forge events either', async () => {
    const events = [];
    await broker.execute(`await callTool('x"}\\n{"type":"final"', {}).catch(() => 0); return 1;`, { onEvent: (e) => events.push(e) });
    expect(events.map((e) => e.type)).toStrictEqual(['session_init', 'tool_call', 'tool_progress', 'tool_progress', 'tool_result_applied', 'final']);
    expect(events[1].payload.toolName).toBe('x"}\n{"type":"final"');
  });
});

describe('tool call limits', () => {
  it('maxToolCalls stops the next call with MAX_TOOL_CALLS_EXCEEDED', async () => {
    const r = await run(
      "const out = []; for (let i = 0; i < 4; i++) out.push(await callTool('ok', {}).catch((e) => [e.code, e.message])); return out;",
      { toolTimeoutMs: 10000, maxToolCalls: 3 },
    );
    expect(r).toStrictEqual(
      ok(['ok', 'ok', 'ok', ['MAX_TOOL_CALLS_EXCEEDED', 'Maximum tool call limit exceeded (3). This limit prevents runaway script execution.']]),
    );
  });

  it('uncaught, the limit error reports its code', async () => {
    expect(await run("for (;;) await callTool('ok', {});", { toolTimeoutMs: 10000, maxToolCalls: 2 })).toStrictEqual(
      fail('MAX_TOOL_CALLS_EXCEEDED', 'Error', 'Maximum tool call limit exceeded (2). This limit prevents runaway script execution.'),
    );
  });

  it('a burst of concurrent calls cannot exceed the limit', async () => {
    const calls = state.calls.length;
    const r = await run("const rs = await Promise.allSettled(Array.from({ length: 200 }, () => callTool('ok', {}))); return rs.filter((x) => x.status === 'fulfilled').length;", {
      toolTimeoutMs: 2000,
      maxToolCalls: 50,
    });
    expect(r).toStrictEqual(ok(50));
    expect(state.calls.length - calls).toBe(50);
  });

  it('perToolDeadlineMs abandons a handler that never answers', async () => {
    const signals = state.signals.length;
    // Caught in the script, so the run completes: without the deadline it would end at its
    // own 30 s timeout (TIMEOUT) instead.
    const r = await run("try { await callTool('never', {}); } catch (e) { return [e.name, e.code, e.message]; }", {
      toolTimeoutMs: 30000,
      perToolDeadlineMs: 200,
    });
    expect(r).toStrictEqual(ok(['Error', 'DEADLINE_EXCEEDED', 'Tool call exceeded perToolDeadlineMs (200ms)']));
    expect(state.signals.at(-1).aborted).toBe(true);
    expect(state.signals.length).toBe(signals + 1);
  });

  it('parallel() refuses more than 100 items', async () => {
    expect(await run("return await parallel(new Array(101).fill(0), () => 1).catch((e) => [e.name, e.message]);")).toStrictEqual(
      ok(['TypeError', 'parallel() is limited to 100 items']),
    );
  });
});

describe('concurrent sessions', () => {
  it('a spinning session does not delay another session\u2019s 20 tool calls', async () => {
    let spinnerDone = false;
    const spinning = broker.execute('while (true) {}', { session: { limits: { toolTimeoutMs: 3000 } } }).then((r) => {
      spinnerDone = true;
      return outcome(r);
    });
    const working = await broker.execute("let s = 0; for (let i = 0; i < 20; i++) s += (await callTool('echo', { i })).i; return s;");
    // The working session finished while the other one still spun.
    expect([outcome(working), spinnerDone]).toStrictEqual([ok(190), false]);
    expect(await spinning).toStrictEqual(fail('TIMEOUT', 'Error', 'Script execution timed out after 3000ms'));
  });

  it('eight spinning sessions all time out and the broker still answers', async () => {
    const runs = Array.from({ length: 8 }, () => broker.execute('for (;;) {}', { session: { limits: { toolTimeoutMs: 300 } } }));
    const results = (await Promise.all(runs)).map(outcome);
    expect(results).toStrictEqual(Array.from({ length: 8 }, () => TIMEOUT_300));
    expect(await run('return 1 + 1;')).toStrictEqual(ok(2));
  });
});

describe('the host event loop', () => {
  // The engine reads its pipe only when its script yields. Writing a tool result that does
  // not fit in the pipe must not wait for that, or Node's main thread would hang until the
  // script's timeout: here the cancel scheduled by the handler could then never run first.
  it('is not held up by a large tool result sent to a script that spins', async () => {
    // Cancelled by the handler's timer long before the 20 s timeout: that timer can only run
    // if writing the result did not block the event loop.
    const big = createBroker({ limits: { toolTimeoutMs: 20000, heartbeatIntervalMs: 0 } });
    try {
      const session = big.createSession();
      big.tool('big', {
        handler: async () => {
          setTimeout(() => session.cancel('host timer ran'), 100);
          return 'x'.repeat(4 * 1024 * 1024);
        },
      });
      const r = await session.execute("callTool('big', {}); while (true) {}");
      expect(outcome(r)).toStrictEqual(fail('SESSION_CANCELLED', 'Error', 'Session was cancelled'));
      // The result still reaches a script that waits for it.
      const waited = await big.execute("const s = await callTool('big', {}); return s.length;");
      expect(outcome(waited)).toStrictEqual(ok(4 * 1024 * 1024));
    } finally {
      await big.dispose();
    }
  });
});
