// Extracted mode gives what embedded mode gives: one table of scripts (tool calls, console
// output, thrown errors, every limit the session enforces, secrets, middleware, allowedTools,
// context) runs on a broker in each mode, the worker a separate `enclave-runtime` process on
// 127.0.0.1, and both must produce the same events and the same result. Ids, timestamps and
// durations are normalised; heartbeats are timing, not content, and are left out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBroker } from '../index.mjs';
import { workersStoppedAfterAll } from './helpers/runtime.mjs';

const startWorker = workersStoppedAfterAll();

const MIDDLEWARE = [
  async (call, next) => (call.name === 'echo' ? { echoed: await next({ ...call, args: { ...call.args, viaMiddleware: true } }) } : next(call)),
];

function setup(broker) {
  broker.secret('API_KEY', 'k-123456');
  broker.tool('echo', { handler: (args) => args });
  broker.tool('add', { argsSchema: z.object({ a: z.number(), b: z.number() }), handler: ({ a, b }) => a + b });
  broker.tool('fail', {
    handler: () => {
      const error = new Error('the backend is down');
      error.code = 'TOOL_DOWN';
      throw error;
    },
  });
  broker.tool('keyLength', { secrets: ['API_KEY'], handler: (_args, { secrets }) => secrets.API_KEY.length });
  broker.tool('needsMissing', { secrets: ['NOT_SET'], handler: () => 1 });
  broker.tool('big', { handler: ({ n }) => 'x'.repeat(n) });
  broker.tool('hang', { handler: () => new Promise(() => {}) });
  return broker;
}

const CASES = [
  {
    name: 'tool calls and console output',
    code: `console.log('start', 1);
      console.info('info');
      const sum = await callTool('add', { a: 2, b: 3 });
      console.warn('warn', sum);
      const echoed = await callTool('echo', { x: [1, 'é'] });
      console.error('error'); console.debug('debug');
      return { sum, echoed };`,
    expect: { value: { sum: 5, echoed: { echoed: { x: [1, 'é'], viaMiddleware: true } } } },
  },
  { name: 'a thrown Error after a tool call', code: "await callTool('echo', {}); throw new Error('boom')", expect: { code: 'EXECUTION_ERROR' } },
  {
    name: 'a thrown error of a custom class',
    code: "class MyError extends Error { constructor(m) { super(m); this.name = 'MyError'; } } throw new MyError('mine')",
    expect: { code: 'EXECUTION_ERROR', name: 'MyError' },
  },
  { name: 'a thrown TypeError', code: 'null.x', expect: { code: 'EXECUTION_ERROR', name: 'TypeError' } },
  { name: 'a thrown string', code: "throw 'plain'", expect: { code: 'EXECUTION_ERROR' } },
  { name: 'a syntax error', code: 'return (1 + ;', expect: { code: 'VALIDATION_ERROR', name: 'SyntaxError' } },
  { name: 'a tool error the script catches', code: "try { await callTool('fail', {}) } catch (e) { return [e.code, e.message] }", expect: { value: ['TOOL_DOWN', 'the backend is down'] } },
  { name: 'a tool error the script does not catch', code: "await callTool('fail', {})", expect: { code: 'TOOL_DOWN' } },
  { name: 'an unknown tool', code: "await callTool('nope', {})", expect: { code: 'UNKNOWN_TOOL' } },
  { name: 'arguments that fail the schema', code: "await callTool('add', { a: 'x' })", expect: { code: 'VALIDATION_ERROR' } },
  {
    name: 'maxToolCalls',
    code: "for (let i = 0; i < 3; i++) await callTool('echo', { i }); return 'done'",
    options: { maxToolCalls: 2 },
    expect: { code: 'MAX_TOOL_CALLS_EXCEEDED' },
  },
  {
    name: 'allowedTools',
    code: "try { await callTool('add', { a: 1, b: 2 }) } catch (e) { console.log(e.code) } return await callTool('echo', { ok: 1 })",
    options: { session: { allowedTools: ['echo'] } },
    expect: { value: { echoed: { ok: 1, viaMiddleware: true } } },
  },
  {
    name: 'secrets',
    code: "return [await callTool('keyLength', {}), await callTool('needsMissing', {}).catch((e) => e.code)]",
    expect: { value: [8, 'SECRET_ERROR'] },
  },
  { name: 'the script timeout', code: "console.log('spin'); while (true) {}", options: { timeout: 300 }, expect: { code: 'TIMEOUT' } },
  {
    name: 'maxStdoutBytes cuts on a character boundary',
    code: "console.log('ééééé'); console.log('more'); return 1",
    options: { session: { limits: { maxStdoutBytes: 10 } } },
    expect: { value: 1 },
  },
  {
    name: 'a tool result over maxToolResultBytes',
    code: "try { await callTool('big', { n: 1000 }) } catch (e) { return e.code }",
    options: { session: { limits: { maxToolResultBytes: 100 } } },
    expect: { value: 'TOOL_RESULT_TOO_LARGE' },
  },
  {
    name: 'tool arguments over maxToolResultBytes',
    code: "try { await callTool('echo', { s: 'y'.repeat(500) }) } catch (e) { return e.code }",
    options: { session: { limits: { maxToolResultBytes: 100 } } },
    expect: { value: 'TOOL_ARGS_TOO_LARGE' },
  },
  { name: 'context globals', code: 'return user.id + 1', options: { context: { user: { id: 7 } } }, expect: { value: 8 } },
  {
    name: 'values crossing the boundary',
    code: "return { d: new Date(0), m: new Map([['a', 1]]), s: new Set([1]), n: NaN, u: undefined, b: 10n }",
    expect: { value: { d: '1970-01-01T00:00:00.000Z', m: { a: 1 }, s: [1], n: null, b: '10' } },
  },
  { name: 'no return value', code: "const ignored = await callTool('echo', {});", expect: { value: undefined } },
  { name: 'a result over enclave.maxResultBytes', code: "return 'z'.repeat(100)", options: { session: { enclaveConfig: { maxResultBytes: 50 } } }, expect: { code: 'RESULT_TOO_LARGE' } },
  {
    name: 'the session deadline',
    code: "console.log('waiting'); await callTool('hang', {})",
    options: { session: { limits: { deadlineMs: 400 } } },
    expect: { code: 'DEADLINE_EXCEEDED' },
  },
  {
    name: 'perToolDeadlineMs',
    code: "try { await callTool('hang', {}) } catch (e) { console.log(e.code) } return 'after'",
    options: { session: { limits: { perToolDeadlineMs: 100 } } },
    expect: { value: 'after' },
  },
  {
    name: 'cancelOnFirstError',
    code: "await callTool('fail', {}).catch(() => {}); return await callTool('echo', {}).catch((e) => e.code)",
    options: { session: { limits: { cancelOnFirstError: true } } },
    expect: { value: 'SESSION_CANCELLED' },
  },
  {
    name: 'the memory limit',
    code: 'const keep = []; while (true) keep.push(new Array(1e5).fill(1))',
    options: { session: { enclaveConfig: { memoryLimit: 16 * 1024 * 1024 } } },
    expect: { code: 'MEMORY_LIMIT_EXCEEDED', name: 'MemoryLimitError' },
  },
];

// Ids become placeholders in order of appearance; times and durations are dropped.
function normalize(events) {
  const ids = new Map();
  const id = (value) => {
    if (!ids.has(value)) ids.set(value, `<id ${ids.size}>`);
    return ids.get(value);
  };
  const varying = new Set(['expiresAt', 'elapsedMs', 'durationMs', 'ts', 'cancelUrl']);
  return events
    .filter((event) => event.type !== 'heartbeat')
    .map((event) =>
      JSON.parse(JSON.stringify(event), (key, value) => {
        if (key === 'sessionId' || key === 'callId') return id(value);
        return varying.has(key) ? '<varies>' : value;
      }),
    );
}

// The heap in use when a memory limit is hit is a measurement (it depends on when V8's
// concurrent marking got to it, and on what the isolate ran before), like a duration.
function outcome(result) {
  const { stats, ...rest } = result;
  const error =
    rest.error == null ? undefined : { ...rest.error, message: rest.error.message.replace(/\(\d+\.\d+MB in use\)/, '(<varies>MB in use)') };
  return { ...rest, ...(error === undefined ? {} : { error }), toolCallCount: stats.toolCallCount };
}

let embedded;
let extracted;
let workerUrl;

beforeAll(async () => {
  const worker = await startWorker({ args: ['--max-sessions', '20'] });
  workerUrl = worker.url;
  embedded = setup(createBroker({ middleware: MIDDLEWARE }));
  extracted = setup(createBroker({ mode: 'extracted', runtimeUrl: worker.url, middleware: MIDDLEWARE }));
});

afterAll(async () => {
  await Promise.all([embedded?.dispose(), extracted?.dispose()]);
});

async function run(broker, testCase) {
  const events = [];
  const result = await broker.execute(testCase.code, { ...testCase.options, onEvent: (event) => events.push(event) });
  return { events, result };
}

describe('extracted mode gives the same events and result as embedded mode', () => {
  it('the brokers say which mode they are in', () => {
    expect([embedded.mode, extracted.mode]).toEqual(['embedded', 'extracted']);
  });

  for (const testCase of CASES) {
    it(testCase.name, async () => {
      const local = await run(embedded, testCase);
      const remote = await run(extracted, testCase);
      const { value, code, name } = testCase.expect;
      if (code !== undefined) {
        expect(local.result.error.code).toBe(code);
        if (name !== undefined) expect(local.result.error.name).toBe(name);
      } else {
        expect(local.result.success).toBe(true);
        expect(local.result.value).toEqual(value);
      }
      expect(outcome(remote.result)).toEqual(outcome(local.result));
      expect(normalize(remote.events)).toEqual(normalize(local.events));
    });
  }
});

// Stops from the broker's side, mid tool call: the run ends as cancelled, its pending call is
// closed and its handler's signal aborts, the same way in both modes.
const STOPS = [
  ['session.cancel()', (broker, session) => session.cancel('stop')],
  ['terminateSession()', (broker, session) => broker.terminateSession(session.sessionId)],
  ['dispose()', (broker) => broker.dispose()],
];

describe('stopping a run gives the same events in both modes', () => {
  for (const [name, stop] of STOPS) {
    it(name, async () => {
      const runs = [];
      for (const config of [{}, { mode: 'extracted', runtimeUrl: workerUrl }]) {
        const broker = createBroker(config);
        let aborted;
        const started = new Promise((resolve) => {
          broker.tool('hold', {
            handler: (_args, { signal }) => {
              aborted = new Promise((done) => signal.addEventListener('abort', () => done(true)));
              resolve();
              return new Promise(() => {});
            },
          });
        });
        const session = broker.createSession();
        const events = [];
        session.onEvent((event) => events.push(event));
        const result = session.execute("console.log('holding'); await callTool('hold', {})");
        await started;
        await stop(broker, session);
        runs.push({ result: await result, events, aborted: await aborted });
        await broker.dispose();
      }
      const [local, remote] = runs;
      expect(local.result.error.code).toBe('SESSION_CANCELLED');
      expect([local.aborted, remote.aborted]).toEqual([true, true]);
      expect(outcome(remote.result)).toEqual(outcome(local.result));
      expect(normalize(remote.events)).toEqual(normalize(local.events));
    });
  }
});
