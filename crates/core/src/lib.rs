//! enclave-broker-core: the napi-free core of enclave-broker-rs.
//!
//! It runs untrusted JavaScript in V8 isolates (through deno_core), owns sessions and
//! their event streams, and asks a [`tools::ToolHost`] to run tool handlers.

pub mod cluster;
pub mod crypto;
pub mod engine;
pub mod filter;
pub mod http;
pub mod protocol;
pub mod remote;
pub mod runtime;
pub mod session;
pub mod sidecar;
pub mod tools;
