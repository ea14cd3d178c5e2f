//! Node.js binding of enclave-broker-core. Thin by design: it converts JS values to core
//! types, forwards core messages to Node's main thread through one threadsafe function,
//! and routes tool replies back. Everything observable lives in the core; the exact
//! drop-in API is the hand-written JS facade (`index.js`).

mod config;
mod host;
mod manager;
mod session;
