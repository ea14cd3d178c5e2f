// ESM entry: the same objects as the CommonJS entry (one addon instance per process).
import cjs from './index.js';

export const {
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
} = cjs;

export default cjs;
