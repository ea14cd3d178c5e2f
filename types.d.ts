// Type declarations of `enclave-broker-rs/types`: the protocol helpers of @enclave-vm/types
// 2.15.2 under their names. Event and payload types are the ones the broker's streams have
// (from index.d.ts, used here as `broker.X`); schemas are zod 4 schemas of the same shapes.
import type { z } from 'zod';
import type * as broker from './index.js';

export type {
  StreamEvent,
  SessionInitEvent,
  StdoutEvent,
  LogEvent,
  ToolCallEvent,
  ToolResultAppliedEvent,
  FinalEvent,
  HeartbeatEvent,
  ErrorEvent,
  PartialResultEvent,
  ToolProgressEvent,
  DeadlineExceededEvent,
  CatalogChangedEvent,
  SessionLimits,
  ToolConfig,
  ErrorPayload,
  ErrorDetail,
  SessionStats,
  ToolProgressPhase,
  SessionInitPayload,
  StdoutPayload,
  LogPayload,
  ToolCallPayload,
  ToolResultAppliedPayload,
  FinalPayload,
  HeartbeatPayload,
  ErrorEventPayload,
  PartialResultPayload,
  ToolProgressPayload,
  DeadlineExceededPayload,
  CatalogChangedPayload,
  ContentPattern,
  FilterRule,
  EventFilterConfig,
} from './index.js';

// ============================================================================
// Protocol
// ============================================================================

export declare const PROTOCOL_VERSION: 2;
/** The earlier protocol version, still accepted by the schemas. */
export declare const PROTOCOL_VERSION_V1: 1;
export type ProtocolVersion = typeof PROTOCOL_VERSION | typeof PROTOCOL_VERSION_V1;
export declare const SESSION_ID_PREFIX: 's_';
export declare const CALL_ID_PREFIX: 'c_';
export declare const REF_ID_PREFIX: 'ref_';
export type SessionId = `s_${string}`;
export type CallId = `c_${string}`;
export type RefId = `ref_${string}`;
/** `s_<uuid v4>`. */
export declare function generateSessionId(): SessionId;
/** `c_<uuid v4>`. */
export declare function generateCallId(): CallId;
/** `ref_<uuid v4>`. */
export declare function generateRefId(): RefId;
/** True for a string with the prefix (any rest). */
export declare function isSessionId(value: string): value is SessionId;
export declare function isCallId(value: string): value is CallId;
export declare function isRefId(value: string): value is RefId;
/** Every limit's default (the broker's too). */
export declare const DEFAULT_SESSION_LIMITS: Readonly<Required<broker.SessionLimits>>;
export declare const SessionState: {
  readonly Starting: 'starting';
  readonly Running: 'running';
  readonly WaitingForTool: 'waiting_for_tool';
  readonly Completed: 'completed';
  readonly Cancelled: 'cancelled';
  readonly Failed: 'failed';
};
export type SessionState = (typeof SessionState)[keyof typeof SessionState];
export declare const LogLevel: { readonly Debug: 'debug'; readonly Info: 'info'; readonly Warn: 'warn'; readonly Error: 'error' };
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];
/** A value passed by reference. */
export interface RefToken {
  $ref: { id: RefId };
}
export declare function isRefToken(value: unknown): value is RefToken;
/** `{ $ref: { id } }`; without an id (the seed documents' form) a fresh one is generated. Throws a TypeError for an id without `ref_`. */
export declare function createRefToken(id?: RefId): RefToken;
export interface ErrorInfo {
  message: string;
  code?: string;
  stack?: string;
}

// ============================================================================
// Events
// ============================================================================

export declare const EventType: {
  readonly SessionInit: 'session_init';
  readonly Stdout: 'stdout';
  readonly Log: 'log';
  readonly ToolCall: 'tool_call';
  readonly ToolResultApplied: 'tool_result_applied';
  readonly Final: 'final';
  readonly Heartbeat: 'heartbeat';
  readonly Error: 'error';
  readonly Encrypted: 'enc';
  readonly PartialResult: 'partial_result';
  readonly ToolProgress: 'tool_progress';
  readonly DeadlineExceeded: 'deadline_exceeded';
  readonly CatalogChanged: 'catalog_changed';
};
export type EventType = (typeof EventType)[keyof typeof EventType];
/** The envelope every event has. */
export interface BaseEvent {
  protocolVersion: ProtocolVersion;
  sessionId: SessionId;
  seq: number;
}
export interface EncryptionConfig {
  enabled: boolean;
  keyId?: string;
}
/** An event as this package emits it, or as a schema parsed it. */
type AnyEvent = broker.StreamEvent | ParsedStreamEvent;
export declare function getEventType<E extends AnyEvent>(event: E): E['type'];
// Each guard narrows the union it is given (StreamEvent, or a parse result's data).
export declare function isSessionInitEvent<E extends AnyEvent>(event: E): event is Extract<E, { type: 'session_init' }>;
export declare function isStdoutEvent<E extends AnyEvent>(event: E): event is Extract<E, { type: 'stdout' }>;
export declare function isLogEvent<E extends AnyEvent>(event: E): event is Extract<E, { type: 'log' }>;
export declare function isToolCallEvent<E extends AnyEvent>(event: E): event is Extract<E, { type: 'tool_call' }>;
export declare function isToolResultAppliedEvent<E extends AnyEvent>(event: E): event is Extract<E, { type: 'tool_result_applied' }>;
export declare function isFinalEvent<E extends AnyEvent>(event: E): event is Extract<E, { type: 'final' }>;
export declare function isHeartbeatEvent<E extends AnyEvent>(event: E): event is Extract<E, { type: 'heartbeat' }>;
export declare function isErrorEvent<E extends AnyEvent>(event: E): event is Extract<E, { type: 'error' }>;
export declare function isPartialResultEvent<E extends AnyEvent>(event: E): event is Extract<E, { type: 'partial_result' }>;
export declare function isToolProgressEvent<E extends AnyEvent>(event: E): event is Extract<E, { type: 'tool_progress' }>;
export declare function isDeadlineExceededEvent<E extends AnyEvent>(event: E): event is Extract<E, { type: 'deadline_exceeded' }>;
export declare function isCatalogChangedEvent<E extends AnyEvent>(event: E): event is Extract<E, { type: 'catalog_changed' }>;

export declare const RuntimeChannelMessageType: { readonly ToolResultSubmit: 'tool_result_submit'; readonly Cancel: 'cancel' };
export type RuntimeChannelMessageType = (typeof RuntimeChannelMessageType)[keyof typeof RuntimeChannelMessageType];
export interface ToolResultSubmitPayload {
  callId: CallId;
  ok: boolean;
  result?: unknown;
  error?: ErrorInfo;
}
export interface ToolResultSubmitMessage {
  protocolVersion: ProtocolVersion;
  sessionId: SessionId;
  type: 'tool_result_submit';
  payload: ToolResultSubmitPayload;
}
export interface CancelPayload {
  reason?: string;
}
export interface CancelMessage {
  protocolVersion: ProtocolVersion;
  sessionId: SessionId;
  type: 'cancel';
  payload: CancelPayload;
}
export type RuntimeChannelMessage = ToolResultSubmitMessage | CancelMessage;

// ============================================================================
// Encryption
// ============================================================================

export declare const SupportedCurve: { readonly P256: 'P-256' };
export type SupportedCurve = (typeof SupportedCurve)[keyof typeof SupportedCurve];
export declare const EncryptionAlgorithm: { readonly AES_GCM_256: 'AES-GCM-256' };
export type EncryptionAlgorithm = (typeof EncryptionAlgorithm)[keyof typeof EncryptionAlgorithm];
export declare const KeyDerivation: { readonly HKDF_SHA256: 'HKDF-SHA-256' };
export type KeyDerivation = (typeof KeyDerivation)[keyof typeof KeyDerivation];
export declare const EncryptionMode: { readonly Disabled: 'disabled'; readonly Optional: 'optional'; readonly Required: 'required' };
export type EncryptionMode = (typeof EncryptionMode)[keyof typeof EncryptionMode];
export declare const EncryptionErrorCode: {
  readonly HandshakeFailed: 'ENCRYPTION_HANDSHAKE_FAILED';
  readonly KeyDerivationFailed: 'ENCRYPTION_KEY_DERIVATION_FAILED';
  readonly DecryptionFailed: 'ENCRYPTION_DECRYPTION_FAILED';
  readonly NonceReuse: 'ENCRYPTION_NONCE_REUSE';
  readonly KeyExpired: 'ENCRYPTION_KEY_EXPIRED';
  readonly UnsupportedAlgorithm: 'ENCRYPTION_UNSUPPORTED_ALGORITHM';
  readonly InvalidPublicKey: 'ENCRYPTION_INVALID_PUBLIC_KEY';
  readonly SignatureVerificationFailed: 'ENCRYPTION_SIGNATURE_VERIFICATION_FAILED';
};
export type EncryptionErrorCode = (typeof EncryptionErrorCode)[keyof typeof EncryptionErrorCode];
/** HKDF `info` of each direction's key (the `listen()` server encrypts server → client). */
export declare const HkdfInfo: { readonly ClientToServer: 'enclavejs-c2s-enc'; readonly ServerToClient: 'enclavejs-s2c-enc' };
export type HkdfInfo = (typeof HkdfInfo)[keyof typeof HkdfInfo];
export declare const AES_GCM_NONCE_SIZE: 12;
export declare const AES_GCM_TAG_SIZE: 16;
export declare const AES_256_KEY_SIZE: 32;
export declare const MAX_MESSAGES_PER_KEY: bigint;
export interface EncryptedEnvelopePayload {
  kid: string;
  nonceB64: string;
  /** The event's JSON under AES-256-GCM, with the 16-byte tag appended. */
  ciphertextB64: string;
  tagB64?: string;
}
export interface EncryptedEnvelope {
  protocolVersion: ProtocolVersion;
  sessionId: SessionId;
  seq: number;
  type: 'enc';
  payload: EncryptedEnvelopePayload;
}
export interface ClientHello {
  protocolVersion: ProtocolVersion;
  clientEphemeralPubKeyB64: string;
  curve: SupportedCurve;
  supportedAlgorithms: EncryptionAlgorithm[];
}
export interface ServerHello {
  protocolVersion: ProtocolVersion;
  serverEphemeralPubKeyB64: string;
  curve: SupportedCurve;
  selectedAlgorithm: EncryptionAlgorithm;
  kdf: KeyDerivation;
  keyId: string;
  signatureB64?: string;
}
export interface EncryptionRequest {
  mode: EncryptionMode;
  clientHello?: ClientHello;
}
export interface SessionKeyInfo {
  keyId: string;
  algorithm: EncryptionAlgorithm;
  keyBytes: Uint8Array;
  nonceCounter: bigint;
  maxNonces: bigint;
  createdAt: number;
}
export type MaybeEncrypted<T> = T | EncryptedEnvelope;
export declare function isEncryptedEnvelope(value: unknown): value is EncryptedEnvelope;

// ============================================================================
// Filters
// ============================================================================

export declare const FilterMode: { readonly Include: 'include'; readonly Exclude: 'exclude' };
export type FilterMode = (typeof FilterMode)[keyof typeof FilterMode];
export declare const PatternType: { readonly Exact: 'exact'; readonly Prefix: 'prefix'; readonly Regex: 'regex'; readonly Glob: 'glob' };
export type PatternType = (typeof PatternType)[keyof typeof PatternType];
/** Events every filter lets through. */
export declare const DEFAULT_ALWAYS_ALLOW: readonly broker.StreamEvent['type'][];
export interface TypeFilter {
  types: EventType[];
}
export interface ContentFilter {
  patterns: broker.ContentPattern[];
  match?: 'any' | 'all';
}

// ============================================================================
// Schemas (zod 4; unknown keys are stripped)
// ============================================================================

/** An event as a schema accepts it: `protocolVersion` 1 or 2. */
export type ParsedStreamEvent = Versioned<broker.StreamEvent>;
export type ParsedEncryptedEnvelope = EncryptedEnvelope;
export type ParsedRuntimeChannelMessage = RuntimeChannelMessage;
export interface ParsedCreateSessionRequest {
  protocolVersion: ProtocolVersion;
  code: string;
  limits?: broker.SessionLimits;
  encryption?: EncryptionRequest;
}
// Each member of a union with `protocolVersion` widened to 1 | 2.
type Versioned<E> = E extends unknown ? Omit<E, 'protocolVersion'> & { protocolVersion: ProtocolVersion } : never;
type Schema<T> = z.ZodType<T>;

export declare const ProtocolVersionSchema: Schema<ProtocolVersion>;
export declare const SessionIdSchema: Schema<string>;
export declare const CallIdSchema: Schema<string>;
export declare const RefIdSchema: Schema<string>;
export declare const LogLevelSchema: Schema<LogLevel>;
export declare const SessionStateSchema: Schema<SessionState>;
export declare const ErrorInfoSchema: Schema<ErrorInfo>;
export declare const RefTokenSchema: Schema<{ $ref: { id: string } }>;
export declare const SessionLimitsSchema: Schema<broker.SessionLimits>;
export declare const ToolConfigSchema: Schema<broker.ToolConfig>;
export declare const BaseEventSchema: Schema<{ protocolVersion: ProtocolVersion; sessionId: string; seq: number }>;
export declare const EncryptionConfigSchema: Schema<EncryptionConfig>;
export declare const SessionInitPayloadSchema: Schema<{ cancelUrl: string; expiresAt: string; encryption: EncryptionConfig; replayUrl?: string }>;
export declare const StdoutPayloadSchema: Schema<broker.StdoutPayload>;
export declare const LogPayloadSchema: Schema<broker.LogPayload>;
export declare const ToolCallPayloadSchema: Schema<{ callId: string; toolName: string; args: unknown }>;
export declare const ToolResultAppliedPayloadSchema: Schema<broker.ToolResultAppliedPayload>;
export declare const SessionStatsSchema: Schema<broker.SessionStats>;
export declare const FinalPayloadSchema: Schema<{ ok: boolean; result?: unknown; error?: ErrorInfo; errors?: broker.ErrorPayload[]; stats?: broker.SessionStats }>;
export declare const HeartbeatPayloadSchema: Schema<broker.HeartbeatPayload>;
export declare const ErrorEventPayloadSchema: Schema<{ message: string; code?: string; recoverable?: boolean }>;
export declare const SessionInitEventSchema: Schema<Versioned<broker.SessionInitEvent>>;
export declare const StdoutEventSchema: Schema<Versioned<broker.StdoutEvent>>;
export declare const LogEventSchema: Schema<Versioned<broker.LogEvent>>;
export declare const ToolCallEventSchema: Schema<Versioned<broker.ToolCallEvent>>;
export declare const ToolResultAppliedEventSchema: Schema<Versioned<broker.ToolResultAppliedEvent>>;
export declare const FinalEventSchema: Schema<Versioned<broker.FinalEvent>>;
export declare const HeartbeatEventSchema: Schema<Versioned<broker.HeartbeatEvent>>;
export declare const ErrorEventSchema: Schema<Versioned<broker.ErrorEvent>>;
export declare const ErrorDetailSchema: Schema<broker.ErrorDetail>;
export declare const ErrorPayloadSchema: Schema<broker.ErrorPayload>;
export declare const PartialResultPayloadSchema: Schema<broker.PartialResultPayload>;
export declare const PartialResultEventSchema: Schema<Versioned<broker.PartialResultEvent>>;
export declare const ToolProgressPhaseSchema: Schema<broker.ToolProgressPhase>;
export declare const ToolProgressPayloadSchema: Schema<broker.ToolProgressPayload>;
export declare const ToolProgressEventSchema: Schema<Versioned<broker.ToolProgressEvent>>;
export declare const DeadlineExceededPayloadSchema: Schema<broker.DeadlineExceededPayload>;
export declare const DeadlineExceededEventSchema: Schema<Versioned<broker.DeadlineExceededEvent>>;
export declare const CatalogChangedPayloadSchema: Schema<broker.CatalogChangedPayload>;
export declare const CatalogChangedEventSchema: Schema<Versioned<broker.CatalogChangedEvent>>;
export declare const StreamEventSchema: Schema<ParsedStreamEvent>;
export declare const SupportedCurveSchema: Schema<SupportedCurve>;
export declare const EncryptionAlgorithmSchema: Schema<EncryptionAlgorithm>;
export declare const KeyDerivationSchema: Schema<KeyDerivation>;
export declare const EncryptionModeSchema: Schema<EncryptionMode>;
export declare const EncryptedEnvelopePayloadSchema: Schema<EncryptedEnvelopePayload>;
export declare const EncryptedEnvelopeSchema: Schema<ParsedEncryptedEnvelope>;
export declare const ClientHelloSchema: Schema<ClientHello>;
export declare const ServerHelloSchema: Schema<ServerHello>;
export declare const EncryptionRequestSchema: Schema<EncryptionRequest>;
export declare const ToolResultSubmitPayloadSchema: Schema<ToolResultSubmitPayload>;
export declare const ToolResultSubmitMessageSchema: Schema<ToolResultSubmitMessage>;
export declare const CancelPayloadSchema: Schema<CancelPayload>;
export declare const CancelMessageSchema: Schema<CancelMessage>;
export declare const RuntimeChannelMessageSchema: Schema<ParsedRuntimeChannelMessage>;
export declare const CreateSessionRequestSchema: Schema<ParsedCreateSessionRequest>;

/** zod's safeParse result: `{success: true, data}` or `{success: false, error}`. */
export type ParseResult<T> = z.ZodSafeParseResult<T>;
export declare function parseStreamEvent(data: unknown): ParseResult<ParsedStreamEvent>;
export declare function parseEncryptedEnvelope(data: unknown): ParseResult<ParsedEncryptedEnvelope>;
export declare function parseRuntimeChannelMessage(data: unknown): ParseResult<ParsedRuntimeChannelMessage>;
export declare function parseCreateSessionRequest(data: unknown): ParseResult<ParsedCreateSessionRequest>;
/** An encrypted envelope when `type` is `'enc'`, else a plain event. */
export declare function parseStreamEventOrEncrypted(data: unknown): ParseResult<ParsedStreamEvent | ParsedEncryptedEnvelope>;
