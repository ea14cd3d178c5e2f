// A CommonJS TypeScript consumer of the package, written the way a user of @enclave-vm/broker
// writes it. It is only type-checked (by __test__/types.test.mjs), never run. Every
// `@ts-expect-error` line is a misuse the declarations must reject: if one stops being an
// error, the compiler reports the unused directive and the test fails.
import { z } from 'zod';
import { z as z3 } from 'zod3';
import express from 'express';
import {
  Broker,
  BrokerSession,
  EnclaveBroker,
  EventFilter,
  SessionHandler,
  SessionManager,
  ToolRegistry,
  createBroker,
  createBrokerSession,
  createContentFilter,
  createEventFilter,
  createExpressRouter,
  createSessionHandler,
  createSessionManager,
  createToolRegistry,
  createTypeFilter,
  registerExpressRoutes,
} from 'enclave-broker-rs';
// Every type export of the original package (1.A in docs/compatibility.md).
import type {
  BrokerConfig,
  ExecuteOptions,
  ToolDefinition,
  ToolHandler,
  ToolContext,
  ToolValidationResult,
  ToolExecutionResult,
  BrokerSessionConfig,
  SessionManagerConfig,
  SessionInfo,
  CreateSessionResult,
  SessionHandlerConfig,
  RouteHandler,
  BrokerRequest,
  BrokerResponse,
  CreateSessionRequest,
  SessionInfoResponse,
  ListSessionsResponse,
  ErrorResponse,
  StreamOptions,
  EventFilterOptions,
  OpenApiPollerConfig,
  ChangeDetectionMode,
  PollerRetryConfig,
  OpenApiPollerEvents,
  LoaderOptions,
  UpstreamAuth,
  OpenApiSourceConfig,
  OpenApiSourceStats,
  ToolsUpdatedEvent,
  SourceHealthStatus,
  CatalogAction,
  CatalogService,
  CatalogResponse,
} from 'enclave-broker-rs';
// Protocol types users otherwise import from @enclave-vm/types / @enclave-vm/core.
import type {
  StreamEvent,
  SessionFinalResult,
  ExecutionStats,
  ErrorPayload,
  EventFilterConfig,
  SessionStateValue,
  FinalEvent,
  EnclaveBrokerOptions,
} from 'enclave-broker-rs';

import { CatalogHandler, OpenApiSource, OpenApiToolLoader } from 'enclave-broker-rs';

// Exact type equality: Equal<A, B> is `true` only when A and B are the same type.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | void {}

declare const code: string;

// A handler typed on its own, then registered.
const describeCall: ToolHandler<{ id: string }, string> = async ({ id }, ctx) => `${id}:${ctx.callId}`;

async function brokerBasics(): Promise<void> {
  const config: BrokerConfig = {
    limits: { maxToolCalls: 10, heartbeatIntervalMs: 0, deadlineMs: 5000 },
    enclave: { securityLevel: 'STRICT', globals: { tenant: 't1' }, memoryLimit: 16 * 1024 * 1024 },
    sessions: { maxSessions: 5, cleanupIntervalMs: 10000 },
  };
  const broker = createBroker(config);
  const chained: Broker = broker
    .tool('users:get', {
      description: 'Get a user by id',
      argsSchema: z.object({ id: z.string(), verbose: z.boolean().default(false), tag: z.string().optional() }),
      secrets: ['API_KEY'],
      handler: async (args, ctx) => {
        assertType<Equal<typeof args, { id: string; verbose: boolean; tag?: string | undefined }>>();
        assertType<Equal<typeof ctx, ToolContext>>();
        const key: string | undefined = ctx.secrets['API_KEY'];
        if (ctx.signal.aborted) throw new Error('aborted');
        return { id: args.id, name: 'Alice', key, session: ctx.sessionId, call: ctx.callId };
      },
    })
    // zod 3 schemas fit as well.
    .tool('double', { argsSchema: z3.object({ n: z3.number() }), handler: async ({ n }) => n * 2 })
    // A handler may return a plain value.
    .tool('answer', { handler: () => 42 })
    // The seed API's `parameters` form, with arguments typed from the description.
    .tool('search', {
      description: 'Search',
      parameters: {
        q: { type: 'string', description: 'query', required: true },
        limit: { type: 'number', description: 'max results', default: 10 },
        tags: { type: 'array' },
      },
      handler: async (args) => {
        assertType<Equal<typeof args, { q: string; limit: number; tags?: unknown[] | undefined }>>();
        // @ts-expect-error tags is optional (no `required`, no `default`)
        void args.tags.length;
        return [args.q.toUpperCase(), args.limit.toFixed(0)];
      },
    })
    .secret('API_KEY', 'k')
    .secrets({ OTHER: 'o' });
  void chained;

  broker.tools({
    inc: { argsSchema: z.object({ x: z.number() }), handler: async ({ x }) => x + 1 },
    hello: { handler: async () => 'hello' },
  });

  const events: StreamEvent[] = [];
  const options: ExecuteOptions = {
    session: { limits: { toolTimeoutMs: 1000 } },
    onEvent(event) {
      events.push(event);
      assertType<Equal<typeof event.protocolVersion, 2>>();
      const seq: number = event.seq;
      const sessionId: string = event.sessionId;
      void seq;
      void sessionId;
      switch (event.type) {
        case 'session_init':
          event.payload.cancelUrl.endsWith('/cancel');
          void event.payload.encryption.enabled;
          Date.parse(event.payload.expiresAt);
          break;
        case 'stdout':
          event.payload.chunk.trimEnd();
          // @ts-expect-error stdout payloads are `{chunk}` only
          void event.payload.data;
          break;
        case 'log': {
          assertType<Equal<typeof event.payload.level, 'debug' | 'info' | 'warn' | 'error'>>();
          const message: string = event.payload.message;
          const data: Record<string, unknown> | undefined = event.payload.data;
          void message;
          void data;
          break;
        }
        case 'tool_call':
          event.payload.toolName.toUpperCase();
          event.payload.callId.startsWith('c_');
          Object.keys(event.payload.args);
          break;
        case 'tool_progress':
          assertType<Equal<typeof event.payload.phase, 'connecting' | 'sending' | 'receiving' | 'processing'>>();
          event.payload.elapsedMs.toFixed();
          event.payload.bytesReceived?.toFixed();
          break;
        case 'tool_result_applied':
          void event.payload.callId;
          break;
        case 'heartbeat':
          void event.payload.ts;
          break;
        case 'partial_result':
          event.payload.path.join('.');
          event.payload.error?.details?.forEach((d) => (d.type === 'retry_info' ? d.retryDelayMs : 0));
          break;
        case 'deadline_exceeded':
          void (event.payload.budgetMs - event.payload.elapsedMs);
          break;
        case 'error':
          void event.payload.recoverable;
          event.payload.code.toLowerCase();
          break;
        case 'catalog_changed':
          event.payload.addedActions.concat(event.payload.removedActions);
          break;
        case 'final':
          void event.payload.stats.stdoutBytes;
          void event.payload.stats.toolCallCount;
          if (event.payload.ok) {
            const result: unknown = event.payload.result;
            void result;
          } else {
            event.payload.error.code.toLowerCase();
          }
          break;
        default: {
          const unreachable: never = event;
          void unreachable;
        }
      }
      // @ts-expect-error the payload is unknown until the event is narrowed on `type`
      void event.payload.chunk;
    },
  };
  const result = await broker.execute(code, options);
  assertType<Equal<typeof result, SessionFinalResult>>();
  if (result.success) {
    const value: unknown = result.value;
    assertType<Equal<typeof result.finalState, 'completed'>>();
    void value;
  } else {
    result.error.message.toUpperCase();
    void result.error.name;
    result.error.code?.toLowerCase();
    assertType<Equal<typeof result.finalState, 'cancelled' | 'failed'>>();
  }
  // @ts-expect-error `error` is possibly undefined until `success` is checked
  void result.error.message;
  // @ts-expect-error the value is unknown
  result.value.toFixed();
  const stats: ExecutionStats = result.stats;
  void (stats.duration + stats.toolCallCount + stats.iterationCount + stats.startTime + stats.endTime);

  // Sessions
  const session = broker.createSession({ sessionId: 's_custom', limits: { sessionTtlMs: 1000 } });
  const off: () => void = session.onEvent((event) => {
    if (event.type === 'final' && !event.payload.ok) void event.payload.error.message;
  });
  off();
  const state: SessionStateValue = session.state;
  // @ts-expect-error not a session state
  if (session.state === 'pending') void state;
  const first: SessionFinalResult = await session.execute('return 1');
  const same: SessionFinalResult = await session.wait();
  void first;
  void same;
  await session.cancel('no longer needed');
  session.emitToolProgress('c_1', 'receiving', 10, 100, 1000);
  // @ts-expect-error not a progress phase
  session.emitToolProgress('c_1', 'downloading', 10);
  session.emitPartialResult(['users', '0'], { id: 1 }, { code: 'UPSTREAM', message: 'failed', details: [{ type: 'retry_info', retryDelayMs: 5 }] }, false);
  session.events.emitStdout('chunk');
  session.events.emitLog('warn', 'careful', { retry: true });
  // @ts-expect-error not a log level
  session.events.emitLog('fatal', 'x');
  const partialErrors: ErrorPayload[] = session.getPartialErrors();
  const history: StreamEvent[] = session.getEvents();
  const finals = history.filter((e): e is FinalEvent => e.type === 'final');
  void partialErrors;
  void finals;
  const times: number = session.createdAt + session.expiresAt + session.seq;
  void times;
  void session.getStats().toolCallCount;
  void (session.isExpired() || session.isTerminal());
  session.dispose();
  // @ts-expect-error sessionId is read-only
  session.sessionId = 's_other';

  const found = broker.getSession('s_custom');
  // @ts-expect-error getSession returns undefined for unknown ids
  void found.sessionId;
  if (found !== undefined) void found.sessionId;
  const infos: SessionInfo[] = broker.listSessions().concat(broker.listActiveSessions());
  for (const info of infos) {
    const isExpired: boolean = info.isExpired;
    void isExpired;
  }
  const terminated: boolean = await broker.terminateSession('s_custom', 'bye');
  void terminated;
  const { tools, activeSessions, totalSessions } = broker.stats();
  void (tools + activeSessions + totalSessions);
  const cleaned: number = broker.cleanup();
  void cleaned;
  const sources: readonly OpenApiSource[] = broker.getOpenApiSources();
  void sources;
  void (broker.hasTool('search') && broker.removeTool('search'));
  broker.listTools().map((name) => name.length);
  void (broker.hasSecret('API_KEY') && broker.removeSecret('API_KEY'));
  await broker.dispose();
  const disposed: boolean = broker.isDisposed;
  void disposed;

  // Misuse the declarations must reject.
  broker.tool('typed', {
    argsSchema: z.object({ a: z.string() }),
    // @ts-expect-error `b` is not in the schema
    handler: async (args) => args.b,
  });
  // @ts-expect-error the handler's arguments contradict the schema
  broker.tool('contradiction', { argsSchema: z.object({ a: z.string() }), handler: async (args: { a: number }) => args.a });
  // @ts-expect-error a parameter needs one of the five types
  broker.tool('bad-param', { parameters: { when: { type: 'date' } }, handler: async () => 1 });
  // @ts-expect-error a tool needs a handler
  broker.tool('no-handler', { description: 'nothing' });
  // @ts-expect-error the code must be a string
  await broker.execute(42);
  // @ts-expect-error misspelled limit
  createBroker({ limits: { maxToolCals: 3 } });
  const source: OpenApiSource = broker.openapi({ name: 'svc', url: 'https://example.com/openapi.json', baseUrl: 'https://example.com' });
  source.on('toolsUpdated', (event) => void event.added.length);
  // @ts-expect-error an OpenAPI source needs a name
  broker.openapi({ url: 'https://example.com/openapi.json', baseUrl: 'https://example.com' });
  const loader = await OpenApiToolLoader.fromSpec({ openapi: '3.0.0', paths: {} }, { baseUrl: 'https://example.com' });
  void [loader.getToolNames(), new CatalogHandler(createToolRegistry(), [source]).buildCatalog().version];
  // Seed API: the same value is async-iterable over the run's events.
  const run = broker.execute('return 1', { timeout: 100, maxToolCalls: 2, context: { userId: 'u1' }, filter: { types: ['stdout'] } });
  for await (const event of run) {
    if (event.type === 'stdout') event.payload.chunk.toUpperCase();
  }
  assertType<Equal<Awaited<typeof run>, SessionFinalResult>>();
  // @ts-expect-error filter types are event types
  broker.execute('return 1', { filter: { types: ['stdot'] } });
  // @ts-expect-error the seed timeout is a number of milliseconds
  broker.execute('return 1', { timeout: '1s' });
  broker.createSession({ timeout: 100, maxToolCalls: 3, allowedTools: ['users:*'] });
  const listening = new EnclaveBroker();
  listening
    .on('session:completed', (done, final) => void [done.sessionId, final.finalState])
    .on('session:error', (_failed, error) => error.message.toUpperCase())
    .once('tool:called', (_caller, tool, args) => void [tool.length, args]);
  // @ts-expect-error not a broker event
  listening.on('session:started', () => {});
  // @ts-expect-error a tool event's second argument is the tool's name
  listening.on('tool:completed', (_caller, tool: number) => void tool);
  createBroker({
    middleware: [
      async (call, next) => {
        void [call.name, call.context.sessionId];
        return next({ ...call, args: { ...call.args, extra: 1 } });
      },
    ],
  });
  // @ts-expect-error middleware is a list of functions
  createBroker({ middleware: async () => 1 });
  const seedManager = new SessionManager({ maxConcurrentSessions: 10, sessionTimeout: 60000 });
  const owned = seedManager.create({ userId: 'u1', metadata: { source: 'api' } });
  void [owned.id, owned.session.id, seedManager.list({ userId: 'u1' })[0]?.metadata];
  // @ts-expect-error the seed options have no maxSessions
  const misnamed = new SessionManager({ maxSessions: 3 });
  void misnamed;
  // @ts-expect-error allowedTools is a list of patterns
  broker.createSession({ allowedTools: 'users:*' });
  // @ts-expect-error createSession is synchronous and takes no code
  broker.createSession('return 1');
}

async function registryAndManager(): Promise<void> {
  const registry: ToolRegistry = createToolRegistry();
  registry.register({
    name: 'users:list',
    argsSchema: z.object({ limit: z.number().int().default(10) }),
    handler: async ({ limit }) => Array.from({ length: limit }, (_, i) => ({ id: i })),
  });
  // The seed API's ToolRegistry example.
  registry.register({
    name: 'users:get',
    description: 'Get user by ID',
    parameters: { id: { type: 'string', description: 'User ID', required: true } },
    handler: async (args) => ({ id: args.id, name: 'Alice' }),
  });
  registry.replace({ name: 'users:list', handler: async () => [] });
  const def: ToolDefinition | undefined = registry.get('users:list');
  void def?.handler;
  const names: string[] = registry.list();
  const size: number = registry.size;
  void names;
  void size;
  const docs: string = registry.getDocumentation();
  void docs;
  registry.getConfigs();
  registry.setSecret('K', 'v');
  registry.getRequiredSecrets('users:get').includes('K');

  const validation: ToolValidationResult = registry.validate('users:list', { limit: 5 });
  if (validation.success) {
    const args: unknown = validation.validatedArgs;
    void args;
  } else {
    validation.error.startsWith('Invalid arguments: ');
  }
  // @ts-expect-error `error` is possibly undefined until `success` is checked
  void validation.error.length;

  const controller = new AbortController();
  const executed: ToolExecutionResult<number[]> = await registry.execute<number[]>('users:list', { limit: 1 }, {
    sessionId: 's_1',
    callId: 'c_1',
    signal: controller.signal,
  });
  if (executed.success) {
    void executed.value.length;
  } else {
    void executed.error.code;
    void executed.durationMs;
  }
  // @ts-expect-error the registry resolves secrets itself
  await registry.execute('users:list', {}, { sessionId: 's_1', callId: 'c_1', signal: controller.signal, secrets: {} });
  // @ts-expect-error a definition needs a name
  registry.register({ handler: async () => 1 });

  registry.register({ name: 'typed', handler: describeCall });

  // BrokerSession and SessionManager directly, as the original allows.
  const sessionConfig: BrokerSessionConfig = { limits: { perToolDeadlineMs: 100, cancelOnFirstError: true } };
  const direct = new BrokerSession(registry, sessionConfig);
  const fromObject = createBrokerSession({ toolRegistry: registry, sessionId: 's_docs', limits: { maxToolCalls: 1 } });
  const viaFactory: BrokerSession = createBrokerSession(registry);
  void direct;
  void fromObject;
  void viaFactory;

  const managerConfig: SessionManagerConfig = { maxSessions: 3, cleanupIntervalMs: 1000, defaultSessionConfig: { limits: {} } };
  const manager: SessionManager = createSessionManager(registry, managerConfig);
  const created: CreateSessionResult = manager.create({ limits: { heartbeatIntervalMs: 0 } });
  void (created.session.sessionId === created.sessionId);
  manager.get(created.sessionId)?.getStats();
  manager.has(created.sessionId);
  manager.list();
  manager.listActive();
  const waited: SessionFinalResult = await manager.executeAndWait('return 1', undefined, (event) => event.seq);
  void waited;
  const gone: boolean = await manager.terminate(created.sessionId);
  void gone;
  void (manager.activeCount + manager.totalCount + manager.cleanup());
  await manager.dispose();
  // @ts-expect-error the original needs the registry first
  void new SessionManager({ maxSessions: 3 });
}

async function http(): Promise<void> {
  const broker = new Broker();
  const handlerConfig: SessionHandlerConfig = { broker, cors: true, allowedOrigins: ['https://app.example'] };
  const handler: SessionHandler = createSessionHandler(handlerConfig);
  const tenants: SessionHandlerConfig = {
    broker,
    resolvePrincipal: async (req) => (typeof req.headers['x-user'] === 'string' ? req.headers['x-user'] : undefined),
    authorize: (principal, action, session) => principal === 'admin' && action !== 'delete' && session.owner !== null,
  };
  void createSessionHandler(tenants);
  const limits = (await broker.execute('return 1')).success ? broker.createSession().limits : undefined;
  const heartbeat: number | undefined = limits?.heartbeatIntervalMs;
  void heartbeat;

  // The original's Express setup.
  const app = express();
  app.use(express.json());
  registerExpressRoutes(app, handler);
  // The documented form with a broker and options.
  registerExpressRoutes(app, broker, { prefix: '/api/enclave', middleware: (_req, _res, next) => next() });
  // A router to mount; with `Router` given, its own type comes back.
  app.use('/enclave', createExpressRouter(handler));
  const router = createExpressRouter(broker, { Router: express.Router });
  assertType<Equal<typeof router, express.Router>>();
  app.use('/v2', router);
  // @ts-expect-error not a router
  registerExpressRoutes({}, handler);
  // @ts-expect-error needs a SessionHandler or a Broker
  registerExpressRoutes(app, { routes: [] });

  // Any other framework, through the duck-typed request and response.
  for (const route of handler.getRoutes()) {
    const method: 'GET' | 'POST' | 'DELETE' | 'OPTIONS' = route.method;
    const run: RouteHandler = route.handler;
    void method;
    void run;
  }
  const body: CreateSessionRequest = {
    code: 'return 1',
    sessionId: 's_client',
    config: { maxExecutionMs: 60000, maxToolCalls: 3, heartbeatIntervalMs: 1000 },
    filter: createTypeFilter('exclude', ['heartbeat']),
  };
  const request: BrokerRequest = {
    method: 'POST',
    path: '/sessions',
    params: {},
    query: {},
    body,
    headers: { 'content-type': 'application/json' },
    signal: new AbortController().signal,
  };
  const response: BrokerResponse = {
    status(_code) {
      return this;
    },
    json(_data) {},
    setHeader(_name, _value) {
      return this;
    },
    write(_chunk) {},
    end() {},
  };
  await handler.createSession(request, response);
  await handler.listSessions(request, response);
  await handler.streamSession({ ...request, params: { sessionId: 's_client' }, query: { fromSeq: '3' } }, response);

  const list: ListSessionsResponse = { sessions: [], total: 0 };
  const info: SessionInfoResponse = { sessionId: 's_1', state: 'running', createdAt: 0, expiresAt: 1, stats: { duration: 1, toolCallCount: 0 } };
  const failure: ErrorResponse = { code: 'NOT_FOUND', message: 'Session s_1 not found' };
  const stream: StreamOptions = { fromSeq: 1, heartbeats: false };
  void [list, info, failure, stream];
}

function filters(events: StreamEvent[]): StreamEvent[] {
  const onlyTools: EventFilterConfig = createTypeFilter('include', ['tool_call', 'tool_result_applied']);
  const options: EventFilterOptions = {
    config: createContentFilter('include', 'users:*', 'glob'),
    onError: (error, event) => void [error.message, event.type],
  };
  const byContent = createEventFilter(options);
  const custom = new EventFilter({
    config: {
      mode: 'exclude',
      alwaysAllow: ['session_init', 'final', 'error'],
      rules: [
        { types: { types: ['heartbeat'] } },
        { content: { patterns: [{ type: 'regex', pattern: '^secret', field: 'payload.toolName', caseInsensitive: true }], match: 'all' } },
      ],
    },
  });
  // @ts-expect-error not an event type
  createTypeFilter('include', ['tool_calls']);
  // @ts-expect-error a config needs rules
  void new EventFilter({ config: { mode: 'include' } });
  const kept: boolean = byContent.shouldSend(events[0]!) && new EventFilter({ config: onlyTools }).shouldSend(events[0]!);
  void kept;
  return custom.filter(events);
}

async function seedBroker(registry: ToolRegistry): Promise<void> {
  const options: EnclaveBrokerOptions = {
    tools: registry,
    sessionTimeout: 300000,
    maxConcurrentSessions: 1000,
    authentication: {
      type: 'bearer',
      validate: async (token) => ({ valid: token === 'secret', userId: 'u1', permissions: ['read'] }),
      maxFailures: 10,
      failureWindowMs: 60000,
    },
    // An admin view: admins may read and list every session.
    authorize: (principal, action, session) =>
      principal.userId === 'admin' && (action === 'read' || action === 'list') && session.owner.type !== 'anonymous',
    rateLimiting: { windowMs: 60000, maxRequests: 100, keyGenerator: (req) => req.principal?.id ?? req.ip },
    logger: console,
    limits: { heartbeatIntervalMs: 0 },
  };
  const broker = new EnclaveBroker(options);
  const asBroker: Broker = broker;
  void asBroker;
  const chained: EnclaveBroker = broker.tool('ping', { handler: async () => 'pong' });
  void chained;
  await broker.listen(3001);
  await broker.listen(0, '127.0.0.1');
  const port: number | undefined = broker.port;
  void port;
  await broker.close();
  await broker.close({ timeout: 0 });
  // The seed README's record of handler functions.
  createBroker({ tools: { 'users:get': async (args) => ({ id: args.id }) } });
  // @ts-expect-error the port is a number
  await broker.listen('3001');
  // Shared state: a URL (or an ioredis / node-redis client) and its tuning.
  const shared = new EnclaveBroker({ redis: 'redis://127.0.0.1:6379', cluster: { leaseMs: 2000, maxBufferBytes: 1 << 20 } });
  await shared.connect();
  await createBroker({ redis: 'rediss://cache.example:6380', cluster: { keyPrefix: 'app:' } }).connect();
  // @ts-expect-error neither a URL nor a Redis client
  void new EnclaveBroker({ redis: {} });
  // @ts-expect-error not an authentication type
  void new EnclaveBroker({ authentication: { type: 'oauth', validate: async () => ({ valid: true }) } });
}

// The OpenAPI config types.
const openapi: OpenApiSourceConfig = {
  name: 'users',
  url: 'https://api.example.com/openapi.json',
  baseUrl: 'https://api.example.com',
  intervalMs: 60000,
  changeDetection: 'etag' satisfies ChangeDetectionMode,
  retry: { maxRetries: 3 } satisfies PollerRetryConfig,
  loaderOptions: { sourceName: 'users', namingStrategy: (method, path) => `${method}:${path}` } satisfies LoaderOptions,
  auth: { type: 'api-key', token: 't', header: 'X-Key' } satisfies UpstreamAuth,
};
const poller: OpenApiPollerConfig = openapi;
const pollerEvents: OpenApiPollerEvents['changed'] = ['{}', 'hash'];
const sourceStats: OpenApiSourceStats = { toolCount: 1, lastUpdate: '', specHash: 'h', pollHealth: 'unknown' satisfies SourceHealthStatus };
const updated: ToolsUpdatedEvent = { added: [], removed: [], updated: [] };
const action: CatalogAction = { name: 'users_list', service: 'users' };
const service: CatalogService = { name: 'users', specUrl: '', lastUpdated: '', actionCount: 1 };
const catalog: CatalogResponse = { actions: [action], services: [service], version: 'empty' };

export { brokerBasics, registryAndManager, http, filters, seedBroker, poller, pollerEvents, sourceStats, updated, catalog };
// The rejected imports above, used so that only their import lines are errors.
void OpenApiSource;
export type { CatalogHandler };
