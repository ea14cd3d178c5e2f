//! Wire-level vocabulary shared by every part of the broker: ids, the v2 event
//! envelope, session limits and error codes. Shapes follow the original
//! `@enclave-vm/types` byte for byte (key order included).

pub mod error;
pub mod event;
pub mod ids;
pub mod json;
pub mod limits;

pub use error::{ErrorCode, ErrorInfo};
pub use event::{EventType, StreamEvent};
pub use limits::{LIMIT_KEYS, LimitInput, LimitKind, LimitsError, PartialLimits, SessionLimits};

/// Protocol version carried by every envelope.
pub const PROTOCOL_VERSION: u32 = 2;
