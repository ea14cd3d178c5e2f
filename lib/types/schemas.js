// zod schemas of the protocol and their `parse*` helpers, under the names of
// @enclave-vm/types 2.15.2. Objects are zod's default (unknown keys are stripped, not
// refused); timestamps are ISO 8601 in UTC; `protocolVersion` 1 is still accepted. Built
// when this module loads: only `enclave-broker-rs/types` loads it, never the broker.
'use strict';

const { z } = require('zod');
const C = require('../constants');
const { RuntimeChannelMessageType } = require('./events');
const { SupportedCurve, EncryptionAlgorithm, KeyDerivation, EncryptionMode } = require('./encryption');

const values = (record) => Object.values(record);
const prefixed = (prefix) => z.string().startsWith(prefix).min(prefix.length + 1);
const isoTime = () => z.iso.datetime();
const count = () => z.number().int().nonnegative();
const positiveInt = () => z.number().int().positive();
// An event schema: the envelope plus its `type` and `payload`.
const eventOf = (type, payload) => BaseEventSchema.extend({ type: z.literal(type), payload });

const ProtocolVersionSchema = z.union([z.literal(C.PROTOCOL_VERSION), z.literal(C.PROTOCOL_VERSION_V1)]);
const SessionIdSchema = prefixed(C.SESSION_ID_PREFIX);
const CallIdSchema = prefixed(C.CALL_ID_PREFIX);
const RefIdSchema = prefixed(C.REF_ID_PREFIX);
const LogLevelSchema = z.enum(values(C.LogLevel));
const SessionStateSchema = z.enum(values(C.SessionState));
const ErrorInfoSchema = z.object({ message: z.string(), code: z.string().optional(), stack: z.string().optional() });
const RefTokenSchema = z.object({ $ref: z.object({ id: RefIdSchema }) });
const SessionLimitsSchema = z.object({
  sessionTtlMs: positiveInt().optional(),
  maxToolCalls: positiveInt().optional(),
  maxStdoutBytes: positiveInt().optional(),
  maxToolResultBytes: positiveInt().optional(),
  toolTimeoutMs: positiveInt().optional(),
  heartbeatIntervalMs: positiveInt().optional(),
  deadlineMs: count().optional(),
  perToolDeadlineMs: positiveInt().optional(),
  cancelOnFirstError: z.boolean().optional(),
});
const ToolConfigSchema = z.object({
  timeout: positiveInt().optional(),
  retryable: z.boolean().optional(),
  maxRetries: count().optional(),
  runtimeReadable: z.boolean().optional(),
});
const BaseEventSchema = z.object({ protocolVersion: ProtocolVersionSchema, sessionId: SessionIdSchema, seq: count() });

const EncryptionConfigSchema = z.object({ enabled: z.boolean(), keyId: z.string().optional() });
const SessionInitPayloadSchema = z.object({
  cancelUrl: z.string(),
  expiresAt: isoTime(),
  encryption: EncryptionConfigSchema,
  replayUrl: z.string().optional(),
});
const StdoutPayloadSchema = z.object({ chunk: z.string() });
const LogPayloadSchema = z.object({
  level: LogLevelSchema,
  message: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
});
const ToolCallPayloadSchema = z.object({ callId: CallIdSchema, toolName: z.string().min(1), args: z.unknown() });
const ToolResultAppliedPayloadSchema = z.object({ callId: CallIdSchema });
const SessionStatsSchema = z.object({ durationMs: z.number().nonnegative(), toolCallCount: count(), stdoutBytes: count() });
const ErrorDetailSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('retry_info'), retryDelayMs: z.number().nonnegative() }),
  z.object({ type: z.literal('upstream_info'), statusCode: z.number().int(), url: z.string() }),
  z.object({ type: z.literal('validation_info'), field: z.string(), reason: z.string() }),
  z.object({ type: z.literal('quota_info'), limit: z.number().nonnegative(), used: z.number().nonnegative() }),
]);
const ErrorPayloadSchema = z.object({
  code: z.string(),
  message: z.string(),
  path: z.array(z.string()).optional(),
  details: z.array(ErrorDetailSchema).optional(),
});
const FinalPayloadSchema = z.object({
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: ErrorInfoSchema.optional(),
  errors: z.array(ErrorPayloadSchema).optional(),
  stats: SessionStatsSchema.optional(),
});
const HeartbeatPayloadSchema = z.object({ ts: isoTime() });
const ErrorEventPayloadSchema = z.object({
  message: z.string(),
  code: z.string().optional(),
  recoverable: z.boolean().optional(),
});
const PartialResultPayloadSchema = z.object({
  path: z.array(z.string()),
  data: z.unknown().optional(),
  error: ErrorPayloadSchema.optional(),
  hasNext: z.boolean(),
});
const ToolProgressPhaseSchema = z.enum(['connecting', 'sending', 'receiving', 'processing']);
const ToolProgressPayloadSchema = z.object({
  callId: CallIdSchema,
  phase: ToolProgressPhaseSchema,
  bytesReceived: count().optional(),
  totalBytes: count().optional(),
  elapsedMs: z.number().nonnegative(),
});
const DeadlineExceededPayloadSchema = z.object({ elapsedMs: z.number().nonnegative(), budgetMs: z.number().positive() });
const CatalogChangedPayloadSchema = z.object({
  version: z.string().min(1),
  addedActions: z.array(z.string()),
  removedActions: z.array(z.string()),
});

const E = C.EventType;
const SessionInitEventSchema = eventOf(E.SessionInit, SessionInitPayloadSchema);
const StdoutEventSchema = eventOf(E.Stdout, StdoutPayloadSchema);
const LogEventSchema = eventOf(E.Log, LogPayloadSchema);
const ToolCallEventSchema = eventOf(E.ToolCall, ToolCallPayloadSchema);
const ToolResultAppliedEventSchema = eventOf(E.ToolResultApplied, ToolResultAppliedPayloadSchema);
const FinalEventSchema = eventOf(E.Final, FinalPayloadSchema);
const HeartbeatEventSchema = eventOf(E.Heartbeat, HeartbeatPayloadSchema);
const ErrorEventSchema = eventOf(E.Error, ErrorEventPayloadSchema);
const PartialResultEventSchema = eventOf(E.PartialResult, PartialResultPayloadSchema);
const ToolProgressEventSchema = eventOf(E.ToolProgress, ToolProgressPayloadSchema);
const DeadlineExceededEventSchema = eventOf(E.DeadlineExceeded, DeadlineExceededPayloadSchema);
const CatalogChangedEventSchema = eventOf(E.CatalogChanged, CatalogChangedPayloadSchema);
const StreamEventSchema = z.discriminatedUnion('type', [
  SessionInitEventSchema,
  StdoutEventSchema,
  LogEventSchema,
  ToolCallEventSchema,
  ToolResultAppliedEventSchema,
  FinalEventSchema,
  HeartbeatEventSchema,
  ErrorEventSchema,
  PartialResultEventSchema,
  ToolProgressEventSchema,
  DeadlineExceededEventSchema,
  CatalogChangedEventSchema,
]);

const SupportedCurveSchema = z.enum(values(SupportedCurve));
const EncryptionAlgorithmSchema = z.enum(values(EncryptionAlgorithm));
const KeyDerivationSchema = z.enum(values(KeyDerivation));
const EncryptionModeSchema = z.enum(values(EncryptionMode));
const EncryptedEnvelopePayloadSchema = z.object({
  kid: z.string().min(1),
  nonceB64: z.string().min(1),
  ciphertextB64: z.string().min(1),
  tagB64: z.string().optional(),
});
const EncryptedEnvelopeSchema = eventOf(E.Encrypted, EncryptedEnvelopePayloadSchema);
const ClientHelloSchema = z.object({
  protocolVersion: ProtocolVersionSchema,
  clientEphemeralPubKeyB64: z.string().min(1),
  curve: SupportedCurveSchema,
  supportedAlgorithms: z.array(EncryptionAlgorithmSchema).min(1),
});
const ServerHelloSchema = z.object({
  protocolVersion: ProtocolVersionSchema,
  serverEphemeralPubKeyB64: z.string().min(1),
  curve: SupportedCurveSchema,
  selectedAlgorithm: EncryptionAlgorithmSchema,
  kdf: KeyDerivationSchema,
  keyId: z.string().min(1),
  signatureB64: z.string().optional(),
});
const EncryptionRequestSchema = z.object({ mode: EncryptionModeSchema, clientHello: ClientHelloSchema.optional() });

const ToolResultSubmitPayloadSchema = z.object({
  callId: CallIdSchema,
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: ErrorInfoSchema.optional(),
});
const channelMessageOf = (type, payload) =>
  z.object({ protocolVersion: ProtocolVersionSchema, sessionId: SessionIdSchema, type: z.literal(type), payload });
const ToolResultSubmitMessageSchema = channelMessageOf(RuntimeChannelMessageType.ToolResultSubmit, ToolResultSubmitPayloadSchema);
const CancelPayloadSchema = z.object({ reason: z.string().optional() });
const CancelMessageSchema = channelMessageOf(RuntimeChannelMessageType.Cancel, CancelPayloadSchema);
const RuntimeChannelMessageSchema = z.discriminatedUnion('type', [ToolResultSubmitMessageSchema, CancelMessageSchema]);

const CreateSessionRequestSchema = z.object({
  protocolVersion: ProtocolVersionSchema,
  code: z.string().min(1),
  limits: SessionLimitsSchema.optional(),
  encryption: EncryptionRequestSchema.optional(),
});

// Each returns zod's `safeParse` result: `{success: true, data}` or `{success: false, error}`.
const parseStreamEvent = (data) => StreamEventSchema.safeParse(data);
const parseEncryptedEnvelope = (data) => EncryptedEnvelopeSchema.safeParse(data);
const parseRuntimeChannelMessage = (data) => RuntimeChannelMessageSchema.safeParse(data);
const parseCreateSessionRequest = (data) => CreateSessionRequestSchema.safeParse(data);
// An envelope when `type` is 'enc', else a plain event.
const parseStreamEventOrEncrypted = (data) =>
  data !== null && typeof data === 'object' && data.type === E.Encrypted ? parseEncryptedEnvelope(data) : parseStreamEvent(data);

module.exports = {
  ProtocolVersionSchema,
  SessionIdSchema,
  CallIdSchema,
  RefIdSchema,
  LogLevelSchema,
  SessionStateSchema,
  ErrorInfoSchema,
  RefTokenSchema,
  SessionLimitsSchema,
  ToolConfigSchema,
  BaseEventSchema,
  EncryptionConfigSchema,
  SessionInitPayloadSchema,
  StdoutPayloadSchema,
  LogPayloadSchema,
  ToolCallPayloadSchema,
  ToolResultAppliedPayloadSchema,
  SessionStatsSchema,
  FinalPayloadSchema,
  HeartbeatPayloadSchema,
  ErrorEventPayloadSchema,
  SessionInitEventSchema,
  StdoutEventSchema,
  LogEventSchema,
  ToolCallEventSchema,
  ToolResultAppliedEventSchema,
  FinalEventSchema,
  HeartbeatEventSchema,
  ErrorEventSchema,
  ErrorDetailSchema,
  ErrorPayloadSchema,
  PartialResultPayloadSchema,
  PartialResultEventSchema,
  ToolProgressPhaseSchema,
  ToolProgressPayloadSchema,
  ToolProgressEventSchema,
  DeadlineExceededPayloadSchema,
  DeadlineExceededEventSchema,
  CatalogChangedPayloadSchema,
  CatalogChangedEventSchema,
  StreamEventSchema,
  SupportedCurveSchema,
  EncryptionAlgorithmSchema,
  KeyDerivationSchema,
  EncryptionModeSchema,
  EncryptedEnvelopePayloadSchema,
  EncryptedEnvelopeSchema,
  ClientHelloSchema,
  ServerHelloSchema,
  EncryptionRequestSchema,
  ToolResultSubmitPayloadSchema,
  ToolResultSubmitMessageSchema,
  CancelPayloadSchema,
  CancelMessageSchema,
  RuntimeChannelMessageSchema,
  CreateSessionRequestSchema,
  parseStreamEvent,
  parseEncryptedEnvelope,
  parseRuntimeChannelMessage,
  parseCreateSessionRequest,
  parseStreamEventOrEncrypted,
};
