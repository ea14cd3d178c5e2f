// Caps on what leaves the sandbox and what reaches JavaScript: an uncaught error's message
// and name, tool names, the number of console events per run, ICU memory held by Intl
// objects, and the pace at which a flood of events reaches listeners (bounded batches, so
// no session can stall Node's event loop).
import { afterAll, describe, expect, it } from 'vitest';
import { createBroker } from '../../index.mjs';
import { MiB, fail, memoryMessage, ok, outcome, runInChild } from './helpers.mjs';

const broker = createBroker({ limits: { toolTimeoutMs: 20000, heartbeatIntervalMs: 0 } });
broker.tool('echo', { handler: async (args) => args });

afterAll(async () => {
  await broker.dispose();
});

const run = async (code, options) => outcome(await broker.execute(code, options));

// Node's peak RSS in a fresh child process; a 64 MiB value crossing into it would show.
const SMALL_HOST_MIB = 120;

describe('an uncaught error leaving the sandbox', () => {
  it('has its message cut to 16 KiB, saying so, however long it was', async () => {
    const r = await run("throw new Error('x'.repeat(64 * 2 ** 20))");
    expect(r).toStrictEqual(fail('EXECUTION_ERROR', 'Error', `${'x'.repeat(16384)}… [cut: 67108864 characters in all]`));
  });

  it('is cut on a character boundary', async () => {
    const r = await run("throw new RangeError('\u00e9'.repeat(10000))");
    expect(r.error.message).toBe(`${'\u00e9'.repeat(8192)}… [cut: 10000 characters in all]`);
    expect(r.error.name).toBe('RangeError');
  });

  it('keeps a message of exactly 16 KiB whole', async () => {
    expect(await run("throw new Error('y'.repeat(16384))")).toStrictEqual(fail('EXECUTION_ERROR', 'Error', 'y'.repeat(16384)));
  });

  it('has its name cut to 256 bytes', async () => {
    const r = await run("const e = new Error('m'); e.name = 'N'.repeat(1e6); throw e;");
    expect(r).toStrictEqual(fail('EXECUTION_ERROR', `${'N'.repeat(256)}… [cut: 1000000 characters in all]`, 'm'));
  });

  it('never brings its 64 MiB message into the host', async () => {
    const r = await runInChild("throw new Error('x'.repeat(64 * 2 ** 20))", { limits: { toolTimeoutMs: 20000 } });
    expect(r.report.outcome.error.message).toHaveLength(16384 + '… [cut: 67108864 characters in all]'.length);
    expect(r.report.peakRssMiB).toBeLessThan(SMALL_HOST_MIB);
  });
});

describe('tool names', () => {
  const TOO_LONG = ['TOOL_NAME_TOO_LONG', 'Tool name exceeds maximum length (1024 bytes)'];

  it('over 1024 bytes are refused inside the sandbox, catchably, with no events and no call counted', async () => {
    const events = [];
    const r = await broker.execute(
      "try { await callTool('x'.repeat(16 * 2 ** 20), {}); } catch (e) { return [e.code, e.message]; }",
      { onEvent: (e) => events.push(e.type) },
    );
    expect(outcome(r)).toStrictEqual(ok(TOO_LONG));
    expect(r.stats.toolCallCount).toBe(0);
    expect(events).toStrictEqual(['session_init', 'final']);
  });

  it('uncaught, the refusal ends the run with its code', async () => {
    expect(await run("await callTool('t'.repeat(1025), {});")).toStrictEqual(fail('TOOL_NAME_TOO_LONG', 'Error', TOO_LONG[1]));
  });

  it('are measured in UTF-8 bytes: 1024 pass, 1025 do not', async () => {
    const r = await run(`
      const attempt = (name) => callTool(name, {}).then(() => 'called', (e) => e.code);
      return [await attempt('a'.repeat(1024)), await attempt('\u00e9'.repeat(512)), await attempt('a'.repeat(1025)), await attempt('\u00e9'.repeat(512) + 'a')];`);
    expect(r).toStrictEqual(ok(['UNKNOWN_TOOL', 'UNKNOWN_TOOL', 'TOOL_NAME_TOO_LONG', 'TOOL_NAME_TOO_LONG']));
  });

  it('over 1024 bytes cannot be registered', () => {
    expect(() => broker.tool('x'.repeat(1025), { handler: () => 1 })).toThrow(new TypeError('Tool name exceeds maximum length (1024 bytes)'));
    expect(broker.hasTool('x'.repeat(1025))).toBe(false);
  });

  it('five calls with 16 MiB names never bring the names into the host', async () => {
    const code = "const n = 'x'.repeat(16 * 2 ** 20); const codes = []; for (let i = 0; i < 5; i++) codes.push(await callTool(n, {}).catch((e) => e.code)); return codes;";
    const r = await runInChild(code, { limits: { toolTimeoutMs: 20000 } });
    expect(r.report.outcome).toStrictEqual(ok(Array(5).fill('TOOL_NAME_TOO_LONG')));
    expect(r.report.peakRssMiB).toBeLessThan(SMALL_HOST_MIB);
  });
});

const dropped = (limit) => ({ level: 'warn', message: `Console output limit reached (maxStdoutEvents: ${limit}); further output was dropped` });

describe('console events per run (maxStdoutEvents)', () => {
  it('262,144 one-byte console.log() calls within maxStdoutBytes make 10,000 events by default, then one warning', async () => {
    const events = [];
    const r = await broker.execute('for (let i = 0; i < 262144; i++) console.log(); return 1;', { onEvent: (e) => events.push(e) });
    expect(outcome(r)).toStrictEqual(ok(1));
    const output = events.filter((e) => e.type === 'stdout' || e.type === 'log');
    expect(output).toHaveLength(10001);
    expect(output.slice(0, 10000).every((e) => e.type === 'stdout' && e.payload.chunk === '\n')).toBe(true);
    expect(output.at(-1).payload).toStrictEqual(dropped(10000));
    expect(events.at(-1).payload.stats.stdoutBytes).toBe(10000);
  });

  it('is a session limit: console output stops after maxStdoutEvents calls, whatever their level', async () => {
    const events = [];
    const r = await broker.execute("console.log('a'); console.warn('b'); console.error('c'); console.info('d'); return 2;", {
      session: { limits: { maxStdoutEvents: 3 } },
      onEvent: (e) => events.push(e),
    });
    expect(outcome(r)).toStrictEqual(ok(2));
    expect(events.filter((e) => e.type === 'stdout' || e.type === 'log').map((e) => e.payload)).toStrictEqual([
      { chunk: 'a\n' },
      { level: 'warn', message: 'b' },
      { level: 'error', message: 'c' },
      dropped(3),
    ]);
  });

  it('must be a non-negative number', () => {
    expect(() => broker.createSession({ limits: { maxStdoutEvents: -1 } })).toThrow(
      new TypeError('Invalid session limit "maxStdoutEvents": expected a non-negative number, got -1'),
    );
  });
});

// Counts the events a listener receives between two turns of the event loop (a
// setImmediate ticker): deterministic, whatever the machine's speed.
async function perTurn(code, limits) {
  let turn = 0;
  let ticking = true;
  const tick = () => {
    turn++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const counts = new Map();
  const seqs = [];
  const r = await broker.execute(code, {
    session: { limits },
    onEvent: (e) => {
      seqs.push(e.seq);
      counts.set(turn, (counts.get(turn) ?? 0) + 1);
    },
  });
  ticking = false;
  return { r: outcome(r), most: Math.max(...counts.values()), seqs };
}

describe('events reaching JavaScript listeners', () => {
  it('arrive in bounded batches, every one in order exactly once, under a flood of 50,000 events', async () => {
    const { r, most, seqs } = await perTurn('for (let i = 0; i < 50000; i++) console.log(); return 1;', { maxStdoutEvents: 1e6 });
    expect(r).toStrictEqual(ok(1));
    expect(seqs).toStrictEqual(Array.from({ length: 50002 }, (_, i) => i + 1));
    // At most one batch of 256 per turn of the loop (two when an announcement and a
    // scheduled batch meet in the same turn).
    expect(most).toBeLessThanOrEqual(512);
  });
});

describe('ICU memory held by Intl objects', () => {
  const limits = { toolTimeoutMs: 20000 };

  it('counts against memoryLimit: kept DateTimeFormats end as MEMORY_LIMIT_EXCEEDED on ICU memory', async () => {
    const small = createBroker({ limits, enclave: { memoryLimit: 32 * MiB } });
    try {
      const r = await small.execute("const keep = []; for (;;) keep.push(new Intl.DateTimeFormat('en', { timeZone: 'UTC', dateStyle: 'full', timeStyle: 'long' }));");
      expect(outcome(r)).toStrictEqual({
        success: false,
        error: { code: 'MEMORY_LIMIT_EXCEEDED', name: 'MemoryLimitError', message: expect.stringMatching(/^Memory limit exceeded: Intl objects hold /) },
      });
      expect(r.error.message).toMatch(memoryMessage(32));
    } finally {
      await small.dispose();
    }
  });

  it('that is garbage is collected before it counts: 20,000 formatters made and dropped fit 32 MiB', async () => {
    const small = createBroker({ limits, enclave: { memoryLimit: 32 * MiB } });
    try {
      const r = await small.execute("let n = 0; for (let i = 0; i < 20000; i++) n += new Intl.DateTimeFormat('en', { timeZone: 'UTC' }).format(0).length; return n;");
      expect(outcome(r)).toStrictEqual(ok(160000));
    } finally {
      await small.dispose();
    }
  });
});
