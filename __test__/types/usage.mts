// An ES-module TypeScript consumer of the package (index.mjs at run time), written as a user of
// @enclave-vm/broker writes it; only type-checked, by __test__/types.test.mjs. Every
// `@ts-expect-error` line is a misuse the declarations must reject.
import { z } from 'zod';
import express from 'express';
import pkg, {
  createBroker,
  createSessionHandler,
  registerExpressRoutes,
  createEventFilter,
  createTypeFilter,
  EnclaveBroker,
  createRuntimeWorker,
  type RuntimeEndpointStatus,
  type RuntimeStats,
  type StreamEvent,
  type ToolDefinition,
  type SessionFinalResult,
} from 'enclave-broker-rs';
import * as namespace from 'enclave-broker-rs';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | void {}

// The default export is the CommonJS module object, the same objects as the named exports.
assertType<Equal<typeof pkg.createBroker, typeof createBroker>>();
assertType<Equal<typeof namespace.EnclaveBroker, typeof EnclaveBroker>>();
assertType<Equal<typeof pkg, typeof namespace.default>>();

const broker = createBroker({ limits: { heartbeatIntervalMs: 0 } });

const weather = {
  description: 'Current weather for a city',
  argsSchema: z.object({ city: z.string().min(1), units: z.enum(['c', 'f']).default('c') }),
  handler: async ({ city, units }: { city: string; units: 'c' | 'f' }) => ({ city, units, temperature: 21 }),
};
broker.tool('weather', weather).tool('time', {
  argsSchema: z.object({ timezone: z.string().optional() }),
  handler: async ({ timezone }) => new Date().toLocaleString('en-US', { timeZone: timezone }),
});

const stdout: string[] = [];
let finalEvent: Extract<StreamEvent, { type: 'final' }> | undefined;
const result = await broker.execute(
  `const w = await callTool('weather', { city: 'Paris' });
   console.log('temperature', w.temperature);
   return w;`,
  {
    onEvent: (event) => {
      if (event.type === 'stdout') stdout.push(event.payload.chunk);
      else if (event.type === 'log') stdout.push(`[${event.payload.level}] ${event.payload.message}`);
      else if (event.type === 'tool_call') stdout.push(`${event.payload.toolName}(${JSON.stringify(event.payload.args)})`);
      else if (event.type === 'final') finalEvent = event;
      // @ts-expect-error `toolName` exists only on tool_call payloads
      else void event.payload.toolName;
    },
  },
);
const typed: SessionFinalResult = result;
void typed;
if (finalEvent?.payload.ok === false) void finalEvent.payload.error.code;
if (!result.success) throw new Error(`${result.error.code}: ${result.error.message}`);

// A session driven by hand.
const session = broker.createSession();
const seen: StreamEvent[] = [];
session.onEvent((event) => seen.push(event));
const [first] = await Promise.all([session.execute('return 1'), session.wait()]);
void first.stats.toolCallCount;
// @ts-expect-error wait() takes no arguments
await session.wait(1000);

// HTTP with Express, ESM style.
const app = express();
app.use(express.json());
registerExpressRoutes(app, createSessionHandler({ broker }));

const filter = createEventFilter({ config: createTypeFilter('exclude', ['heartbeat', 'tool_progress']) });
const visible: StreamEvent[] = filter.filter(seen);
void visible;

// The seed API's broker.
const server = new EnclaveBroker({ maxConcurrentSessions: 10, cors: false });
await server.listen(0, '127.0.0.1');
await server.close();

const definition: ToolDefinition<{ q: string }, string[]> = {
  name: 'search',
  argsSchema: z.object({ q: z.string() }),
  handler: async ({ q }) => [q],
};
// @ts-expect-error the schema's output does not match the declared arguments
const wrong: ToolDefinition<{ q: number }> = { name: 'search', argsSchema: z.object({ q: z.string() }), handler: async () => 1 };
void [definition, wrong];

await broker.dispose();

// Extracted mode (seed 003): a runtime worker, and a broker that runs scripts on it.
const worker = createRuntimeWorker({ port: 3001, auth: { token: 't' }, defaultLimits: { toolTimeoutMs: 1000 } });
await worker.start();
const workerStats: RuntimeStats = worker.getStats();
const remote = createBroker({
  mode: 'extracted',
  runtimeUrls: ['ws://localhost:3001'],
  runtimeToken: 't',
  runtimeConnection: { connectTimeoutMs: 1000, reconnect: { maxDelayMs: 2000 } },
});
const endpoints: RuntimeEndpointStatus[] = remote.getRuntimeStatus();
const mode: 'embedded' | 'extracted' = remote.mode;
// @ts-expect-error not a mode
createBroker({ mode: 'remote' });
// @ts-expect-error the worker holds no tools
createRuntimeWorker({ tools: {} });
void [workerStats, endpoints, mode, worker.port, worker.url];
await worker.stop({ timeout: 100 });
