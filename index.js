// enclave-broker-rs: drop-in for @enclave-vm/broker, running scripts in V8 isolates.
'use strict';

const { Broker, createBroker, createSession } = require('./lib/broker');
const { EnclaveBroker } = require('./lib/enclave-broker');
const { ToolRegistry, createToolRegistry } = require('./lib/tool-registry');
const { BrokerSession, createBrokerSession } = require('./lib/broker-session');
const { SessionManager, createSessionManager } = require('./lib/session-manager');
const { SessionHandler, createSessionHandler } = require('./lib/http/session-handler');
const { registerExpressRoutes, createExpressRouter } = require('./lib/http/express-adapter');
const { EventFilter, createEventFilter, createTypeFilter, createContentFilter } = require('./lib/event-filter');
const { OpenApiSpecPoller } = require('./lib/openapi/openapi-spec-poller');
const { OpenApiToolLoader } = require('./lib/openapi/openapi-tool-loader');
const { OpenApiSource } = require('./lib/openapi/openapi-source');
const { CatalogHandler } = require('./lib/openapi/catalog-handler');
const { ToolRouter } = require('./lib/tool-router');
const { AccessController } = require('./lib/access-controller');
const { RateLimiter } = require('./lib/rate-limiter');
const { RuntimeWorker, createRuntimeWorker } = require('./lib/runtime-worker');

module.exports = {
  Broker,
  createBroker,
  createSession,
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
  OpenApiSpecPoller,
  OpenApiToolLoader,
  OpenApiSource,
  CatalogHandler,
  ToolRouter,
  AccessController,
  RateLimiter,
  RuntimeWorker,
  createRuntimeWorker,
};
