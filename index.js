// enclave-broker-rs: drop-in for @enclave-vm/broker, running scripts in V8 isolates.
'use strict';

const { Broker, createBroker } = require('./lib/broker');
const { ToolRegistry, createToolRegistry } = require('./lib/tool-registry');
const { BrokerSession, createBrokerSession } = require('./lib/broker-session');
const { SessionManager, createSessionManager } = require('./lib/session-manager');

module.exports = {
  Broker,
  createBroker,
  ToolRegistry,
  createToolRegistry,
  BrokerSession,
  createBrokerSession,
  SessionManager,
  createSessionManager,
};
