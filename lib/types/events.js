// Event types and their guards, under the names of @enclave-vm/types 2.15.2.
'use strict';

const { EventType } = require('../constants');

const RuntimeChannelMessageType = Object.freeze({ ToolResultSubmit: 'tool_result_submit', Cancel: 'cancel' });

const getEventType = (event) => event.type;
const isEventOf = (type) => (event) => event !== null && typeof event === 'object' && event.type === type;

module.exports = {
  EventType,
  RuntimeChannelMessageType,
  getEventType,
  isSessionInitEvent: isEventOf(EventType.SessionInit),
  isStdoutEvent: isEventOf(EventType.Stdout),
  isLogEvent: isEventOf(EventType.Log),
  isToolCallEvent: isEventOf(EventType.ToolCall),
  isToolResultAppliedEvent: isEventOf(EventType.ToolResultApplied),
  isFinalEvent: isEventOf(EventType.Final),
  isHeartbeatEvent: isEventOf(EventType.Heartbeat),
  isErrorEvent: isEventOf(EventType.Error),
  isPartialResultEvent: isEventOf(EventType.PartialResult),
  isToolProgressEvent: isEventOf(EventType.ToolProgress),
  isDeadlineExceededEvent: isEventOf(EventType.DeadlineExceeded),
  isCatalogChangedEvent: isEventOf(EventType.CatalogChanged),
};
