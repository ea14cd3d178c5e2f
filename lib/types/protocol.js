// Identifiers, limits, states and reference tokens of the protocol, under the names of
// @enclave-vm/types 2.15.2. The values are the ones this package's streams use (lib/constants.js).
'use strict';

const { randomUUID } = require('node:crypto');
const {
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_V1,
  SESSION_ID_PREFIX,
  CALL_ID_PREFIX,
  REF_ID_PREFIX,
  DEFAULT_SESSION_LIMITS,
  SessionState,
  LogLevel,
} = require('../constants');

const generateSessionId = () => `${SESSION_ID_PREFIX}${randomUUID()}`;
const generateCallId = () => `${CALL_ID_PREFIX}${randomUUID()}`;
const generateRefId = () => `${REF_ID_PREFIX}${randomUUID()}`;

// Guards by prefix, as the original's: any string after it counts.
const hasPrefix = (prefix) => (value) => typeof value === 'string' && value.startsWith(prefix);
const isSessionId = hasPrefix(SESSION_ID_PREFIX);
const isCallId = hasPrefix(CALL_ID_PREFIX);
const isRefId = hasPrefix(REF_ID_PREFIX);

// A value passed by reference: `{ $ref: { id: 'ref_...' } }`.
function isRefToken(value) {
  if (value === null || typeof value !== 'object') return false;
  const ref = value.$ref;
  return ref !== null && typeof ref === 'object' && isRefId(ref.id);
}

// The seed documents call it without an id; a fresh one is generated then.
function createRefToken(id = generateRefId()) {
  if (!isRefId(id)) throw new TypeError(`A reference id starts with "${REF_ID_PREFIX}", got ${JSON.stringify(id)}`);
  return { $ref: { id } };
}

module.exports = {
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_V1,
  SESSION_ID_PREFIX,
  CALL_ID_PREFIX,
  REF_ID_PREFIX,
  generateSessionId,
  generateCallId,
  generateRefId,
  isSessionId,
  isCallId,
  isRefId,
  DEFAULT_SESSION_LIMITS,
  SessionState,
  LogLevel,
  isRefToken,
  createRefToken,
};
