// Type declarations for enclave-broker-rs: the public API of @enclave-vm/broker 2.15.2, plus
// the seed API's additions (EnclaveBroker, the `parameters` tool form, external tools).
// The same declarations serve `require('enclave-broker-rs')` and `import ... from
// 'enclave-broker-rs'`: index.mjs re-exports the CommonJS objects, and its default export is
// the whole module object, which is what TypeScript gives an ES module importing this file.
//
// Nothing here depends on zod's types or on @types/node: schemas are matched structurally.

// `ToolContext.signal` and `BrokerRequest.signal` are AbortSignals. Merging an empty
// interface into the global one keeps this file valid where neither the DOM library nor
// @types/node declares it (skipLibCheck off), and changes nothing where one does.
declare global {
  interface AbortSignal {}
}

// ============================================================================
// Protocol (@enclave-vm/types), as the broker's events and limits use it
// ============================================================================

/** The stream event types (`EventType` values of @enclave-vm/types). `'enc'` never appears on a broker stream. */
export type EventType =
  | 'session_init'
  | 'stdout'
  | 'log'
  | 'tool_call'
  | 'tool_result_applied'
  | 'final'
  | 'heartbeat'
  | 'error'
  | 'enc'
  | 'partial_result'
  | 'tool_progress'
  | 'deadline_exceeded'
  | 'catalog_changed';

/** A session's lifecycle state. `waiting_for_tool` is entered only by tools the client runs (`externalTools`). */
export type SessionStateValue = 'starting' | 'running' | 'waiting_for_tool' | 'completed' | 'cancelled' | 'failed';

/** Log levels of `log` events. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Event filter mode (`FilterMode` values of @enclave-vm/types). */
export type FilterMode = 'include' | 'exclude';

/** Content pattern kinds (`PatternType` values of @enclave-vm/types). */
export type PatternType = 'exact' | 'prefix' | 'regex' | 'glob';

/** Phases reported by `tool_progress` events. */
export type ToolProgressPhase = 'connecting' | 'sending' | 'receiving' | 'processing';

/**
 * Per-session resource limits (`SessionLimits` of @enclave-vm/types), all optional; unset keys take
 * `DEFAULT_SESSION_LIMITS`. Unlike the original, every limit is enforced as named: `toolTimeoutMs` is the
 * script's wall-clock timeout and also stops synchronous loops, `maxStdoutBytes` caps console output,
 * `maxToolResultBytes` caps each tool result.
 */
export interface SessionLimits {
  /** Session lifetime in ms (sets `expiresAt`; expired sessions are removed by cleanup). Default 60000. */
  sessionTtlMs?: number;
  /** Tool calls allowed per run. Default 50. */
  maxToolCalls?: number;
  /** Console output (stdout and log events) allowed per run, in bytes. Default 262144. */
  maxStdoutBytes?: number;
  /** Size allowed for one tool result and for one call's JSON arguments, in bytes (TOOL_RESULT_TOO_LARGE / TOOL_ARGS_TOO_LARGE). Default 5242880. */
  maxToolResultBytes?: number;
  /** Wall-clock timeout of the script in ms (the original's Enclave `timeout`); 0 = none. Default 30000. */
  toolTimeoutMs?: number;
  /** Heartbeat period in ms; 0 turns heartbeats off. Default 15000. */
  heartbeatIntervalMs?: number;
  /** Deadline for the whole session in ms, measured from its creation; stops a running script (DEADLINE_EXCEEDED). 0 = none. Default 0. */
  deadlineMs?: number;
  /** Deadline of one tool call in ms: the call rejects in the script with DEADLINE_EXCEEDED and `ToolContext.signal` aborts. Default 30000. */
  perToolDeadlineMs?: number;
  /** Make the next tool call fail with `Session cancelled` after a tool fails. Default false. */
  cancelOnFirstError?: boolean;
}

/** Session limits as the broker accepts them: the original's keys plus two aliases and `maxStdoutEvents`. */
export interface SessionLimitsInput extends SessionLimits {
  /** Console calls (stdout and log events) allowed per run, whatever their size; later output is dropped after one warning. Default 10000. */
  maxStdoutEvents?: number;
  /** Alias of `toolTimeoutMs` (seed documents); `toolTimeoutMs` wins when both are given. */
  timeout?: number;
  /** Alias of `enclave.memoryLimit` (a V8 heap limit), in bytes; wins over `enclave.memoryLimit` when both are given. */
  memoryLimit?: number;
}

/** Tool timing/retry settings (`ToolConfig` of @enclave-vm/types). Stored with the tool only: the broker enforces none of it, as in the original. */
export interface ToolConfig {
  timeout?: number;
  retryable?: boolean;
  maxRetries?: number;
  runtimeReadable?: boolean;
}

/** Typed detail of an `ErrorPayload`. */
export type ErrorDetail =
  | { type: 'retry_info'; retryDelayMs: number }
  | { type: 'upstream_info'; statusCode: number; url: string }
  | { type: 'validation_info'; field: string; reason: string }
  | { type: 'quota_info'; limit: number; used: number };

/** A per-path error, as carried by `partial_result` events and `final.payload.errors`. */
export interface ErrorPayload {
  code: string;
  message: string;
  path?: string[];
  details?: ErrorDetail[];
}

/** Statistics carried by every `final` event. `stdoutBytes` counts captured console output (always 0 in the original). */
export interface SessionStats {
  durationMs: number;
  toolCallCount: number;
  stdoutBytes: number;
}

/** The envelope every stream event has, in this key order; there is no timestamp. `seq` starts at 1 per session. */
export interface StreamEventBase<TType extends EventType, TPayload> {
  protocolVersion: 2;
  /** The session's id: `s_<uuid>` unless the caller chose one. */
  sessionId: string;
  seq: number;
  type: TType;
  payload: TPayload;
}

/** The seed protocol's ClientHello, sent in `POST /execute` / `POST /sessions` as `encryption.clientHello`. */
export interface ClientHello {
  protocolVersion: 2;
  /** The client's ephemeral P-256 public key: the uncompressed point (65 bytes), base64. */
  clientEphemeralPubKeyB64: string;
  curve: 'P-256';
  supportedAlgorithms: string[];
}

/** The server's answer, in `session_init.payload.encryption.serverHello`. */
export interface ServerHello {
  protocolVersion: 2;
  serverEphemeralPubKeyB64: string;
  curve: 'P-256';
  selectedAlgorithm: 'AES-GCM-256';
  kdf: 'HKDF-SHA-256';
  keyId: string;
}

/** `encryption` of a `listen()` server's `POST /execute` or `POST /sessions` body. */
export interface EncryptionRequest {
  mode: 'disabled' | 'optional' | 'required';
  clientHello?: ClientHello;
}

/** An encrypted event: the inner event's JSON under AES-256-GCM (tag appended), with a counter nonce. */
export interface EncryptedEnvelope {
  protocolVersion: 2;
  sessionId: string;
  seq: number;
  type: 'enc';
  payload: { kid: string; nonceB64: string; ciphertextB64: string };
}

/**
 * Payload of `session_init`: the first event of a run. `encryption.enabled` is false unless the
 * client asked the `listen()` server for an encrypted stream (then `keyId` and `serverHello` are set).
 */
export interface SessionInitPayload {
  cancelUrl: string;
  /** ISO 8601 time at which the session expires. */
  expiresAt: string;
  encryption: { enabled: boolean; keyId?: string; serverHello?: ServerHello };
  replayUrl?: string;
}

/** Payload of `stdout`: the script's console.log output, newline-terminated (never emitted by the original). */
export interface StdoutPayload {
  chunk: string;
}

/** Payload of `log`: the script's console.info/debug/warn/error output, or `session.events.emitLog` (never emitted by the original). */
export interface LogPayload {
  level: LogLevel;
  message: string;
  data?: Record<string, unknown>;
}

/** Payload of `tool_call`, emitted before the handler runs. `args` are the script's arguments before validation. */
export interface ToolCallPayload {
  callId: string;
  toolName: string;
  args: Record<string, unknown>;
}

/** Payload of `tool_result_applied`, emitted after the handler settled (success or failure). */
export interface ToolResultAppliedPayload {
  callId: string;
}

/** Payload of a successful `final` event. `result` is absent when the script returned undefined. */
export interface FinalSuccessPayload {
  ok: true;
  result?: unknown;
  error?: undefined;
  errors?: ErrorPayload[];
  stats: SessionStats;
}

/** Payload of a failed `final` event. */
export interface FinalFailurePayload {
  ok: false;
  result?: undefined;
  error: { code: string; message: string };
  errors?: ErrorPayload[];
  stats: SessionStats;
}

/** Payload of `final`, the last event of a run: narrow on `ok`. */
export type FinalPayload = FinalSuccessPayload | FinalFailurePayload;

/** Payload of `heartbeat`. */
export interface HeartbeatPayload {
  /** ISO 8601 time of the heartbeat. */
  ts: string;
}

/** Payload of `error`, emitted when a session is cancelled before it ran. */
export interface ErrorEventPayload {
  code: string;
  message: string;
  recoverable: boolean;
  details?: Record<string, unknown>;
}

/** Payload of `partial_result` (from `session.emitPartialResult`). */
export interface PartialResultPayload {
  path: string[];
  data?: unknown;
  error?: ErrorPayload;
  hasNext: boolean;
}

/** Payload of `tool_progress`: `connecting` then `processing` for every call, others via `emitToolProgress`. */
export interface ToolProgressPayload {
  callId: string;
  phase: ToolProgressPhase;
  elapsedMs: number;
  bytesReceived?: number;
  totalBytes?: number;
}

/** Payload of `deadline_exceeded`, emitted right before the `DEADLINE_EXCEEDED` final. */
export interface DeadlineExceededPayload {
  elapsedMs: number;
  budgetMs: number;
}

/** Payload of `catalog_changed` (part of the protocol; the broker never emits it). */
export interface CatalogChangedPayload {
  version: string;
  addedActions: string[];
  removedActions: string[];
}

/** `session_init` event. */
export type SessionInitEvent = StreamEventBase<'session_init', SessionInitPayload>;
/** `stdout` event. */
export type StdoutEvent = StreamEventBase<'stdout', StdoutPayload>;
/** `log` event. */
export type LogEvent = StreamEventBase<'log', LogPayload>;
/** `tool_call` event. */
export type ToolCallEvent = StreamEventBase<'tool_call', ToolCallPayload>;
/** `tool_result_applied` event. */
export type ToolResultAppliedEvent = StreamEventBase<'tool_result_applied', ToolResultAppliedPayload>;
/** `final` event. */
export type FinalEvent = StreamEventBase<'final', FinalPayload>;
/** `heartbeat` event. */
export type HeartbeatEvent = StreamEventBase<'heartbeat', HeartbeatPayload>;
/** `error` event. */
export type ErrorEvent = StreamEventBase<'error', ErrorEventPayload>;
/** `partial_result` event. */
export type PartialResultEvent = StreamEventBase<'partial_result', PartialResultPayload>;
/** `tool_progress` event. */
export type ToolProgressEvent = StreamEventBase<'tool_progress', ToolProgressPayload>;
/** `deadline_exceeded` event. */
export type DeadlineExceededEvent = StreamEventBase<'deadline_exceeded', DeadlineExceededPayload>;
/** `catalog_changed` event. */
export type CatalogChangedEvent = StreamEventBase<'catalog_changed', CatalogChangedPayload>;

/** Any event of a session stream (protocol v2), discriminated on `type`. */
export type StreamEvent =
  | SessionInitEvent
  | StdoutEvent
  | LogEvent
  | ToolCallEvent
  | ToolResultAppliedEvent
  | FinalEvent
  | HeartbeatEvent
  | ErrorEvent
  | PartialResultEvent
  | ToolProgressEvent
  | DeadlineExceededEvent
  | CatalogChangedEvent;

/** Content pattern of a filter rule. `field` is a dot path from the event root; without it the payload is matched. */
export interface ContentPattern {
  type: PatternType;
  pattern: string;
  field?: string;
  caseInsensitive?: boolean;
}

/** One filter rule: types and content in one rule must both match; a rule with neither matches everything. */
export interface FilterRule {
  types?: { types: EventType[] };
  content?: { patterns: ContentPattern[]; match?: 'any' | 'all' };
}

/** Server-side event filter configuration (`EventFilterConfig` of @enclave-vm/types). */
export interface EventFilterConfig {
  mode: FilterMode;
  rules: FilterRule[];
  /** Types always sent. Default `['session_init', 'final']`. */
  alwaysAllow?: EventType[];
  /** Accepted and ignored, as in the original. */
  regexTimeoutMs?: number;
}

// ============================================================================
// Execution results (@enclave-vm/core)
// ============================================================================

/** Statistics of a run (`ExecutionStats` of @enclave-vm/core). `iterationCount` is always 0, as in the original. */
export interface ExecutionStats {
  duration: number;
  toolCallCount: number;
  iterationCount: number;
  startTime: number;
  /** 0 while the session is not terminal. */
  endTime: number;
  memoryUsage?: number;
}

/** Result of a successful run. */
export interface SessionSuccessResult {
  success: true;
  /** The script's return value, as a JSON-compatible copy. */
  value?: unknown;
  error?: undefined;
  stats: ExecutionStats;
  finalState: 'completed';
}

/** Result of a failed or cancelled run. */
export interface SessionFailureResult {
  success: false;
  value?: undefined;
  /**
   * `code` follows the original's documentation, not its catch-all DOUBLE_VM_EXECUTION_ERROR (never
   * produced): VALIDATION_ERROR (syntax errors, bad tool arguments), EXECUTION_ERROR (an uncaught throw),
   * UNKNOWN_TOOL, SECRET_ERROR, the tool handler's own `code`, TIMEOUT, MEMORY_LIMIT_EXCEEDED,
   * MAX_TOOL_CALLS_EXCEEDED, TOOL_ARGS_TOO_LARGE, TOOL_RESULT_TOO_LARGE, RESULT_TOO_LARGE, SESSION_CANCELLED,
   * DEADLINE_EXCEEDED, ENGINE_CRASHED.
   */
  error: { message: string; name: string; code?: string; data?: Record<string, unknown> };
  stats: ExecutionStats;
  finalState: 'cancelled' | 'failed';
}

/** What a run resolves to (`SessionFinalResult` of @enclave-vm/core): narrow on `success`. Script and tool failures resolve, never reject. */
export type SessionFinalResult = SessionSuccessResult | SessionFailureResult;

/** `enclave.sidecar` (the original's `ReferenceSidecarOptions`). */
export interface ReferenceSidecarOptions {
  enabled: boolean;
  /** Bytes all references of one execution may hold. */
  maxTotalSize?: number;
  /** Bytes one reference may hold. */
  maxReferenceSize?: number;
  /** Strings of at least this many UTF-8 bytes become references. */
  extractionThreshold?: number;
  /** Bytes the arguments of one tool call may reach once their references are resolved. */
  maxResolvedSize?: number;
  /** Whether `ref + 'x'` gives a composite handle (else it throws). */
  allowComposites?: boolean;
  maxReferenceCount?: number;
}

/**
 * Options of the sandbox (`CreateEnclaveOptions` of @enclave-vm/core), accepted for compatibility.
 * The sandbox is a V8 isolate, not the original's AST-checked double VM: ordinary JavaScript runs, so
 * `preset`, `validate`, `transform`, `doubleVm`, `secureProxyConfig`, `scoringGate`, `adapter`,
 * `toolBridge` and the console limits have no effect. `timeout`, `maxToolCalls` and `toolHandler` are
 * overridden by the session limits and the registry, as in the original.
 */
export interface EnclaveConfig {
  /** Sets the depth limit of tool results and return values (STRICT 5, SECURE 10, STANDARD 20, PERMISSIVE 50). Default STANDARD. */
  securityLevel?: SecurityLevel;
  /**
   * V8 heap limit of the sandbox (plus an ArrayBuffer budget of the same size), in bytes. Default 128 MiB,
   * minimum 16 MiB; 0 means the default. The original tracked string growth against 1 MiB, and its 0 turned that off.
   */
  memoryLimit?: number;
  /** Read-only plain-data globals for the script. Functions, symbols, accessors and `__proto__`/`constructor`/`prototype` keys are rejected. */
  globals?: Record<string, unknown>;
  /** Depth limit of tool results and return values; overrides the security level's. */
  maxSanitizeDepth?: number;
  /** Size limit of the JSON of the script's return value, in bytes (RESULT_TOO_LARGE). Default 5 MiB. Not in the original. */
  maxResultBytes?: number;
  preset?: 'agentscript' | 'strict' | 'secure' | 'standard' | 'permissive' | 'babel';
  validate?: boolean;
  transform?: boolean;
  timeout?: number;
  maxToolCalls?: number;
  maxIterations?: number;
  adapter?: 'vm' | 'isolated-vm' | 'worker_threads';
  allowBuiltins?: boolean;
  allowFunctionsInGlobals?: boolean;
  toolHandler?: (toolName: string, args: Record<string, unknown>) => Promise<unknown>;
  toolBridge?: { mode?: 'string' | 'direct'; maxPayloadBytes?: number; acknowledgeInsecureDirect?: boolean };
  maxConsoleOutputBytes?: number;
  maxConsoleCalls?: number;
  sanitizeStackTraces?: boolean;
  maxSanitizeProperties?: number;
  /**
   * The reference sidecar: with `enabled: true`, strings of at least `extractionThreshold` bytes (script
   * literals, whole-string tool results) stay on the host and the script holds `__REF_<uuid>__` strings,
   * resolved in tool arguments. Each limit given replaces the security level's (see the README).
   */
  sidecar?: ReferenceSidecarOptions;
  scoringGate?: Record<string, unknown>;
  workerPoolConfig?: Record<string, unknown>;
  secureProxyConfig?: Record<string, unknown>;
  doubleVm?: Record<string, unknown>;
}

// ============================================================================
// Tools
// ============================================================================

/**
 * An argument schema: anything with zod's `safeParse` (zod 3 and zod 4 schemas both fit), or a bare
 * `parse` that throws on bad input. The handler receives the parsed output (defaults applied).
 */
export type ArgsSchema<TArgs = unknown> =
  | { safeParse(value: unknown): { success: true; data: TArgs } | { success: false; error: unknown } }
  | { parse(value: unknown): TArgs };

/** One argument in the seed API's `parameters` form of a tool definition. */
export interface ToolParameter {
  type: 'string' | 'number' | 'boolean' | 'object' | 'array';
  description?: string;
  required?: boolean;
  /** Filled in when the argument is absent. */
  default?: unknown;
}

/** The seed API's `parameters` form: argument name → description. */
export type ToolParameters = Record<string, ToolParameter>;

type ParameterValue<T> = T extends 'string'
  ? string
  : T extends 'number'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'object'
        ? Record<string, unknown>
        : T extends 'array'
          ? unknown[]
          : unknown;
type AlwaysPresent<D> = D extends { required: true } ? true : D extends { default: {} | null } ? true : false;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The arguments a handler receives for a `parameters` description: required or defaulted keys are present, others optional. */
export type ArgsFromParameters<P extends ToolParameters> = Simplify<
  {
    -readonly [K in keyof P as AlwaysPresent<P[K]> extends true ? K : never]: ParameterValue<P[K]['type']>;
  } & {
    -readonly [K in keyof P as AlwaysPresent<P[K]> extends true ? never : K]?: ParameterValue<P[K]['type']>;
  }
>;

/** What a tool handler gets besides its arguments. */
export interface ToolContext {
  sessionId: string;
  callId: string;
  /** The secrets listed in the tool's `secrets`, resolved. */
  secrets: Record<string, string>;
  /** Aborted at the per-tool deadline, the session deadline, or when the session is cancelled or disposed. */
  signal: AbortSignal;
}

/**
 * A tool implementation. May return a plain value as well as a promise (the original's type said promise;
 * its runtime awaited either). A thrown error's `code` reaches the script and the result.
 */
export type ToolHandler<TArgs = unknown, TResult = unknown> = (
  args: TArgs,
  context: ToolContext,
) => Promise<TResult> | TResult;

/** A tool as registered: name, optional schema, handler. Without `argsSchema` or `parameters` any object is accepted. */
export interface ToolDefinition<TArgs = unknown, TResult = unknown> {
  name: string;
  description?: string;
  /** A zod (3 or 4) schema or any `safeParse`/`parse` object; failures give `Invalid arguments: <issues>`. */
  argsSchema?: ArgsSchema<TArgs>;
  /** The seed API's argument description, used when there is no `argsSchema` (not in the original). */
  parameters?: ToolParameters;
  handler: ToolHandler<TArgs, TResult>;
  /** Stored only (see `getConfigs`). */
  config?: ToolConfig;
  /** Secret keys the handler needs; a missing one fails the call with SECRET_ERROR. */
  secrets?: string[];
}

/** A tool in the seed API's `parameters` form, with arguments typed from the description. */
export interface ParametersToolDefinition<P extends ToolParameters = ToolParameters, TResult = unknown> {
  name: string;
  description?: string;
  argsSchema?: undefined;
  parameters: P;
  handler: ToolHandler<ArgsFromParameters<P>, TResult>;
  config?: ToolConfig;
  secrets?: string[];
}

/** Outcome of `ToolRegistry.validate`: narrow on `success`. */
export type ToolValidationResult =
  | { success: true; validatedArgs: unknown; error?: undefined }
  | { success: false; error: string; validatedArgs?: undefined };

/** Outcome of `ToolRegistry.execute`, which never rejects: narrow on `success`. */
export type ToolExecutionResult<T = unknown> =
  | { success: true; value: T; error?: undefined; durationMs: number }
  | {
      success: false;
      value?: undefined;
      /** `code`: UNKNOWN_TOOL, VALIDATION_ERROR, SECRET_ERROR, the handler error's own `code`, or EXECUTION_ERROR. */
      error: { code: string; message: string; data?: Record<string, unknown> };
      durationMs: number;
    };

/** Tool definitions and secrets, with argument validation. */
export declare class ToolRegistry {
  constructor();
  /** Registers a tool in the seed API's `parameters` form. Throws `Tool "x" is already registered`. */
  register<const P extends ToolParameters, TResult = unknown>(definition: ParametersToolDefinition<P, TResult>): void;
  /** Registers a tool. Throws `Tool "x" is already registered`. */
  register<TArgs = unknown, TResult = unknown>(definition: ToolDefinition<TArgs, TResult>): void;
  /** Registers or replaces a tool. */
  replace<TArgs = unknown, TResult = unknown>(definition: ToolDefinition<TArgs, TResult>): void;
  unregister(name: string): boolean;
  has(name: string): boolean;
  /** The definition object as registered. */
  get(name: string): ToolDefinition | undefined;
  /** Tool names, in registration order. */
  list(): string[];
  /** `config` of every tool that has one. */
  getConfigs(): Record<string, ToolConfig>;
  validate(name: string, args: unknown): ToolValidationResult;
  setSecret(key: string, value: string): void;
  removeSecret(key: string): boolean;
  hasSecret(key: string): boolean;
  getRequiredSecrets(name: string): string[];
  clearSecrets(): void;
  /** Validates, resolves secrets and runs the handler; every failure resolves as `{success: false}`. */
  execute<T = unknown>(name: string, args: unknown, context: Omit<ToolContext, 'secrets'>): Promise<ToolExecutionResult<T>>;
  clear(): void;
  readonly size: number;
  /** Markdown description of every tool and its arguments, for an LLM prompt (seed API; not in the original). */
  getDocumentation(): string;
}

/** Creates an empty ToolRegistry. */
export declare function createToolRegistry(): ToolRegistry;

// ============================================================================
// Sessions
// ============================================================================

/** Configuration of one session; merged shallowly over the broker's defaults (a given `limits` replaces the broker's). */
export interface BrokerSessionConfig {
  /** Any string; generated as `s_<uuid>` when absent or null. */
  sessionId?: string | null;
  limits?: SessionLimitsInput;
  enclaveConfig?: EnclaveConfig;
  /** Ignored, as in the original: only `limits.heartbeatIntervalMs` counts. */
  heartbeatIntervalMs?: number;
  /** Tools the client runs itself (results via `submitToolResult`); `true` for all (not in the original). */
  externalTools?: boolean | string[];
  /**
   * Seed API: patterns (`'users:*'`: `*` is one `:`-segment, `**` any) of the tools the script may call;
   * all when absent. Other calls fail in the script with `TOOL_NOT_ALLOWED` and their handlers never run.
   */
  allowedTools?: string[];
}

/** `Broker.createSession`'s config, with the seed API's top-level limit keys. */
export interface CreateSessionConfig extends BrokerSessionConfig {
  /** Seed API: the script timeout in ms (`limits.toolTimeoutMs`), over the limits the session would have. */
  timeout?: number;
  /** Seed API: `limits.maxToolCalls`, over the limits the session would have. */
  maxToolCalls?: number;
}

/** The docs' object form of the BrokerSession constructor. */
export interface BrokerSessionOptions {
  toolRegistry: ToolRegistry;
  sessionId?: string | null;
  limits?: SessionLimitsInput;
  /** Alias of `enclaveConfig`. */
  enclave?: EnclaveConfig;
  enclaveConfig?: EnclaveConfig;
  heartbeatIntervalMs?: number;
  externalTools?: boolean | string[];
  allowedTools?: string[];
}

/** The event-emitting surface of a session (`session.events`): a subset of the original's core SessionEmitter. */
export interface BrokerSessionEvents {
  /** Emits a `stdout` event. */
  emitStdout(chunk: string): void;
  /** Emits a `log` event. */
  emitLog(level: LogLevel, message: string, data?: Record<string, unknown>): void;
  emitToolProgress(
    callId: string,
    phase: ToolProgressPhase,
    elapsedMs: number,
    bytesReceived?: number,
    totalBytes?: number,
  ): void;
  emitPartialResult(path: string[], data?: unknown, error?: ErrorPayload, hasNext?: boolean): void;
  onEvent(handler: (event: StreamEvent) => void): () => void;
  getEvents(): StreamEvent[];
  readonly seq: number;
}

/** `BrokerSession.limits`: every limit resolved, `memoryLimit` being the script's heap limit in bytes. */
export interface EffectiveLimits {
  sessionTtlMs: number;
  maxToolCalls: number;
  maxStdoutBytes: number;
  maxToolResultBytes: number;
  toolTimeoutMs: number;
  heartbeatIntervalMs: number;
  deadlineMs: number;
  perToolDeadlineMs: number;
  cancelOnFirstError: boolean;
  memoryLimit: number;
}

/** One execution session: runs a script once and records its event stream. */
export declare class BrokerSession {
  constructor(toolRegistry: ToolRegistry, config?: BrokerSessionConfig);
  constructor(options: BrokerSessionOptions);
  readonly sessionId: string;
  /** Seed API: `sessionId`. */
  readonly id: string;
  /** Epoch ms. */
  readonly createdAt: number;
  /** Epoch ms (`createdAt + sessionTtlMs`). */
  readonly expiresAt: number;
  /** Stays `running` during tool calls (except for external tools); the deadline path ends in `cancelled`. */
  readonly state: SessionStateValue;
  /** The last seq assigned; 0 before the first event. */
  readonly seq: number;
  /** The limits the session runs with (for sessions a `listen()` server made: the operator's, tightened by the request). Not in the original. */
  readonly limits: Readonly<EffectiveLimits>;
  readonly events: BrokerSessionEvents;
  /** Subscribes to events from now on (no replay; see `getEvents`). Listener exceptions are swallowed. Returns the unsubscribe function. */
  onEvent(handler: (event: StreamEvent) => void): () => void;
  /** A copy of every event so far. */
  getEvents(): StreamEvent[];
  /** Runs the script; rejects `Session is already executing` on a second call (also after `cancel`). */
  execute(code: string): Promise<SessionFinalResult>;
  /** The running execution's result; rejects `Session has not started execution` before `execute`. */
  wait(): Promise<SessionFinalResult>;
  /** Cancels; a no-op once terminal. Before `execute` it emits `error` then `final` with the reason. */
  cancel(reason?: string): Promise<void>;
  emitToolProgress(
    callId: string,
    phase: ToolProgressPhase,
    elapsedMs: number,
    bytesReceived?: number,
    totalBytes?: number,
  ): void;
  /** Emits `partial_result`; an `error` is also added to the final payload's `errors`. */
  emitPartialResult(path: string[], data?: unknown, error?: ErrorPayload, hasNext?: boolean): void;
  getPartialErrors(): ErrorPayload[];
  isExpired(): boolean;
  isTerminal(): boolean;
  /** `duration` counts from creation and keeps growing after the end, as in the original. */
  getStats(): ExecutionStats;
  /** Stops timers and the engine. A running session ends as `cancelled` (SESSION_CANCELLED), so `execute()` always settles. */
  dispose(): void;
  /**
   * Seed API (S001 in docs/compatibility.md), the embedder-driven tool loop: while the session has a `'tool_call'` listener, each
   * call of its script goes to the listeners and waits for `send()` (else the broker runs the tool
   * itself). A listener that throws or rejects before the call is answered fails it (its `code`, else
   * `EXECUTION_ERROR`); an unanswered call ends at `perToolDeadlineMs`. Other event names are a TypeError.
   */
  on(event: 'tool_call', listener: (call: ToolCallRequest) => unknown): this;
  once(event: 'tool_call', listener: (call: ToolCallRequest) => unknown): this;
  off(event: 'tool_call', listener: (call: ToolCallRequest) => unknown): this;
  /**
   * Answers a call delivered to `'tool_call'` listeners: `data` resolves `callTool` in the script (as a
   * JSON copy), `error` rejects it (code default `TOOL_ERROR`). Throws `No pending tool call <id>` for
   * an id that is not waiting (answered, past its deadline, or unknown).
   */
  send(message: SessionMessage): void;
}

/** Creates a BrokerSession (`new BrokerSession(...)`). */
export declare function createBrokerSession(toolRegistry: ToolRegistry, config?: BrokerSessionConfig): BrokerSession;
/** Creates a BrokerSession from the docs' object form. */
export declare function createBrokerSession(options: BrokerSessionOptions): BrokerSession;

/** SessionManager configuration. */
export interface SessionManagerConfig {
  /** Default 100. */
  maxSessions?: number;
  /** Cleanup period in ms. Default 60000. Unlike the original, the timer does not keep Node alive. */
  cleanupIntervalMs?: number;
  /** Merged shallowly under every `create(config)`. The Broker overwrites it with its own limits and enclave. */
  defaultSessionConfig?: Partial<BrokerSessionConfig>;
}

/** A row of `listSessions()`. */
export interface SessionInfo {
  sessionId: string;
  state: SessionStateValue;
  createdAt: number;
  expiresAt: number;
  isExpired: boolean;
  /** Seed API: present only for sessions created with a `userId`. */
  userId?: string;
  /** Seed API: present only for sessions created with `metadata`. */
  metadata?: Record<string, unknown>;
}

/** What `SessionManager.create` returns. */
export interface CreateSessionResult {
  session: BrokerSession;
  sessionId: string;
  /** Seed API: `sessionId` (not enumerable). */
  readonly id: string;
}

/** Seed API: `new SessionManager({...})` without a registry (its registry starts empty). */
export interface SeedSessionManagerOptions {
  /** `maxSessions`. */
  maxConcurrentSessions?: number;
  /** ms; `defaultSessionConfig.limits.sessionTtlMs`. */
  sessionTimeout?: number;
  /** ms; `cleanupIntervalMs`. */
  cleanupInterval?: number;
}

/** `SessionManager.create`'s config, with the seed API's owner keys. */
export interface ManagedSessionConfig extends BrokerSessionConfig {
  /** Seed API: kept with the session, shown in `list()` and used by `list({userId})`. */
  userId?: string;
  metadata?: Record<string, unknown>;
}

/** Holds sessions: limits their number, lists them, cleans up expired and finished ones. */
export declare class SessionManager {
  constructor(toolRegistry: ToolRegistry, config?: SessionManagerConfig);
  constructor(options: SeedSessionManagerOptions);
  /** Throws `Session manager is disposed` or `Maximum sessions reached (N). ...`. A duplicate sessionId replaces the old entry. */
  create(config?: ManagedSessionConfig): CreateSessionResult;
  get(sessionId: string): BrokerSession | undefined;
  has(sessionId: string): boolean;
  /** `filter` (seed API): `{userId}` keeps that user's sessions. */
  list(filter?: { userId?: string }): SessionInfo[];
  /** Sessions not completed, cancelled or failed. */
  listActive(filter?: { userId?: string }): SessionInfo[];
  /** Cancels (default reason `Terminated by session manager`), disposes and removes; false for unknown ids. */
  terminate(sessionId: string, reason?: string): Promise<boolean>;
  /** Alias of `terminate` (seed README; not in the original). */
  destroy(sessionId: string): Promise<boolean>;
  /** Creates a session, runs `code`, then disposes and removes it. */
  executeAndWait(
    code: string,
    config?: BrokerSessionConfig,
    eventHandler?: (event: StreamEvent) => void,
  ): Promise<SessionFinalResult>;
  readonly activeCount: number;
  readonly totalCount: number;
  /** Disposes and removes expired or terminal sessions; returns how many. */
  cleanup(): number;
  /** Cancels every session with `Session manager disposed`. */
  dispose(): Promise<void>;
}

/** Creates a SessionManager. */
export declare function createSessionManager(toolRegistry: ToolRegistry, config?: SessionManagerConfig): SessionManager;

// ============================================================================
// Broker
// ============================================================================

/** Broker configuration: the original's `sessions`, `enclave`, `limits`, plus the seed API's tool options. */
export interface BrokerConfig {
  sessions?: SessionManagerConfig;
  enclave?: EnclaveConfig;
  /** Default limits; replaced, not merged, by a session's own `limits`. */
  limits?: SessionLimitsInput;
  /**
   * Seed API (S000 in docs/compatibility.md): shares the broker's sessions, event logs, commands and (on `listen()`) rate
   * limits with every broker on the same Redis: a `redis://`/`rediss://` URL, an ioredis client or
   * a node-redis client (only its connection options are read). The broker connects in the
   * background (`connect()` waits); `EnclaveBroker.listen()` rejects when Redis cannot be reached.
   */
  redis?: string | IoredisClientLike | NodeRedisClientLike;
  /** Tuning of the shared state (needs `redis`). */
  cluster?: ClusterOptions;
  /**
   * Seed API (not in the original): a ToolRegistry to use as the broker's registry, or a record of
   * name → handler function or definition.
   */
  tools?: ToolRegistry | Record<string, ToolHandler<any> | Omit<ToolDefinition<any>, 'name'>>;
  /** Seed API: runs calls of tools the registry does not have (context has `toolName`; `secrets` is empty). */
  toolHandler?: (args: any, context: ToolContext & { toolName: string }) => unknown;
  /** Seed API: tools the client runs itself, answered with `submitToolResult`; `true` for all. */
  externalTools?: boolean | string[];
  /** Seed API: functions around every tool handler (after validation), outermost first. */
  middleware?: ToolMiddleware[];
  /** The engine pool, shared by every broker of the process (the last value set wins). */
  runtimePool?: RuntimePoolOptions;
  /**
   * Seed API (S003 in docs/compatibility.md): the top-level form of `enclave.securityLevel` (which wins when both are given):
   * the original's preset of result depth (5, 10, 20, 50). Anything else is a TypeError.
   */
  securityLevel?: SecurityLevel;
  /**
   * Seed API (seed 003): where scripts run. `'embedded'` (the default): this process's engine pool.
   * `'extracted'`: runtime workers (`createRuntimeWorker`, `enclave-runtime`) reached at `runtimeUrl`
   * or `runtimeUrls`; tools, secrets, middleware and sessions stay in the broker.
   */
  mode?: BrokerMode;
  /** Extracted mode: a worker's `ws://host:port[/path]` (a URL without a path gets `/ws`). */
  runtimeUrl?: string;
  /** Extracted mode: several workers; each execution goes to the one with the most room. */
  runtimeUrls?: string[];
  /** Extracted mode: the token the workers require (sent as `Authorization: Bearer`). */
  runtimeToken?: string;
  /** Extracted mode: connection tuning. */
  runtimeConnection?: RuntimeConnectionOptions;
}

export type BrokerMode = 'embedded' | 'extracted';

export interface RuntimeConnectionOptions {
  /** Connect and handshake with a worker within this (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Ping each worker this often; one silent for two intervals is lost (default 15000; 0 = off). */
  heartbeatIntervalMs?: number;
  /** Largest frame taken from a worker (default 64 MiB). */
  maxMessageBytes?: number;
  /** Reconnection backoff: doubles from `initialDelayMs` (250) up to `maxDelayMs` (10000). */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
}

/** One runtime worker as a broker in extracted mode sees it (`broker.getRuntimeStatus()`). */
export interface RuntimeEndpointStatus {
  url: string;
  state: 'connecting' | 'connected' | 'down';
  /** Executions of this broker running there now. */
  activeSessions: number;
  /** The worker's `maxSessions` (0 until connected). */
  maxSessions: number;
  /** The worker is stopping: it gets no new executions. */
  draining: boolean;
  totalSessions: number;
  lastError?: string;
}

/** The original's security levels. */
export type SecurityLevel = 'STRICT' | 'SECURE' | 'STANDARD' | 'PERMISSIVE';

/** Seed API (S001 in docs/compatibility.md): a tool call as a session's `'tool_call'` listeners get it. */
export interface ToolCallRequest {
  /** The call id (`c_<uuid>`), the `id` of the `send()` that answers it. */
  id: string;
  name: string;
  /** The arguments as the script passed them (JSON). */
  args: any;
}

/** Seed API (S001 in docs/compatibility.md): what `session.send()` takes: the answer to the call `id`, a value or an error. */
export type SessionMessage =
  | { type: 'tool_result'; id: string; data?: unknown; error?: undefined | null }
  | { type: 'tool_result'; id: string; data?: undefined; error: ExternalToolError | Error | string };

/** One tool call as middleware sees it: validated `args` and the handler's context. */
export interface ToolMiddlewareCall {
  name: string;
  args: any;
  context: ToolContext;
}

/**
 * Seed API: wraps a tool handler. `next(call)` runs the rest of the chain and the handler with
 * `call.args`, resolving to its value (call it at most once). Throwing fails the call as a throwing
 * handler would (its `code`, else `EXECUTION_ERROR`).
 */
export type ToolMiddleware = (call: ToolMiddlewareCall, next: (call?: ToolMiddlewareCall) => Promise<unknown>) => unknown;

/** The seed API's event filter of `execute()`: event types to keep, or to drop. */
export interface EventTypeLists {
  types?: EventType[];
  blockedTypes?: EventType[];
}

/** Options of `Broker.execute`. */
export interface ExecuteOptions {
  /** The run's session config, merged shallowly with the broker's (a given `limits` replaces the broker's). */
  session?: BrokerSessionConfig;
  /** Called synchronously for every event of the run (that passes `filter`); exceptions are swallowed. */
  onEvent?: (event: StreamEvent) => void;
  /** Seed API: the script timeout in ms (`limits.toolTimeoutMs`), over the limits the run would have. */
  timeout?: number;
  /** Seed API: `limits.maxToolCalls`, over the limits the run would have. */
  maxToolCalls?: number;
  /** Seed API: read-only globals of this run, over `enclave.globals` (plain data only). */
  context?: Record<string, unknown>;
  /**
   * Seed API: which events the iterator and `onEvent` see (`session_init` and `final` always pass;
   * seq numbers are kept). The resolved result is not filtered.
   */
  filter?: EventFilter | EventFilterConfig | EventTypeLists;
}

/**
 * What `execute()` returns: the original's promise of the result, which is also async-iterable
 * over the run's events from `session_init` to `final` (seed API). An iteration may begin before,
 * during or after the run; leaving it early does not stop the run.
 */
export type ExecutionStream = Promise<SessionFinalResult> & AsyncIterable<StreamEvent>;

/** A tool definition without its name, as `broker.tool(name, definition)` takes it. */
export type ToolSpec<TArgs = unknown, TResult = unknown> = Omit<ToolDefinition<TArgs, TResult>, 'name'>;

/** Error a client reports for an external tool call. */
export interface ExternalToolError {
  message: string;
  /** Default `TOOL_ERROR`. */
  code?: string;
}

/**
 * The broker: registers tools and secrets, runs scripts, manages sessions. Scripts run in V8 isolates
 * (in engine processes) as the body of an async function: ordinary JavaScript works, without the
 * original's AST bans, and console output becomes `stdout`/`log` events instead of host output.
 */
export declare class Broker {
  constructor(config?: BrokerConfig);
  /** Registers a tool in the seed API's `parameters` form, with typed arguments; chainable. */
  tool<const P extends ToolParameters, TResult = unknown>(
    name: string,
    definition: Omit<ParametersToolDefinition<P, TResult>, 'name'>,
  ): this;
  /** Registers a tool; chainable. Throws `Tool "x" is already registered`. Works after dispose(), as in the original. */
  tool<TArgs = unknown, TResult = unknown>(name: string, definition: ToolSpec<TArgs, TResult>): this;
  /** Registers several tools (in key order); chainable. */
  tools<TArgsMap extends Record<string, unknown>>(definitions: { [K in keyof TArgsMap]: ToolSpec<TArgsMap[K], unknown> }): this;
  hasTool(name: string): boolean;
  listTools(): string[];
  removeTool(name: string): boolean;
  /** Adds an OpenAPI source over the broker's tools; call `await source.start()` to load and poll. Throws `Broker is disposed`. */
  openapi(config: OpenApiSourceConfig): OpenApiSource;
  /** The sources `openapi()` added, in order. */
  getOpenApiSources(): readonly OpenApiSource[];
  secret(key: string, value: string): this;
  secrets(values: Record<string, string>): this;
  hasSecret(key: string): boolean;
  removeSecret(key: string): boolean;
  /** Creates an idle session (synchronous). Throws `Broker is disposed` or `Maximum sessions reached (N). ...`. */
  createSession(config?: CreateSessionConfig): BrokerSession;
  /** Synchronous; `undefined` (not null) for unknown ids and for sessions whose `execute()` finished. */
  getSession(sessionId: string): BrokerSession | undefined;
  listSessions(): SessionInfo[];
  listActiveSessions(): SessionInfo[];
  terminateSession(sessionId: string, reason?: string): Promise<boolean>;
  /**
   * Runs `code` in a new session and resolves with its result; the session is removed afterwards.
   * Rejects only for `Broker is disposed`, session-creation errors and bad arguments (an iteration
   * throws the same error). `for await (const event of broker.execute(code))` yields the run's events.
   */
  execute(code: string, options?: ExecuteOptions): ExecutionStream;
  /** Seed API: answers an external tool call of a session; rejects `Session <id> not found`. */
  submitToolResult(sessionId: string, callId: string, result: unknown, error?: ExternalToolError | null): Promise<void>;
  /**
   * Seed API (S001 in docs/compatibility.md): runs a call a `'tool_call'` listener received through the broker's tools (validation,
   * secrets, middleware, `toolHandler`, broker events, the call's abort signal) and resolves to the tool's
   * value; rejects with an Error whose `code` is the failure's (`UNKNOWN_TOOL`, `VALIDATION_ERROR`, ...).
   */
  executeToolCall(sessionId: string, call: Pick<ToolCallRequest, 'name' | 'args'> & { id?: string }): Promise<unknown>;
  /** Seed API (S000 in docs/compatibility.md): adds a listener of a broker event; listeners that throw are ignored. Chainable. */
  on<E extends keyof BrokerEvents>(event: E, listener: BrokerEvents[E]): this;
  addListener<E extends keyof BrokerEvents>(event: E, listener: BrokerEvents[E]): this;
  once<E extends keyof BrokerEvents>(event: E, listener: BrokerEvents[E]): this;
  off<E extends keyof BrokerEvents>(event: E, listener: BrokerEvents[E]): this;
  removeListener<E extends keyof BrokerEvents>(event: E, listener: BrokerEvents[E]): this;
  removeAllListeners(event?: keyof BrokerEvents): this;
  listenerCount(event: keyof BrokerEvents): number;
  /** `totalSessions` counts sessions currently held. */
  stats(): { tools: number; activeSessions: number; totalSessions: number };
  /** Disposes and removes expired or terminal sessions; returns how many. */
  cleanup(): number;
  /** Idempotent: cancels every session, then clears tools and secrets (with `redis`: gives their last events up to 5 s to reach Redis, then leaves). */
  dispose(): Promise<void>;
  /** With `redis`: resolves once the broker has reached Redis; rejects with an Error naming it when it cannot. At once without. */
  connect(): Promise<void>;
  readonly isDisposed: boolean;
  /** Seed API: `'embedded'` or `'extracted'`. */
  readonly mode: BrokerMode;
  /** Extracted mode: each worker's connection state and load (`[]` in embedded mode). */
  getRuntimeStatus(): RuntimeEndpointStatus[];
}

/** Creates a Broker (`new Broker(config)`). */
export declare function createBroker(config?: BrokerConfig): Broker;

/** Seed API (S001 in docs/compatibility.md): `broker.createSession(config)` as a function. */
export declare function createSession(broker: Broker, config?: CreateSessionConfig): BrokerSession;

// ============================================================================
// EnclaveBroker (seed API)
// ============================================================================

/** A request as `authentication.validate`, `rateLimiting.keyGenerator` and `authorize` see it. Header names are lower-case. */
export interface HttpRequestInfo {
  method: string;
  path: string;
  headers: Record<string, string>;
  ip: string;
  /** The validated caller (absent for `validate`, which decides it). */
  principal?: HttpPrincipal;
}

/**
 * Who a `listen()` request acts as: the `userId` (with `tenantId`) from `validate`, else the
 * validated credential (as a salted hash in `id`), else `anonymous` when no authentication is
 * configured. Sessions belong to the principal that created them.
 */
export interface HttpPrincipal {
  /** Unique per principal: `user:"<userId>"`, `user:"<tenantId>"/"<userId>"`, `credential:<hash>` or `anonymous`. */
  id: string;
  type: 'user' | 'credential' | 'anonymous';
  userId?: string;
  tenantId?: string;
}

/** What the caller wants to do with a session it does not own. */
export type HttpSessionAction = 'list' | 'read' | 'stream' | 'cancel' | 'delete' | 'tool-result';

/** A session as `authorize` sees it. */
export interface HttpSessionSummary {
  sessionId: string;
  state: SessionStateValue;
  createdAt: number;
  expiresAt: number;
  /** In-process sessions belong to the anonymous principal. */
  owner: HttpPrincipal;
}

/** What `authentication.validate` answers. */
export interface AuthResult {
  valid: boolean;
  userId?: string;
  tenantId?: string;
  permissions?: string[];
}

/** HTTP authentication of the `listen()` server (not `/health`). `bearer` reads `Authorization: Bearer <t>`, `api-key` reads `X-API-Key`; failures answer 401 UNAUTHORIZED. */
export interface AuthConfig {
  type: 'bearer' | 'api-key' | 'custom';
  validate(token: string, request: HttpRequestInfo): AuthResult | Promise<AuthResult>;
  /** Failed authentications a client address may make per `failureWindowMs` before it gets 429 AUTH_THROTTLED (without `validate` running). Default 20. */
  maxFailures?: number;
  /** Default 60000. */
  failureWindowMs?: number;
}

/** Request rate limit of the `listen()` server (a fixed window per key); excess requests answer 429 RATE_LIMITED. */
export interface RateLimitConfig {
  windowMs: number;
  maxRequests: number;
  /** Default key: the validated principal (never raw header text); without authentication, the client's address (IPv6 by /64). */
  keyGenerator?(request: HttpRequestInfo): string | Promise<string>;
}

/** A logger with any of these methods (console fits). */
export interface BrokerLogger {
  debug?(message: string): void;
  info?(message: string): void;
  warn?(message: string): void;
  error?(message: string): void;
}

/**
 * Engine pool settings, for the whole process: `minSize`, `memoryBudget` and `maxQueued` are used;
 * the seed's other keys are accepted and ignored.
 */
export interface RuntimePoolOptions {
  /**
   * Engine processes started at once, when given. Whatever it is, an embedded broker
   * starts one engine process for its default memory limit when it is built (unless one
   * exists), so its first execute does not wait for one; `0` starts none ahead.
   */
  minSize?: number;
  /**
   * Executions one engine process runs at once, each in a V8 isolate on a thread of its own (1 to 256;
   * default 16, or `ENCLAVE_BROKER_ISOLATES_PER_ENGINE`). Applies to processes started afterwards. A V8
   * fatal error or a kill ends the executions of one process only.
   */
  isolatesPerEngine?: number;
  /**
   * Bytes the memory ceilings of running executions may add up to (each: 2 × memoryLimit + 16 MiB, plus its
   * share of its process's 256 MiB, 256 MiB / isolatesPerEngine);
   * others wait, the wait counting in their timeout. Default: three quarters of the machine's (or
   * cgroup's) memory, or `ENCLAVE_BROKER_MEMORY_BUDGET`.
   */
  memoryBudget?: number;
  /** Executions that may wait before new ones fail with ENGINE_CAPACITY_EXCEEDED (HTTP 503). Default 1024, or `ENCLAVE_BROKER_MAX_QUEUED`. */
  maxQueued?: number;
  maxSize?: number;
  scaleUpThreshold?: number;
  scaleDownThreshold?: number;
  scaleInterval?: number;
}

/** An ioredis client (`new Redis(url | options)`): only its connection options are read. */
export interface IoredisClientLike {
  readonly options: object;
  readonly status: string;
}

/** A node-redis client (`createClient({ url, socket, username, password, database })`): only its options are read. */
export interface NodeRedisClientLike {
  readonly isOpen: boolean;
  readonly options?: object;
}

/** How a broker takes part in the state shared through Redis. */
export interface ClusterOptions {
  /** How long a broker's lease lasts without renewal before another broker finishes its sessions with `BROKER_LOST`. Default 10000, at least 500. */
  leaseMs?: number;
  /** Event JSON bytes buffered while Redis is unreachable; past it, sessions that write more fail with `REDIS_UNAVAILABLE`. Default 32 MiB. */
  maxBufferBytes?: number;
  /** Prefix of every key and channel. Default `'enclave:'` (after an ioredis client's `keyPrefix`). */
  keyPrefix?: string;
  /** How long a cancel, DELETE or tool result for another broker's session waits for it. Default 5000. */
  commandTimeoutMs?: number;
}

/**
 * Options of EnclaveBroker: everything of BrokerConfig, the seed API's names (mapped onto the
 * original's only when given, never with the seed's defaults), and the HTTP server's settings.
 */
export interface EnclaveBrokerOptions extends BrokerConfig {
  /** → `limits.sessionTtlMs`. */
  sessionTimeout?: number;
  /** → `sessions.maxSessions`. */
  maxConcurrentSessions?: number;
  /** → `sessions.cleanupIntervalMs`. */
  cleanupInterval?: number;
  authentication?: AuthConfig;
  /**
   * Lets a principal reach sessions it does not own (an admin view): asked for each such
   * session a request touches; anything but `true` (or a throw) answers as if the session did
   * not exist (404, or absent from `GET /sessions`).
   */
  authorize?(
    principal: HttpPrincipal,
    action: HttpSessionAction,
    session: HttpSessionSummary,
    request: HttpRequestInfo,
  ): boolean | Promise<boolean>;
  rateLimiting?: RateLimitConfig;
  logger?: BrokerLogger;
  /** Largest accepted request body, in bytes (413 beyond). Default 1 MiB. */
  maxBodyBytes?: number;
  /** Time allowed to receive a request body, in ms (408 beyond). */
  bodyTimeoutMs?: number;
  /** Time allowed for `validate`/`keyGenerator` to answer, in ms. */
  callbackTimeoutMs?: number;
  /** CORS headers on every response. Default true. */
  cors?: boolean;
  /** Default `['*']`. */
  allowedOrigins?: string[];
  /** Cancel a session whose streaming client disconnected. Default false: the client can reconnect with `fromSeq`. */
  cancelOnDisconnect?: boolean;
  /**
   * Serve the playground page shipped in this package at `/playground/` (and redirect `/` there),
   * with a strict Content-Security-Policy; its files are public, its runs go through the API
   * routes (and their authentication). Default false.
   */
  playground?: boolean;
}

/**
 * The seed API's broker events (S000 in docs/compatibility.md), on Broker and EnclaveBroker, for sessions made by
 * `execute()`, `createSession()` and the `listen()` server alike.
 */
export interface BrokerEvents {
  /** A session was created (before it runs). */
  'session:created': (session: BrokerSession) => void;
  /** Its run ended with success (`result.success` is true). */
  'session:completed': (session: BrokerSession, result: SessionFinalResult) => void;
  /** It ended otherwise: failed, cancelled or past its deadline. */
  'session:error': (session: BrokerSession, error: SessionFailureResult['error']) => void;
  /** A script called a tool, before its handler runs (`args` as the script passed them). */
  'tool:called': (session: BrokerSession, tool: string, args: unknown) => void;
  /** The handler succeeded with `value`. */
  'tool:completed': (session: BrokerSession, tool: string, value: unknown) => void;
}

/** The broker events' earlier name. */
export type EnclaveBrokerEvents = BrokerEvents;

/**
 * The seed API's broker (not in the original): a Broker that also serves the HTTP API itself —
 * the original SessionHandler routes plus `POST /execute`, `POST /sessions/:id/tool-result`,
 * `POST /sessions/:id/cancel` and `GET /health` — with optional authentication and rate limiting.
 */
export declare class EnclaveBroker extends Broker {
  constructor(options?: EnclaveBrokerOptions);
  /** The port the server listens on, once `listen` resolved. */
  readonly port: number | undefined;
  /** `'/playground/'` when the broker serves the playground page (`playground: true`), else undefined. */
  readonly playgroundPath: string | undefined;
  /** Starts the HTTP server (port 0 picks a free one; read it from `port`). Default host `0.0.0.0`. Keeps Node alive until `close`. */
  listen(port?: number, hostname?: string): Promise<void>;
  /** Stops the server (open streams get `timeout` ms, default 5000, then are cancelled), then disposes the broker. */
  close(options?: { timeout?: number }): Promise<void>;
}

// ============================================================================
// ToolRouter, AccessController, RateLimiter (seed API)
// ============================================================================
// Tool-name patterns: names are `:`-separated segments; `*` matches within one segment, `**`
// across segments, `?` one character other than `:`; everything else is literal.

/** A sliding-window limit: at most `maxCalls` calls in any `windowMs` milliseconds. */
export interface RateLimit {
  /** A positive integer. */
  maxCalls: number;
  /** A positive finite number of milliseconds. */
  windowMs: number;
}

/** A time source; `Date` by default. Used by tests to move time without sleeping. */
export interface Clock {
  now(): number;
}

/** An Error rejected or thrown by ToolRouter and AccessController. */
export interface ToolAccessError extends Error {
  code: 'UNKNOWN_TOOL' | 'UNAUTHORIZED' | 'RATE_LIMITED' | 'ACCESS_DENIED';
  toolName: string;
}

/** The context a route handler gets: what was passed to `execute` (from the broker: ToolContext & {toolName}). */
export type ToolRouteContext = Record<string, unknown> & { authenticated?: unknown };

export interface ToolRouteDefinition<TArgs = any, TResult = unknown> {
  handler: (name: string, args: TArgs, context: ToolRouteContext) => Promise<TResult> | TResult;
  /** One sliding window for the route, shared by every tool name it handles. */
  rateLimit?: RateLimit;
  /** When true, `execute` needs a truthy `context.authenticated`. Default false. */
  requiresAuth?: boolean;
}

export interface ToolRouterOptions {
  /** Clock for route rate limits. */
  clock?: Clock;
}

/**
 * Seed API (not in the original): routes tool calls by pattern. The first registered route
 * whose pattern matches handles a call.
 */
export declare class ToolRouter {
  constructor(options?: ToolRouterOptions);
  /** Adds a route after the existing ones. Throws TypeError on a bad definition, Error on a duplicate pattern. */
  register<TArgs = any, TResult = unknown>(pattern: string, definition: ToolRouteDefinition<TArgs, TResult>): this;
  /** Removes the route registered with exactly `pattern`; false if there was none. */
  unregister(pattern: string): boolean;
  /** Whether some route would handle `name`. */
  has(name: string): boolean;
  /** Registered patterns in the order they are tried. */
  routes(): string[];
  /**
   * Runs the call through the first matching route. Rejects with a ToolAccessError:
   * `UNKNOWN_TOOL` (`Unknown tool: <name>`), `UNAUTHORIZED`, `RATE_LIMITED` (`Rate limit exceeded for <name>`);
   * or with whatever the handler throws.
   */
  execute(name: string, args?: unknown, context?: ToolRouteContext): Promise<unknown>;
  /**
   * For the Broker's `toolHandler` option. `baseContext` (e.g. `{ authenticated: true }`) is merged
   * beneath the broker's context.
   */
  toolHandler(baseContext?: Record<string, unknown>): (args: any, context: ToolContext & { toolName: string }) => Promise<unknown>;
}

export interface AccessRule {
  pattern: string;
  allow: boolean;
  /** Flips `allow` when every key is an own property of the context with a === value. Must not be empty. */
  unless?: Record<string, unknown>;
}

export interface AccessControllerOptions {
  /** Used when no rule matches. Default 'deny'. */
  defaultPolicy?: 'deny' | 'allow';
  /** Tried in order; the first matching rule decides. */
  rules?: AccessRule[];
}

/** Seed API (not in the original): allow/deny rules over tool-name patterns. */
export declare class AccessController {
  constructor(options?: AccessControllerOptions);
  /** Appends a rule, consulted after the existing ones. */
  addRule(rule: AccessRule): this;
  check(toolName: string, context?: Record<string, unknown>): boolean;
  /** Throws a ToolAccessError with code 'ACCESS_DENIED' (`Access denied to tool: <name>`) when `check` is false. */
  assert(toolName: string, context?: Record<string, unknown>): void;
}

export interface RateLimiterOptions {
  /** One budget shared by every call. */
  global?: RateLimit;
  /** One budget per session id. */
  perSession?: RateLimit;
  /** Tool pattern → limit; one budget per pattern, shared across sessions. Every matching pattern applies. */
  perTool?: Record<string, RateLimit>;
}

/** Seed API (not in the original): sliding-window call limits. */
export declare class RateLimiter {
  constructor(options?: RateLimiterOptions, clock?: Clock);
  /** True, and the call is counted against every applicable limit, when all of them have room. */
  allow(sessionId: string, toolName: string): boolean;
  /** The tightest applicable limit's remaining calls; Infinity when no limit applies. Records nothing. */
  remaining(sessionId: string, toolName: string): number;
  /** Clears one session's per-session budget, or every budget when called without an argument. */
  reset(sessionId?: string): void;
  /** Budgets currently holding calls. */
  stats(): { sessionBuckets: number; toolBuckets: number; globalBuckets: number };
}

// ============================================================================
// HTTP (framework-agnostic)
// ============================================================================

/** A framework-agnostic request as SessionHandler reads it. */
export interface BrokerRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  /** Aborted when the client disconnects; a POST /sessions run is then cancelled. */
  signal?: AbortSignal;
}

/** A framework-agnostic response as SessionHandler writes it. */
export interface BrokerResponse {
  status(code: number): BrokerResponse;
  json(data: unknown): void;
  setHeader(name: string, value: string): BrokerResponse;
  write(data: string): void;
  end(): void;
  flush?(): void;
}

/** A route's handler. */
export type RouteHandler = (req: BrokerRequest, res: BrokerResponse) => Promise<void>;

/** One route of `SessionHandler.getRoutes()`. */
export interface BrokerRoute {
  method: 'GET' | 'POST' | 'DELETE' | 'OPTIONS';
  path: string;
  handler: RouteHandler;
}

/** SessionHandler configuration. */
export interface SessionHandlerConfig {
  broker: Broker;
  /** Default true. */
  cors?: boolean;
  /** Default `['*']`. */
  allowedOrigins?: string[];
  /** List the cancel routes in `getRoutes()` too (not in the original; the Express helpers always register them). Default false. */
  extraRoutes?: boolean;
  /**
   * Turns tenancy on (not in the original): each request acts as the principal returned (a
   * string id, or an object with a string `id`; anything else is 401 UNAUTHORIZED). Sessions
   * belong to the principal that created them; others get 404 unless `authorize` allows.
   */
  resolvePrincipal?(request: BrokerRequest): string | { id: string } | undefined | Promise<string | { id: string } | undefined>;
  /** With `resolvePrincipal`: lets a principal reach a session it does not own. */
  authorize?(
    principal: string | { id: string },
    action: 'list' | 'read' | 'stream' | 'cancel' | 'delete',
    session: { sessionId: string; state: SessionStateValue; createdAt: number; expiresAt: number; owner: string | { id: string } | null },
  ): boolean | Promise<boolean>;
}

/** Body of `POST /sessions`. */
export interface CreateSessionRequest {
  code: string;
  sessionId?: string;
  config?: {
    /** → `limits.sessionTtlMs` (does not stop a run). */
    maxExecutionMs?: number;
    maxToolCalls?: number;
    heartbeatIntervalMs?: number;
  };
  filter?: EventFilterConfig;
}

/** Body of `GET /sessions/:sessionId`, and a row of `GET /sessions`. */
export interface SessionInfoResponse {
  sessionId: string;
  state: SessionStateValue;
  createdAt: number;
  expiresAt: number;
  /** In the list, `toolCallCount` is always 0, as in the original. */
  stats: { duration: number; toolCallCount: number };
}

/** Body of `GET /sessions`. */
export interface ListSessionsResponse {
  sessions: SessionInfoResponse[];
  total: number;
}

/** Body of every JSON error: INVALID_REQUEST, NOT_FOUND, SERVICE_UNAVAILABLE, SESSION_CREATE_ERROR, SESSION_EXISTS, INVALID_FILTER, INTERNAL_ERROR, UNAUTHORIZED (and on `listen()`: AT_CAPACITY, FILTER_TOO_LARGE, RATE_LIMITED, AUTH_THROTTLED). */
export interface ErrorResponse {
  code: string;
  message: string;
  details?: unknown;
}

/** Stream options (declared by the original, consumed nowhere). */
export interface StreamOptions {
  fromSeq?: number;
  heartbeats?: boolean;
  filter?: EventFilterConfig;
}

/**
 * The original's HTTP session API over any framework: `getRoutes()` lists GET/POST /sessions,
 * GET /sessions/:sessionId(/stream), DELETE /sessions/:sessionId and their OPTIONS routes.
 * Added: `POST /sessions/:sessionId/cancel` and the replay aliases `?from=` and `Last-Event-ID`
 * (used only when `fromSeq` is absent), which the original's own client sends.
 */
export declare class SessionHandler {
  constructor(config: SessionHandlerConfig);
  getRoutes(): BrokerRoute[];
  /** The routes the original lacks: POST and OPTIONS `/sessions/:sessionId/cancel`. */
  getExtraRoutes(): BrokerRoute[];
  listSessions: RouteHandler;
  createSession: RouteHandler;
  getSession: RouteHandler;
  streamSession: RouteHandler;
  terminateSession: RouteHandler;
  /** Cancels without removing the session, so its stream can still be replayed (not in the original). */
  cancelSession: RouteHandler;
  handleCors: RouteHandler;
}

/** Creates a SessionHandler. */
export declare function createSessionHandler(config: SessionHandlerConfig): SessionHandler;

/** An Express-style request handler. */
export type ExpressHandlerLike = (req: any, res: any, next: (error?: any) => void) => unknown;

/** What the Express helpers register routes on: an Express app or router, or anything with these methods. */
export interface ExpressRouterLike {
  get(path: string, ...handlers: ExpressHandlerLike[]): unknown;
  post(path: string, ...handlers: ExpressHandlerLike[]): unknown;
  delete(path: string, ...handlers: ExpressHandlerLike[]): unknown;
  options(path: string, ...handlers: ExpressHandlerLike[]): unknown;
}

/** An Express router, as `createExpressRouter` returns it (mount it with `app.use(path, router)`). */
export interface ExpressRouter extends ExpressRouterLike {
  (req: any, res: any, next: (error?: any) => void): void;
  use(...handlers: any[]): unknown;
}

/** The parts of the `express` module the helpers use when they are not given. */
export interface ExpressModuleLike {
  Router(): ExpressRouterLike;
  json(options?: Record<string, unknown>): ExpressHandlerLike;
}

/** Options of `registerExpressRoutes` (none exist in the original). */
export interface ExpressRoutesOptions {
  /** Path prefix of every route, e.g. `/api/enclave`. */
  prefix?: string;
  /** Run before every route handler. */
  middleware?: ExpressHandlerLike | ExpressHandlerLike[];
  /** Parse JSON bodies on the POST routes: default true when given a Broker, false for a SessionHandler (install `express.json()` yourself, as in the original). Also body-parser options or a parser. */
  json?: boolean | Record<string, unknown> | ExpressHandlerLike;
  /** CORS of the SessionHandler made for a Broker. */
  cors?: boolean;
  allowedOrigins?: string[];
  /** The express module, when `require('express')` would not find the application's. */
  express?: ExpressModuleLike;
}

/** Options of `createExpressRouter`. */
export interface ExpressRouterOptions extends ExpressRoutesOptions {
  /** Router factory, e.g. `express.Router`; default `require('express').Router`. */
  Router?: () => ExpressRouterLike;
}

/**
 * Registers the session routes on an Express app or router, one `router[method](path, ...)` each; a
 * rejected handler is logged and answered 500 INTERNAL_ERROR. Also accepts a Broker (a SessionHandler is
 * made for it) and options, as the docs show; the cancel route is always registered.
 */
export declare function registerExpressRoutes(
  router: ExpressRouterLike,
  handler: SessionHandler | Broker,
  options?: ExpressRoutesOptions,
): void;

/** Returns the router made by `options.Router` with every session route registered (JSON bodies parsed). */
export declare function createExpressRouter<R extends ExpressRouterLike>(
  handler: SessionHandler | Broker,
  options: ExpressRouterOptions & { Router: () => R },
): R;
/**
 * Returns an Express router with every session route registered, JSON bodies parsed, to mount with
 * `app.use(path, router)`. Unlike the original (whose router registered nothing) it works, and it also
 * accepts a Broker. Needs `express` installed unless `Router`/`express` is given.
 */
export declare function createExpressRouter(handler: SessionHandler | Broker, options?: ExpressRouterOptions): ExpressRouter;

// ============================================================================
// Event filtering
// ============================================================================

/** EventFilter options. */
export interface EventFilterOptions {
  config: EventFilterConfig;
  /** Called with errors raised while matching an event (the event then does not match). */
  onError?: (error: Error, event: StreamEvent) => void;
}

/**
 * Decides which events a client receives. Regex patterns run on a linear-time engine; a pattern it
 * cannot express runs on JavaScript's, unless the original's ReDoS heuristics flag it, and then never matches.
 */
export declare class EventFilter {
  /** Throws (a TypeError, as in the original) when `config.rules` is not an array. */
  constructor(options: EventFilterOptions);
  shouldSend(event: StreamEvent): boolean;
  filter(events: StreamEvent[]): StreamEvent[];
}

/** Creates an EventFilter. */
export declare function createEventFilter(options: EventFilterOptions): EventFilter;
/** A filter config matching event types: `{mode, rules: [{types: {types}}]}` (a config, not a filter). */
export declare function createTypeFilter(mode: FilterMode, types: EventType[]): EventFilterConfig;
/** A filter config matching payload content: `{mode, rules: [{content: {patterns: [{type, pattern}]}}]}`; default pattern type `regex`. */
export declare function createContentFilter(mode: FilterMode, pattern: string, patternType?: PatternType): EventFilterConfig;

// ============================================================================
// OpenAPI tool loading
// ============================================================================

/**
 * The methods of Node's EventEmitter, typed by an event map (name → listener arguments). The
 * poller and the source extend EventEmitter; declared here so no @types/node is needed.
 */
export interface OpenApiEventEmitter<Events extends { [E in keyof Events]: unknown[] }> {
  on<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this;
  addListener<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this;
  prependListener<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this;
  once<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this;
  prependOnceListener<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this;
  off<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this;
  removeListener<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): this;
  removeAllListeners(event?: keyof Events): this;
  emit<E extends keyof Events>(event: E, ...args: Events[E]): boolean;
  listenerCount(event: keyof Events): number;
  listeners<E extends keyof Events>(event: E): Array<(...args: Events[E]) => void>;
  rawListeners<E extends keyof Events>(event: E): Array<(...args: Events[E]) => void>;
  eventNames(): Array<keyof Events>;
  setMaxListeners(n: number): this;
  getMaxListeners(): number;
}

/** How the spec poller detects changes: `'content-hash'` never sends `If-None-Match` / `If-Modified-Since`. */
export type ChangeDetectionMode = 'content-hash' | 'etag' | 'auto';

/** Retries of one poll; the wait before retry n (from 0) is `min(initialDelayMs * backoffMultiplier^n, maxDelayMs)`. */
export interface PollerRetryConfig {
  /** Default 3. */
  maxRetries?: number;
  /** Default 1000. */
  initialDelayMs?: number;
  /** Default 10000. */
  maxDelayMs?: number;
  /** Default 2. */
  backoffMultiplier?: number;
}

/** Configuration of OpenApiSpecPoller (and the polling part of an OpenApiSource). */
export interface OpenApiPollerConfig {
  /** URL of the OpenAPI spec (JSON). */
  url: string;
  /** Default 60000. */
  intervalMs?: number;
  /** Per request; default 10000. */
  fetchTimeoutMs?: number;
  /** Default `'auto'`. */
  changeDetection?: ChangeDetectionMode;
  retry?: PollerRetryConfig;
  /** Failed polls in a row before `unhealthy`; default 3. */
  unhealthyThreshold?: number;
  /** Sent with every spec request. */
  headers?: Record<string, string>;
}

/** Events of OpenApiSpecPoller: name → listener arguments. */
export interface OpenApiPollerEvents {
  /** A body unlike the last one (always the first), with its SHA-256 hex. */
  changed: [spec: string, hash: string];
  /** 304, or the same body as last time. */
  unchanged: [];
  /** A poll failed after its retries (`HTTP <status>: <statusText>`, a network error or a timeout). */
  pollError: [error: Error];
  /** Failed polls in a row reached `unhealthyThreshold` (once until `recovered`). */
  unhealthy: [consecutiveFailures: number];
  /** The first successful poll after `unhealthy`. */
  recovered: [];
}

/**
 * Polls an OpenAPI spec URL and reports changes. Its timers never keep Node running (the
 * original's did).
 */
export declare class OpenApiSpecPoller {
  /** Throws a TypeError for a missing `url` or an out-of-range setting. */
  constructor(config: OpenApiPollerConfig);
  /** Polls now, then every `intervalMs`. No-op while started. */
  start(): void;
  /** Stops polling and aborts a poll under way; `start()` resumes. */
  stop(): void;
  /** SHA-256 hex of the last body reported as `changed`; null before the first. */
  getHash(): string | null;
  getConsecutiveFailures(): number;
  /**
   * One poll with its retries; resolves when it is over (with the poll already under way, if
   * any). Rejects only when a listener throws. Does nothing after `stop()` until `start()`.
   */
  poll(): Promise<void>;
  /** `stop()`, and removes every listener. */
  dispose(): void;
}

/** OpenApiSpecPoller is a Node EventEmitter of OpenApiPollerEvents. */
export interface OpenApiSpecPoller extends OpenApiEventEmitter<OpenApiPollerEvents> {}

/** Options of OpenApiToolLoader. */
export interface LoaderOptions {
  /** Base URL of the API the tools call. Default: the spec's `servers[0].url` (resolved against the spec URL in `fromURL`), else the spec URL's origin. */
  baseUrl?: string;
  /** Sent with every API request (and with the spec request in `fromURL`). */
  headers?: Record<string, string>;
  /** Names the tool of an operation; `operationId` is the spec's or `${method}_${path with non-alphanumerics as _}`. */
  namingStrategy?: (method: string, path: string, operationId?: string) => string;
  /** Only these operationIds. */
  includeOperations?: string[];
  /** Not these operationIds. */
  excludeOperations?: string[];
  /** Stored as each tool's `config.timeout` (not enforced); default 30000. */
  perToolDeadlineMs?: number;
  /** Tools are named `${sourceName}_${operationId}` (unless `namingStrategy`). */
  sourceName?: string;
}

/** Credentials of upstream requests: `Authorization: Bearer <token>`, `<header ?? 'X-API-Key'>: <token>`, or `Authorization: Basic <token>`. */
export interface UpstreamAuth {
  type: 'bearer' | 'api-key' | 'basic';
  /** Without a token no credential header is sent. */
  token?: string;
  /** The api-key header; default `X-API-Key`. */
  header?: string;
}

/**
 * Turns an OpenAPI 3 spec into tool definitions: one per operation (get, post, put, delete,
 * patch, head, options), with a zod args schema of its parameters plus `body`, and a handler
 * that calls the API (with `ToolContext.signal`) and returns its JSON or text.
 */
export declare class OpenApiToolLoader {
  private constructor();
  /**
   * Fetches the spec (with `options.headers` and `auth`) and loads it. Rejects with
   * `Failed to fetch OpenAPI spec from <url>: <status>` (or the network error), for a body
   * that is not JSON, and for duplicate tool names.
   */
  static fromURL(url: string, options?: LoaderOptions, auth?: UpstreamAuth): Promise<OpenApiToolLoader>;
  /**
   * Loads a spec object. Rejects with `Cannot resolve relative server URL "…" without a source
   * URL. Use fromURL() or provide an explicit baseUrl option.` when `servers[0].url` is relative
   * and there is no `baseUrl`, and with `Duplicate tool name "…" generated for …` on a name clash.
   */
  static fromSpec(spec: Record<string, unknown>, options?: LoaderOptions, auth?: UpstreamAuth): Promise<OpenApiToolLoader>;
  /** The tool definitions, ready for `ToolRegistry.register` or `broker.tool(def.name, def)`. */
  getTools(): ToolDefinition[];
  getToolNames(): Set<string>;
  /** SHA-256 hex of `JSON.stringify(spec)`. */
  getSpecHash(): string;
  /** The base URL the tools call; undefined for a `fromSpec` loader without one (not in the original). */
  getBaseUrl(): string | undefined;
}

/** Configuration of an OpenApiSource (`broker.openapi(config)`). */
export interface OpenApiSourceConfig extends OpenApiPollerConfig {
  /** Service name; tools are named `${name}_${operationId}`. */
  name: string;
  /** Base URL of the API the tools call; wins over `loaderOptions.baseUrl`. */
  baseUrl: string;
  /** `sourceName` is always `name`. */
  loaderOptions?: LoaderOptions;
  /** Used for the spec request of a full load and for every API request (the poller sends only `headers`). */
  auth?: UpstreamAuth;
}

/** How an OpenApiSource's polling is doing: `'unknown'` until the first load. */
export type SourceHealthStatus = 'healthy' | 'unhealthy' | 'unknown';

/** `OpenApiSource.getStats()`. */
export interface OpenApiSourceStats {
  toolCount: number;
  /** ISO time of the last load; `''` before the first. */
  lastUpdate: string;
  /** `getSpecHash()` of the last load; `''` before the first. */
  specHash: string;
  pollHealth: SourceHealthStatus;
}

/** Payload of OpenApiSource's `toolsUpdated`: tool names by what happened to them. */
export interface ToolsUpdatedEvent {
  added: string[];
  removed: string[];
  /** Present before and after (replaced with the new definition). */
  updated: string[];
}

/** Events of OpenApiSource: name → listener arguments (not a type of the original). */
export interface OpenApiSourceEvents {
  /** After every load. */
  toolsUpdated: [event: ToolsUpdatedEvent];
  /** After a load that added or removed tools; the payload of a `catalog_changed` stream event (which is never sent), `version` being the spec hash. */
  catalogChanged: [event: CatalogChangedPayload];
  unhealthy: [consecutiveFailures: number];
  recovered: [];
  /** A failed poll, or a changed spec that could not be loaded. Without a listener it is dropped (the original crashed or lost it). */
  error: [error: Error];
}

/** The registry an OpenApiSource keeps in step; `replace` is used when present. */
export interface OpenApiToolTarget {
  register(definition: ToolDefinition): void;
  unregister(name: string): boolean | void;
  has(name: string): boolean;
  replace?(definition: ToolDefinition): void;
}

/**
 * Keeps a tool registry in step with an OpenAPI spec: `start()` loads the spec's tools, then
 * polls it and registers, replaces and removes tools as it changes. Loads run one at a time.
 */
export declare class OpenApiSource {
  /** The original's argument order. Throws a TypeError for a bad registry or config. */
  constructor(toolRegistry: ToolRegistry | OpenApiToolTarget, config: OpenApiSourceConfig);
  /** The same, arguments the other way round (not in the original). */
  constructor(config: OpenApiSourceConfig, toolRegistry: ToolRegistry | OpenApiToolTarget);
  /** `refresh()`, then polls. Rejects when that first load fails (and then does not poll), or with `OpenApiSource is disposed`. */
  start(): Promise<void>;
  /** Stops polling; `start()` resumes. */
  stop(): void;
  /** Fetches the spec and brings the registry in line with it. Rejects with the loader's error, or `OpenApiSource is disposed`. */
  refresh(): Promise<void>;
  /** Names of the tools this source registered. */
  getToolNames(): Set<string>;
  getStats(): OpenApiSourceStats;
  getName(): string;
  /** Stops polling for good and removes every listener; the tools stay registered. Idempotent. */
  dispose(): void;
}

/** OpenApiSource is a Node EventEmitter of OpenApiSourceEvents (`emit('error')` without a listener throws). */
export interface OpenApiSource extends OpenApiEventEmitter<OpenApiSourceEvents> {}

/** An action of `GET /code/actions`. The original declares the optional fields but never fills them. */
export interface CatalogAction {
  name: string;
  description?: string;
  inputSchema?: Record<string, unknown>;
  /** The name of the source that provided the tool, else `'default'`. */
  service: string;
  tags?: string[];
  deprecated?: boolean;
}

/** A service (OpenAPI source) of the catalog. */
export interface CatalogService {
  name: string;
  /** Always `''`: the spec URL stays internal, as in the original. */
  specUrl: string;
  /** The source's `getStats().lastUpdate`. */
  lastUpdated: string;
  actionCount: number;
}

/** Body of `GET /code/actions`. */
export interface CatalogResponse {
  /** Every tool of the registry, in registration order. */
  actions: CatalogAction[];
  services: CatalogService[];
  /** The sources' spec hashes, sorted and joined with `:`; `'empty'` without sources. */
  version: string;
}

/** The route of `CatalogHandler.getRoutes()`. */
export interface CatalogRoute {
  method: 'GET';
  path: '/code/actions';
  handler: RouteHandler;
}

/**
 * `GET /code/actions`: the catalog of a registry's tools and of the OpenAPI sources they came
 * from. Mount it with `registerExpressRoutes(router, catalogHandler)`; it is not part of SessionHandler.
 */
export declare class CatalogHandler {
  /** `sources` is read at every request, so sources pushed to the same array later are included. */
  constructor(toolRegistry: Pick<ToolRegistry, 'list' | 'get'>, sources?: readonly OpenApiSource[]);
  getRoutes(): CatalogRoute[];
  buildCatalog(): CatalogResponse;
}

// ---------------------------------------------------------------- runtime worker (extracted mode)

/** `createRuntimeWorker(config)`: the original `@enclave-vm/runtime`'s options. */
export interface RuntimeConfig {
  /** Default 3001; 0 picks a free port (see `worker.port`). */
  port?: number;
  /** Default '0.0.0.0'. */
  host?: string;
  /** Default '/ws'. */
  wsPath?: string;
  /** Sessions run at once (default 10); brokers queue what does not fit. */
  maxSessions?: number;
  /** Limits for keys an `execute` request leaves out (a broker always sends its own). */
  defaultLimits?: SessionLimitsInput;
  /** Log start and stop. */
  debug?: boolean;
  /** Ping each connection this often (default 15000; 0 = off). */
  heartbeatIntervalMs?: number;
  /** Drop a connection silent this long (default 30000; 0 = never). */
  connectionTimeoutMs?: number;
  /** Tokens clients must present (`Authorization: Bearer <token>` or `?token=`); none = open. */
  auth?: { type?: 'bearer'; token?: string; tokens?: string[] };
  /** Largest frame taken from a client (default 64 MiB). */
  maxMessageBytes?: number;
}

export type RuntimeState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface RuntimeStats {
  state: RuntimeState;
  activeSessions: number;
  totalSessions: number;
  startedAt: number;
  uptimeMs: number;
  memoryUsage: { heapUsed: number; heapTotal: number; rss: number };
  connections: number;
  maxSessions: number;
  engines: { processes: number; idle: number; queued: number };
}

export interface RuntimeSession {
  sessionId: string;
  state: string;
  createdAt: number;
  expiresAt: number;
}

/** A runtime worker: this process's engine pool as a WebSocket service (served from Rust). */
export declare class RuntimeWorker {
  constructor(config?: RuntimeConfig);
  readonly isRunning: boolean;
  /** The bound port, after `start()`. */
  readonly port: number | undefined;
  /** `ws://host:port/wsPath`, after `start()`. */
  readonly url: string | undefined;
  /** Binds and serves; rejects on bind errors (EADDRINUSE). Keeps Node alive until `stop()`. */
  start(): Promise<void>;
  /** Refuses new work at once, lets running sessions finish for `timeout` ms (10000), then cancels them. */
  stop(options?: { timeout?: number }): Promise<void>;
  getStats(): RuntimeStats;
  getSessions(): RuntimeSession[];
}

export declare function createRuntimeWorker(config?: RuntimeConfig): RuntimeWorker;
