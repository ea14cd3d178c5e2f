//! Node.js binding of enclave-broker-core. Thin by design: it converts JS values to core
//! types, forwards core messages to Node's main thread through one threadsafe function,
//! and routes tool replies back. Everything observable lives in the core; the exact
//! drop-in API is the hand-written JS facade (`index.js`).

// napi-derive leaves exported functions out of test builds, so their helpers look unused there.
#![cfg_attr(test, allow(dead_code))]

mod cluster;
mod config;
mod error;
mod event_filter;
mod host;
mod http_rules;
mod manager;
mod runtime;
mod server;
mod session;
mod tool_pattern;
