// The seed documents' code samples that use the package (../shared/seeds/, see README.md there),
// each verbatim, run against this package and type-checked with `tsc --strict --module nodenext`.
//
// A sample imports '@enclave-vm/broker' (and seed 004's '@enclave-vm/types'); IMPORTS maps those
// to this package and its `types` subpath, and that is the only change made to a sample's text,
// but for one port (see LISTEN_ON_A_FREE_PORT). What a sample leaves undefined on purpose (a
// `database`, a `verifyJWT`, the `broker` of a fragment) comes from its `standIns`, prepended;
// what the test does to observe the sample's effect is its `after`, appended, which prints
// `RESULT <json>` lines for `check`. Samples not run are listed in NOT_RUN with the reason.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/index.mjs';
import { startRedis } from './helpers/redis.mjs';
import { runSample, sampleProject, transpile, typeCheck } from './helpers/samples.mjs';

// A template tag for samples: the text as written, with \` and \${ standing for ` and ${.
const ts = (strings, ...values) => String.raw(strings, ...values).replaceAll('\\`', '`').replaceAll('\\${', '${');

const IMPORTS = [
  ["'@enclave-vm/broker'", "'enclave-broker-rs'"],
  ["'@enclave-vm/types'", "'enclave-broker-rs/types'"],
];
// Samples that listen on port 3001 bind a free port instead, so test runs never collide.
const LISTEN_ON_A_FREE_PORT = ['broker.listen(3001)', 'broker.listen(0)'];

const SEEDS = {
  '000': '000_43b5ffa187a0dc2d.txt',
  '001': '001_df471a791f486322.txt',
  '003': '003_60d47a5dfc5d848a.txt',
  '004': '004_5656912fe52fd99b.txt',
};

// `POST <path>` to a listening broker, JSON in, status and text out.
const HTTP = `
const http = async (broker, method, route, { body, headers = {} } = {}) => {
  const response = await fetch('http://127.0.0.1:' + broker.port + route, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, text: await response.text() };
};
`;

const SAMPLES = [
  {
    seed: '000',
    title: 'listen(port)',
    standIns: ts`import { EnclaveBroker } from '@enclave-vm/broker';`,
    code: ts`const broker = new EnclaveBroker({ /* options */ });
await broker.listen(3001);
console.log('Broker listening on port 3001');
`,
    after: `${HTTP}
      const health = await http(broker, 'GET', '/health');
      console.log('RESULT', JSON.stringify({ port: broker.port, health: health.status, body: JSON.parse(health.text) }));
      await broker.close();`,
    check: ({ results: [r], lines }) => {
      expect(lines).toEqual(['Broker listening on port 3001']);
      expect(r.port).toBeGreaterThan(0);
      expect(r.health).toBe(200);
      expect(r.body.status).toBe('ok');
    },
  },
  {
    seed: '000',
    title: 'execute(code, options) as a stream',
    standIns: ts`import { createBroker } from '@enclave-vm/broker';
const broker = createBroker();
const code = "console.log('hello'); return 1 + 2";`,
    code: ts`const stream = broker.execute(code, { timeout: 30000 });

for await (const event of stream) {
  console.log(event.type, event.payload);
}
`,
    check: ({ lines }) => {
      expect(lines.map((l) => l.split(' ')[0])).toEqual(['session_init', 'stdout', 'final']);
      expect(lines[1]).toBe("stdout { chunk: 'hello\\n' }");
      expect(lines[2]).toContain('ok: true, result: 3');
    },
  },
  {
    seed: '000',
    title: 'ToolRegistry.register (parameters form)',
    standIns: ts`import { ToolRegistry } from '@enclave-vm/broker';
const USERS = Array.from({ length: 12 }, (_, i) => ({ id: i + 1 }));
const db = { users: { findAll: async ({ limit }: { limit?: number }) => USERS.slice(0, limit) } };`,
    code: ts`const registry = new ToolRegistry();

registry.register({
  name: 'users:list',
  description: 'List all users',
  parameters: {
    limit: {
      type: 'number',
      description: 'Max users to return',
      default: 10,
    },
  },
  handler: async (args) => {
    return db.users.findAll({ limit: args.limit });
  },
});
`,
    after: `
      const byDefault = await registry.execute('users:list', {});
      const three = await registry.execute('users:list', { limit: 3 });
      const wrong = await registry.execute('users:list', { limit: 'all' });
      console.log('RESULT', JSON.stringify([byDefault.value.length, three.value.length, wrong.error.code]));`,
    check: ({ results: [r] }) => expect(r).toEqual([10, 3, 'VALIDATION_ERROR']),
  },
  {
    seed: '000',
    title: 'authentication',
    standIns: ts`import { EnclaveBroker } from '@enclave-vm/broker';
const verifyJWT = (token: string) => ({ sub: 'user-' + token, permissions: ['users:read'] });`,
    code: ts`const broker = new EnclaveBroker({
  authentication: {
    type: 'bearer',
    validate: async (token) => {
      const decoded = verifyJWT(token);
      return {
        valid: true,
        userId: decoded.sub,
        permissions: decoded.permissions,
      };
    },
  },
});
`,
    after: `${HTTP}
      await broker.listen(0);
      const body = { code: 'return 1 + 2' };
      const signedIn = await http(broker, 'POST', '/execute', { body, headers: { authorization: 'Bearer abc' } });
      const anonymous = await http(broker, 'POST', '/execute', { body });
      const final = JSON.parse(signedIn.text.trim().split('\\n').at(-1));
      console.log('RESULT', JSON.stringify({ signedIn: signedIn.status, final: final.payload, anonymous: anonymous.status, error: JSON.parse(anonymous.text).code }));
      await broker.close();`,
    check: ({ results: [r] }) => {
      expect(r.signedIn).toBe(200);
      expect(r.final).toMatchObject({ ok: true, result: 3 });
      expect(r.anonymous).toBe(401);
      expect(r.error).toBe('UNAUTHORIZED');
    },
  },
  {
    seed: '000',
    title: 'rate limiting',
    standIns: ts`import { EnclaveBroker } from '@enclave-vm/broker';`,
    code: ts`const broker = new EnclaveBroker({
  rateLimiting: {
    windowMs: 60000,
    maxRequests: 100,
    keyGenerator: (req) => req.headers['x-api-key'] || req.ip,
  },
});
`,
    after: `${HTTP}
      await broker.listen(0);
      const statuses = [];
      for (let i = 0; i < 101; i++) statuses.push((await http(broker, 'GET', '/sessions', { headers: { 'x-api-key': 'k1' } })).status);
      const otherKey = await http(broker, 'GET', '/sessions', { headers: { 'x-api-key': 'k2' } });
      console.log('RESULT', JSON.stringify({ ok: statuses.filter((s) => s === 200).length, last: statuses.at(-1), otherKey: otherKey.status }));
      await broker.close();`,
    check: ({ results: [r] }) => expect(r).toEqual({ ok: 100, last: 429, otherKey: 200 }),
  },
  {
    seed: '000',
    title: 'BrokerEvents (on a createBroker() broker)',
    standIns: ts`import { createBroker } from '@enclave-vm/broker';
const broker = createBroker();`,
    code: ts`broker.on('session:created', (session) => { });
broker.on('session:completed', (session, result) => { });
broker.on('session:error', (session, error) => { });
broker.on('tool:called', (session, tool, args) => { });
broker.on('tool:completed', (session, tool, result) => { });
`,
    after: `
      broker.tool('add', { handler: ({ a, b }) => a + b });
      const result = await broker.execute("return await callTool('add', { a: 1, b: 2 })");
      const names = ['session:created', 'session:completed', 'session:error', 'tool:called', 'tool:completed'];
      console.log('RESULT', JSON.stringify({ value: result.value, listeners: names.map((n) => broker.listenerCount(n)) }));
      await broker.dispose();`,
    check: ({ results: [r] }) => expect(r).toEqual({ value: 3, listeners: [1, 1, 1, 1, 1] }),
  },
  {
    seed: '000',
    title: 'Complete Example (with Redis)',
    code: ts`import { EnclaveBroker, ToolRegistry } from '@enclave-vm/broker';
import Redis from 'ioredis';

// Create tool registry
const tools = new ToolRegistry();

tools.register({
  name: 'users:list',
  description: 'List users',
  parameters: {
    limit: { type: 'number', description: 'Max results' },
  },
  handler: async (args) => {
    return [
      { id: '1', name: 'Alice' },
      { id: '2', name: 'Bob' },
    ].slice(0, args.limit || 10);
  },
});

tools.register({
  name: 'users:get',
  description: 'Get user by ID',
  parameters: {
    id: { type: 'string', description: 'User ID', required: true },
  },
  handler: async (args) => {
    return { id: args.id, name: 'Alice' };
  },
});

// Create broker
const broker = new EnclaveBroker({
  redis: new Redis(process.env.REDIS_URL),
  tools,
  sessionTimeout: 300000,
  maxConcurrentSessions: 1000,
  rateLimiting: {
    windowMs: 60000,
    maxRequests: 100,
  },
});

// Event handlers
broker.on('session:created', (session) => {
  console.log('Session created:', session.id);
});

broker.on('tool:called', (session, tool, args) => {
  console.log(\`Tool called: \${tool}\`, args);
});

// Start server
await broker.listen(3001);
console.log('Broker running on port 3001');

// Graceful shutdown
process.on('SIGTERM', async () => {
  await broker.close();
  process.exit(0);
});
`,
    // Run against a real Redis (REDIS_URL): one execution through the server, then the
    // SIGTERM a process manager would send, which the sample's own handler answers.
    after: `${HTTP}
      const executed = await http(broker, 'POST', '/execute', { body: { code: "return await callTool('users:list', { limit: 1 })" } });
      const final = JSON.parse(executed.text.trim().split('\\n').at(-1));
      const health = JSON.parse((await http(broker, 'GET', '/health')).text);
      console.log('RESULT', JSON.stringify({ status: executed.status, final: final.payload, health: health.status, redis: health.redis.status }));
      process.kill(process.pid, 'SIGTERM');`,
    check: ({ status, results: [r], lines }) => {
      expect(status).toBe(0);
      expect(r).toMatchObject({ status: 200, final: { ok: true, result: [{ id: '1', name: 'Alice' }] }, health: 'ok', redis: 'ready' });
      expect(lines).toEqual([
        'Broker running on port 3001',
        expect.stringMatching(/^Session created: s_[0-9a-f-]{36}$/),
        'Tool called: users:list { limit: 1 }',
      ]);
    },
    typeCheck: {
      reason:
        "ioredis's types (a CommonJS package declaring `export default`) give an ES module under NodeNext the module object as its default import, which tsc says is not constructable; Node gives the Redis class, and the sample runs",
      diagnostics: [[2351, 'redis: new Redis(process.env.REDIS_URL),']],
    },
  },
  {
    seed: '001',
    title: 'Quick Start: the embedder-driven tool loop',
    code: ts`import { Broker, createSession } from '@enclave-vm/broker';

// Create a broker with tool handlers
const broker = new Broker({
  tools: {
    'users:get': async (args) => {
      return { id: args.id, name: 'Alice' };
    },
    'users:list': async () => {
      return [
        { id: 1, name: 'Alice' },
        { id: 2, name: 'Bob' },
      ];
    },
  },
});

// Create a session
const session = await broker.createSession({
  allowedTools: ['users:*'], // Glob pattern for allowed tools
  timeout: 30000,
  maxToolCalls: 100,
});

// Handle incoming messages
session.on('tool_call', async (call) => {
  const result = await broker.executeToolCall(session.id, call);
  session.send({ type: 'tool_result', id: call.id, data: result });
});
`,
    after: `
      const calls = [];
      session.on('tool_call', (call) => calls.push(call));
      const result = await session.execute(
        "const u = await callTool('users:get', { id: 7 }); const all = await callTool('users:list', {}); return { u, n: all.length }",
      );
      console.log('RESULT', JSON.stringify({ result, calls }));
      await broker.dispose();`,
    check: ({ results: [{ result, calls }] }) => {
      expect(result).toMatchObject({ success: true, value: { u: { id: 7, name: 'Alice' }, n: 2 } });
      expect(calls.map((c) => [c.name, c.args])).toEqual([['users:get', { id: 7 }], ['users:list', {}]]);
      for (const call of calls) expect(call.id).toMatch(/^c_[0-9a-f-]{36}$/);
    },
  },
  {
    seed: '001',
    title: 'Session Management',
    code: ts`import { SessionManager } from '@enclave-vm/broker';

const manager = new SessionManager({
  maxConcurrentSessions: 100,
  sessionTimeout: 60000, // 1 minute
  cleanupInterval: 10000, // 10 seconds
});

// Create session
const session = await manager.create({
  userId: 'user_123',
  metadata: { source: 'api' },
});

// Get session
const retrieved = manager.get(session.id);

// List active sessions
const sessions = manager.list({ userId: 'user_123' });

// Destroy session
await manager.destroy(session.id);
`,
    after: `
      console.log('RESULT', JSON.stringify({
        retrieved: retrieved.sessionId === session.id,
        listed: sessions.map((s) => [s.userId, s.metadata]),
        afterDestroy: manager.has(session.id),
      }));
      await manager.dispose();`,
    check: ({ results: [r] }) => expect(r).toEqual({ retrieved: true, listed: [['user_123', { source: 'api' }]], afterDestroy: false }),
  },
  {
    seed: '001',
    title: 'Tool Routing',
    standIns: ts`const database: Record<string, (args: any) => Promise<unknown>> = { query: async ({ sql }) => [{ sql }] };
const externalApi = { call: async (name: string, args: unknown) => ({ name, args }) };`,
    code: ts`import { ToolRouter } from '@enclave-vm/broker';

const router = new ToolRouter();

// Register tools with glob patterns
router.register('db:*', {
  handler: async (name, args) => {
    const operation = name.split(':')[1];
    return await database[operation](args);
  },
  rateLimit: { maxCalls: 100, windowMs: 60000 },
});

router.register('api:external:*', {
  handler: async (name, args) => {
    return await externalApi.call(name, args);
  },
  requiresAuth: true,
});

// Execute tool call
const result = await router.execute('db:query', { sql: 'SELECT * FROM users' });
`,
    after: `
      let refused;
      try {
        await router.execute('api:external:weather', {});
      } catch (error) {
        refused = error.code;
      }
      console.log('RESULT', JSON.stringify({ result, refused }));`,
    check: ({ results: [r] }) => expect(r).toEqual({ result: [{ sql: 'SELECT * FROM users' }], refused: 'UNAUTHORIZED' }),
  },
  {
    seed: '001',
    title: 'Access Control',
    code: ts`import { AccessController } from '@enclave-vm/broker';

const access = new AccessController({
  defaultPolicy: 'deny',
  rules: [
    { pattern: 'public:*', allow: true },
    { pattern: 'admin:*', allow: false, unless: { role: 'admin' } },
    { pattern: 'user:*:read', allow: true },
    { pattern: 'user:*:write', allow: false, unless: { owner: true } },
  ],
});

// Check access
const canAccess = access.check('admin:delete', { role: 'user' }); // false
const canRead = access.check('user:profile:read', {}); // true
`,
    after: `console.log('RESULT', JSON.stringify({ canAccess, canRead }));`,
    check: ({ results: [r] }) => expect(r).toEqual({ canAccess: false, canRead: true }),
  },
  {
    seed: '001',
    title: 'Middleware',
    standIns: ts`const isValidArgs = (name: string, args: unknown) => name !== 'users:drop';`,
    code: ts`import { Broker } from '@enclave-vm/broker';

const broker = new Broker({
  middleware: [
    // Logging middleware
    async (call, next) => {
      console.log(\`Tool call: \${call.name}\`);
      const start = Date.now();
      const result = await next(call);
      console.log(\`Completed in \${Date.now() - start}ms\`);
      return result;
    },
    // Validation middleware
    async (call, next) => {
      if (!isValidArgs(call.name, call.args)) {
        throw new Error('Invalid arguments');
      }
      return next(call);
    },
  ],
  tools: {
    // ... tool handlers
  },
});
`,
    after: `
      broker.tool('users:get', { handler: ({ id }) => ({ id }) });
      broker.tool('users:drop', { handler: () => 'dropped' });
      const ok = await broker.execute("return await callTool('users:get', { id: 1 })");
      const refused = await broker.execute("return await callTool('users:drop', {})");
      console.log('RESULT', JSON.stringify({ ok: ok.value, refused: refused.error }));
      await broker.dispose();`,
    check: ({ results: [r], lines }) => {
      expect(r.ok).toEqual({ id: 1 });
      expect(r.refused).toMatchObject({ code: 'EXECUTION_ERROR', message: 'Invalid arguments' });
      expect(lines[0]).toBe('Tool call: users:get');
      expect(lines[1]).toMatch(/^Completed in \d+ms$/);
      expect(lines[2]).toBe('Tool call: users:drop');
    },
  },
  {
    seed: '001',
    title: 'Rate Limiting',
    standIns: ts`const sessionId = 's_seed';
const toolName = 'expensive:report';`,
    code: ts`import { RateLimiter } from '@enclave-vm/broker';

const limiter = new RateLimiter({
  global: { maxCalls: 1000, windowMs: 60000 },
  perSession: { maxCalls: 100, windowMs: 60000 },
  perTool: {
    'expensive:*': { maxCalls: 10, windowMs: 60000 },
  },
});

// Check rate limit before execution
if (!limiter.allow(sessionId, toolName)) {
  throw new Error('Rate limit exceeded');
}
`,
    after: `
      const more = Array.from({ length: 10 }, () => limiter.allow(sessionId, toolName));
      console.log('RESULT', JSON.stringify(more));`,
    // perTool allows 10 a minute: the sample's call and 9 more, then no.
    check: ({ results: [r] }) => expect(r).toEqual([...Array(9).fill(true), false]),
  },
  {
    seed: '003',
    title: 'Server Setup (securityLevel, broker.tool with zod, streaming execute)',
    code: ts`import { Broker, createBroker } from '@enclave-vm/broker';
import { z } from 'zod';

const broker = createBroker({
  securityLevel: 'SECURE',
});

// Register a tool
broker.tool('getCurrentTime', {
  description: 'Get the current time',
  argsSchema: z.object({
    timezone: z.string().optional(),
  }),
  handler: async ({ timezone }) => {
    return new Date().toLocaleString('en-US', { timeZone: timezone });
  },
});

// Execute code with streaming
const stream = broker.execute(\`
  const time = await tools.getCurrentTime({ timezone: 'America/New_York' });
  console.log('Current time:', time);
  return time;
\`);

for await (const event of stream) {
  console.log(event.type, event.payload);
}
`,
    // The sample's script calls `tools.getCurrentTime(...)`: the sandbox offers `callTool(name, args)`
    // only, as the original does (C11 in docs/compatibility.md), so the script ends with its ReferenceError as data.
    check: ({ status, lines }) => {
      expect(status).toBe(0);
      expect(lines.map((l) => l.split(' ')[0])).toEqual(['session_init', 'final']);
      expect(lines[1]).toContain("error: { code: 'EXECUTION_ERROR', message: 'tools is not defined' }");
    },
  },
  {
    seed: '003',
    title: 'Embedded Mode',
    standIns: ts`import { createBroker } from '@enclave-vm/broker';`,
    code: ts`const broker = createBroker({ mode: 'embedded' });
`,
    after: `
      const result = await broker.execute('return 40 + 2');
      console.log('RESULT', JSON.stringify(result.value));
      await broker.dispose();`,
    check: ({ results: [r] }) => expect(r).toBe(42),
  },
  {
    seed: '003',
    title: 'Extracted Mode (the broker half)',
    standIns: ts`import { createBroker } from '@enclave-vm/broker';`,
    code: ts`// Broker
const broker = createBroker({
  mode: 'extracted',
  runtimeUrl: 'ws://localhost:3001',
});

`,
    after: `
      console.log('RESULT', JSON.stringify({ mode: broker.mode, urls: broker.getRuntimeStatus().map((e) => e.url) }));
      await broker.dispose();`,
    check: ({ results: [r] }) => expect(r).toEqual({ mode: 'extracted', urls: ['ws://localhost:3001/ws'] }),
  },
  {
    seed: '004',
    title: 'Session and Call IDs',
    standIns: ts`const id: string = 's_0b1c2d3e-0000-4000-8000-000000000000';`,
    code: ts`import {
  generateSessionId,
  generateCallId,
  generateRefId,
  isSessionId,
  isCallId,
  isRefId,
  SESSION_ID_PREFIX,  // 'ses_'
  CALL_ID_PREFIX,     // 'call_'
  REF_ID_PREFIX,      // 'ref_'
  PROTOCOL_VERSION,   // 1
} from '@enclave-vm/types';

// Generate unique IDs
const sessionId = generateSessionId();  // 'ses_a1b2c3d4-...'
const callId = generateCallId();        // 'call_e5f6g7h8-...'
const refId = generateRefId();          // 'ref_i9j0k1l2-...'

// Type guards
if (isSessionId(id)) {
  // id is SessionId
}
`,
    after: `
      console.log('RESULT', JSON.stringify({
        sessionId, callId, refId, PROTOCOL_VERSION,
        guards: [isSessionId(id), isCallId(callId), isRefId(refId), isSessionId(callId)],
        prefixes: [SESSION_ID_PREFIX, CALL_ID_PREFIX, REF_ID_PREFIX],
      }));`,
    // The published package's prefixes and version (its comments say 'ses_', 'call_' and 1).
    check: ({ results: [r] }) => {
      expect(r.sessionId).toMatch(/^s_[0-9a-f-]{36}$/);
      expect(r.callId).toMatch(/^c_[0-9a-f-]{36}$/);
      expect(r.refId).toMatch(/^ref_[0-9a-f-]{36}$/);
      expect(r.PROTOCOL_VERSION).toBe(2);
      expect(r.guards).toEqual([true, true, true, false]);
      expect(r.prefixes).toEqual(['s_', 'c_', 'ref_']);
    },
  },
  {
    seed: '004',
    title: 'Zod Schemas',
    standIns: ts`const jsonData: unknown = JSON.parse(
  '{"protocolVersion":2,"sessionId":"s_0b1c2d3e-0000-4000-8000-000000000000","seq":1,"type":"session_init",' +
    '"payload":{"cancelUrl":"/sessions/s_0b1c2d3e-0000-4000-8000-000000000000/cancel",' +
    '"expiresAt":"2026-01-01T00:00:00.000Z","encryption":{"enabled":false}}}',
);`,
    code: ts`import {
  SessionIdSchema,
  StreamEventSchema,
  SessionInitEventSchema,
  ToolCallEventSchema,
  parseStreamEvent,
} from '@enclave-vm/types';

// Validate a session ID
const result = SessionIdSchema.safeParse('ses_abc123');
if (result.success) {
  console.log('Valid session ID:', result.data);
}

// Parse and validate stream events
const parsed = parseStreamEvent(jsonData);
if (parsed.success) {
  const event = parsed.data;
  // event is typed as StreamEvent
}
`,
    after: `console.log('RESULT', JSON.stringify({ id: result.success, event: parsed.success, type: parsed.data?.type }));`,
    // 'ses_abc123' is not a session id of the published protocol ('s_' prefix); the event parses.
    check: ({ results: [r], lines }) => {
      expect(lines).toEqual([]);
      expect(r).toEqual({ id: false, event: true, type: 'session_init' });
    },
  },
];

// Samples in the seeds that are not run, and why.
const NOT_RUN = [
  ['000', 'signatures and interfaces (`new EnclaveBroker(options: BrokerOptions)`, `interface BrokerOptions`, HTTP bodies)', 'declarations, not code: index.d.ts declares them, checked by __test__/types.test.mjs'],
  ['000', '`npm install`, `curl -X POST http://localhost:3001/execute`', 'shell commands: the route is tested in __test__/enclave-broker.test.mjs'],
  ['001', '`npm install` / `yarn add` / `pnpm add`', 'shell commands that install the package: __test__/install.test.mjs'],
  ['002', 'everything', 'a garbled copy of 001 (seeds/README.md)'],
  ['003', 'the architecture diagram, the React client', 'a diagram, and another package (@enclave-vm/react)'],
  ['003', 'the runtime-worker half of Extracted Mode', 'it listens on port 3001: __test__/runtime-worker.test.mjs runs both halves together as written, on a free port'],
  ['004', 'Session State Machine', 'redeclares the imported `SessionState` as a local type; SessionState has the published values (types-subpath tests)'],
  ['004', 'Session Limits, Event Types, Event Structures, Encryption Types, Event Filtering Types, Runtime Channel Messages, Reference Tokens', "the seed's names and shapes (`timeout`/`maxConsoleBytes` limits, `EventType.SESSION_INIT`, events with `timestamp` and seq 0, `{ type: 'client_hello', publicKey }`, `FilterMode.INCLUDE`, `{ __ref }`) differ from the published @enclave-vm/types 2.15.2, which this package follows (contract 1.W, C13-C16, C24); its real names are tested in __test__/types-subpath.test.mjs"],
];

// stdout as the lines a sample printed: what console.log spreads over several lines (an
// object) is one line again, its whitespace collapsed.
function printedLines(stdout) {
  const lines = [];
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    if (/^[\s}\]]/.test(line) && lines.length > 0) lines[lines.length - 1] += ` ${line.trim()}`;
    else lines.push(line);
  }
  return lines;
}

// ENCLAVE_SEEDS_DIR, else shared/seeds beside the checkout (as on the development machines and CI).
const seedsDir = [process.env.ENCLAVE_SEEDS_DIR, path.join(ROOT, '..', 'shared', 'seeds')].find((dir) => dir && fs.existsSync(dir));
const fileOf = (sample, i) => `seed-${sample.seed}-${i}.mts`;
const withImports = (text) => IMPORTS.reduce((t, [from, to]) => t.replaceAll(from, to), text);
const sourceOf = (sample) => withImports(`${sample.standIns ?? ''}\n${sample.code}`).replace(...LISTEN_ON_A_FREE_PORT);

describe('seed samples', () => {
  let project;
  let diagnostics;
  // The Complete Example's REDIS_URL: a real redis-server.
  let redis;

  beforeAll(async () => {
    project = sampleProject();
    redis = await startRedis();
    const files = Object.fromEntries(SAMPLES.map((s, i) => [fileOf(s, i), sourceOf(s)]));
    diagnostics = typeCheck(files);
  }, 120000);

  afterAll(async () => {
    project?.cleanup();
    await redis?.cleanup();
  });

  it('each sample is verbatim in its seed document', () => {
    expect(seedsDir, 'the seed documents (ENCLAVE_SEEDS_DIR, or ../shared/seeds next to the checkout)').toBeDefined();
    for (const sample of SAMPLES) {
      const seed = fs.readFileSync(path.join(seedsDir, SEEDS[sample.seed]), 'utf8');
      expect(seed.includes(sample.code), `${sample.seed} ${sample.title}: not verbatim`).toBe(true);
    }
    expect(NOT_RUN.every(([, what, why]) => what.length > 0 && why.length > 20)).toBe(true);
  });

  it('type-checks under tsc --strict --module nodenext', () => {
    for (const [i, sample] of SAMPLES.entries()) {
      const found = diagnostics[fileOf(sample, i)];
      if (sample.typeCheck === undefined) {
        expect(found, `${sample.seed} ${sample.title}`).toEqual([]);
      } else {
        // An excluded sample fails exactly as its reason says, so the reason cannot go stale.
        const lines = sourceOf(sample).split('\n');
        expect(found.map((d) => [d.code, lines[d.line - 1].trim()]), sample.typeCheck.reason).toEqual(sample.typeCheck.diagnostics);
      }
    }
  });

  for (const [i, sample] of SAMPLES.entries()) {
    it(`${sample.seed}: ${sample.title}`, { timeout: 90000 }, async () => {
      const source = `${transpile(sourceOf(sample))}\n${sample.after ?? ''}\n`;
      const run = await runSample(project.dir, fileOf(sample, i).replace(/\.mts$/, '.mjs'), source, { env: { REDIS_URL: redis.url } });
      const out = printedLines(run.stdout);
      const results = out.filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice('RESULT '.length)));
      const lines = out.filter((l) => !l.startsWith('RESULT '));
      if (sample.after !== undefined) expect(run.stderr, 'stderr').toBe('');
      sample.check({ ...run, results, lines });
    });
  }
});
