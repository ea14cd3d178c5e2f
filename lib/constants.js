// Protocol constants of @enclave-vm/types that broker users see (limits, states, events,
// filters); `enclave-broker-rs/types` (lib/types/) offers them under the original's names.
'use strict';

const PROTOCOL_VERSION = 2;
const PROTOCOL_VERSION_V1 = 1;
const SESSION_ID_PREFIX = 's_';
const CALL_ID_PREFIX = 'c_';
const REF_ID_PREFIX = 'ref_';

const DEFAULT_SESSION_LIMITS = Object.freeze({
  sessionTtlMs: 60000,
  maxToolCalls: 50,
  maxStdoutBytes: 262144,
  maxToolResultBytes: 5242880,
  toolTimeoutMs: 30000,
  heartbeatIntervalMs: 15000,
  deadlineMs: 0,
  perToolDeadlineMs: 30000,
  cancelOnFirstError: false,
});

const SessionState = Object.freeze({
  Starting: 'starting',
  Running: 'running',
  WaitingForTool: 'waiting_for_tool',
  Completed: 'completed',
  Cancelled: 'cancelled',
  Failed: 'failed',
});

const EventType = Object.freeze({
  SessionInit: 'session_init',
  Stdout: 'stdout',
  Log: 'log',
  ToolCall: 'tool_call',
  ToolResultApplied: 'tool_result_applied',
  Final: 'final',
  Heartbeat: 'heartbeat',
  Error: 'error',
  Encrypted: 'enc',
  PartialResult: 'partial_result',
  ToolProgress: 'tool_progress',
  DeadlineExceeded: 'deadline_exceeded',
  CatalogChanged: 'catalog_changed',
});

const LogLevel = Object.freeze({ Debug: 'debug', Info: 'info', Warn: 'warn', Error: 'error' });

const FilterMode = Object.freeze({ Include: 'include', Exclude: 'exclude' });
const PatternType = Object.freeze({ Exact: 'exact', Prefix: 'prefix', Regex: 'regex', Glob: 'glob' });
const DEFAULT_ALWAYS_ALLOW = Object.freeze(['session_init', 'final']);

// Depth limits per security level (the original's maxSanitizeDepth).
const SECURITY_LEVEL_MAX_DEPTH = Object.freeze({ STRICT: 5, SECURE: 10, STANDARD: 20, PERMISSIVE: 50 });

module.exports = {
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_V1,
  SESSION_ID_PREFIX,
  CALL_ID_PREFIX,
  REF_ID_PREFIX,
  DEFAULT_SESSION_LIMITS,
  SessionState,
  EventType,
  LogLevel,
  FilterMode,
  PatternType,
  DEFAULT_ALWAYS_ALLOW,
  SECURITY_LEVEL_MAX_DEPTH,
};
