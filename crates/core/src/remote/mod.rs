//! Extracted mode: scripts run on runtime workers on other machines while the broker keeps
//! the tools, the secrets and the sessions.
//!
//! - [`RuntimeWorker`] (the `enclave-runtime` service) runs this process's engine pool
//!   behind a WebSocket server; each `execute` becomes a session of its own there, whose
//!   tool calls go back over the socket.
//! - [`RuntimeClient`] is the broker's [`Executor`](crate::engine::Executor): a broker
//!   session hands it its execution exactly as it would hand it to the local engine pool,
//!   so events, limits and everything else the session owns stay in the broker.
//! - `messages` is the wire format (the original runtime's shapes), `socket` the framing.

mod client;
pub mod messages;
mod remote_run;
mod socket;
mod worker;
mod worker_connection;
mod worker_slots;

pub use client::{ClientConfig, EndpointState, EndpointStatus, RuntimeClient, normalize_url};
pub use remote_run::RUNTIME_LOST;
pub use socket::DEFAULT_MAX_MESSAGE_BYTES;
pub use worker::{RuntimeWorker, WorkerStats};
pub use worker_connection::RefusalCode;
pub use worker_slots::WorkerConfig;
