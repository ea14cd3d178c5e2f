//! The reference sidecar (the original's `enclave.sidecar`, contract section 1.T): large
//! strings stay on the host and the script holds `__REF_<uuid>__` strings instead. Script
//! literals are lifted before the run (`transform`), whole-string tool results as they
//! arrive and references in tool arguments resolved as they leave (`resolve`), within the
//! per-level limits (`config`) of one execution's store (`store`).

mod config;
mod resolve;
mod store;
mod transform;

pub use config::{ReferenceConfig, SidecarOverrides};
pub use resolve::{REFERENCE_RESOLUTION_FAILED, REFERENCE_RESOLUTION_LIMIT, lift_result, resolve_arguments};
pub use store::{Sidecar, SidecarError, is_reference_id};
pub use transform::rewrite;
