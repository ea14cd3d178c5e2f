// `npm start`: a broker with a few example tools that serves the playground page on
// 127.0.0.1 (PORT, default 8787) and prints, one readable line each, what its sessions do:
// sessions starting and ending, every tool call with its outcome and duration, and the
// scripts' console output.
'use strict';

const { z } = require('zod');
const { EnclaveBroker } = require('..');

const users = [
  { id: 1, name: 'Ada', team: 'engines' },
  { id: 2, name: 'Grace', team: 'compilers' },
  { id: 3, name: 'Linus', team: 'engines' },
];

const MiB = 1024 * 1024;

function print(line) {
  process.stdout.write(`${line}\n`);
}

function clock() {
  return new Date().toISOString().slice(11, 23);
}

// At most `max` characters of `value` as JSON, arrays longer than 5 shown by their length.
function preview(value, max = 120) {
  if (value === undefined) return 'undefined';
  const text = Array.isArray(value) && value.length > 5 ? `[${value.length} items]` : JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function sessionLine(sessionId, text) {
  print(`${clock()} ${sessionId.slice(0, 10)} ${text}`);
}

// The calls that reached a handler, per session: a tool_result_applied of any other call
// was refused before its handler ran (invalid arguments, unknown tool, over maxToolCalls).
const handledCalls = new Map();

function handled(sessionId) {
  if (!handledCalls.has(sessionId)) handledCalls.set(sessionId, new Set());
  return handledCalls.get(sessionId);
}

// Around every tool handler: the call, then its outcome with the time it took.
async function logToolCall(call, next) {
  const { sessionId, callId } = call.context;
  handled(sessionId).add(callId);
  sessionLine(sessionId, `→ ${call.name} ${preview(call.args)}`);
  const started = performance.now();
  const took = () => `${Math.round(performance.now() - started)} ms`;
  try {
    const value = await next(call);
    sessionLine(sessionId, `← ${call.name} ok in ${took()}: ${preview(value)}`);
    return value;
  } catch (error) {
    sessionLine(sessionId, `✗ ${call.name} failed in ${took()}: ${error.code ?? 'Error'} ${error.message}`);
    throw error;
  }
}

const broker = new EnclaveBroker({
  playground: true,
  middleware: [logToolCall],
  // Frequent heartbeats, so the page shows how they fold; the memory a run may ask for.
  limits: { heartbeatIntervalMs: 1000 },
  enclave: { memoryLimit: 256 * MiB },
});

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve({ sleptMs: ms }), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(Object.assign(new Error('The sleep was cancelled'), { code: 'ABORTED' }));
    });
  });
}

broker
  .tool('users:list', {
    description: 'List users, optionally of one team',
    argsSchema: z.object({ team: z.string().optional() }),
    handler: async ({ team }) => users.filter((u) => team === undefined || u.team === team),
  })
  .tool('greeting:compose', {
    description: 'Compose a greeting for a list of names',
    argsSchema: z.object({ names: z.array(z.string()) }),
    handler: async ({ names }) => `Hello, ${names.join(' and ')}!`,
  })
  .tool('clock:sleep', {
    description: 'A slow tool: answers after `ms` milliseconds (at most 10 s)',
    argsSchema: z.object({ ms: z.number().int().min(0).max(10_000) }),
    handler: async ({ ms }, { signal }) => sleep(ms, signal),
  })
  .tool('payments:charge', {
    description: 'A tool that fails: every card is declined',
    argsSchema: z.object({ amount: z.number().positive(), currency: z.string().default('EUR') }),
    handler: async ({ amount, currency }) => {
      throw Object.assign(new Error(`Card declined for ${amount} ${currency}`), { code: 'CARD_DECLINED' });
    },
  })
  .tool('catalog:list', {
    description: 'A large result: `count` catalog items (default 10,000)',
    argsSchema: z.object({ count: z.number().int().min(0).max(100_000).default(10_000) }),
    handler: async ({ count }) =>
      Array.from({ length: count }, (_, i) => ({
        id: i + 1,
        name: `item-${String(i + 1).padStart(5, '0')}`,
        price: Math.round(((i * 7919) % 10_000) + 99) / 100,
        inStock: i % 3 !== 0,
      })),
  });

// Each session's own lines: its start, console output, refused calls and its end.
broker.on('session:created', (session) => {
  const id = session.id;
  let printed = 0;
  const show = (event) => {
    if (event.seq <= printed) return;
    printed = event.seq;
    const { type, payload } = event;
    if (type === 'session_init') {
      sessionLine(id, `session started${payload.encryption?.enabled ? ' (encrypted stream)' : ''}`);
    } else if (type === 'stdout') {
      sessionLine(id, `console: ${payload.chunk.replace(/\n$/, '')}`);
    } else if (type === 'log') {
      sessionLine(id, `console.${payload.level}: ${payload.message}`);
    } else if (type === 'tool_result_applied' && !handled(id).has(payload.callId)) {
      sessionLine(id, '✗ a tool call was refused before its handler ran');
    } else if (type === 'final') {
      handledCalls.delete(id);
      const { stats } = payload;
      const how = `in ${stats.durationMs} ms, ${stats.toolCallCount} tool call${stats.toolCallCount === 1 ? '' : 's'}`;
      sessionLine(
        id,
        payload.ok
          ? `completed ${how}: ${preview(payload.result)}`
          : `failed ${how}: ${payload.error.code} ${payload.error.message}`,
      );
    }
  };
  // Events emitted before this listener existed come from the history; `printed` skips
  // whatever both deliver.
  session.onEvent(show);
  for (const event of session.getEvents()) show(event);
});

async function listen() {
  const port = process.env.PORT === undefined ? 8787 : Number(process.env.PORT);
  try {
    await broker.listen(port, '127.0.0.1');
  } catch (error) {
    if (process.env.PORT !== undefined || !/in use/i.test(error.message)) throw error;
    print(`Port ${port} is in use; taking a free one (set PORT to choose).`);
    await broker.listen(0, '127.0.0.1');
  }
}

async function main() {
  await listen();
  const base = `http://127.0.0.1:${broker.port}`;
  print('enclave-broker-rs playground');
  print(`  page:  ${base}${broker.playgroundPath}`);
  print(`  API:   POST ${base}/execute (an NDJSON event stream)`);
  print('  tools: users:list, greeting:compose, clock:sleep (slow), payments:charge (fails), catalog:list (large)');
  print('Press Ctrl+C to stop.\n');
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    print(`${clock()} stopping: open streams get 1 s to finish`);
    await broker.close({ timeout: 1000 });
    print(`${clock()} stopped`);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
