// enclave-broker-rs: drop-in for @enclave-vm/broker, running scripts in V8 isolates.
'use strict';

const { Broker, createBroker } = require('./lib/broker');
const { EnclaveBroker } = require('./lib/enclave-broker');
const { ToolRegistry, createToolRegistry } = require('./lib/tool-registry');
const { BrokerSession, createBrokerSession } = require('./lib/broker-session');
const { SessionManager, createSessionManager } = require('./lib/session-manager');
const { SessionHandler, createSessionHandler } = require('./lib/http/session-handler');
const { registerExpressRoutes, createExpressRouter } = require('./lib/http/express-adapter');
const { EventFilter, createEventFilter, createTypeFilter, createContentFilter } = require('./lib/event-filter');
const { ToolRouter } = require('./lib/tool-router');
const { AccessController } = require('./lib/access-controller');
const { RateLimiter } = require('./lib/rate-limiter');

module.exports = {
  Broker,
  createBroker,
  EnclaveBroker,
  ToolRegistry,
  createToolRegistry,
  BrokerSession,
  createBrokerSession,
  SessionManager,
  createSessionManager,
  SessionHandler,
  createSessionHandler,
  registerExpressRoutes,
  createExpressRouter,
  EventFilter,
  createEventFilter,
  createTypeFilter,
  createContentFilter,
  ToolRouter,
  AccessController,
  RateLimiter,
};
