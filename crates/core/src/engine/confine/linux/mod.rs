//! The Linux-only layers of an engine's confinement (see `confine`).

mod namespaces;
#[cfg(feature = "v8")]
pub(crate) mod process;
#[cfg(feature = "v8")]
mod seccomp;
mod spawn;

pub(crate) use spawn::{EngineChild, spawn};
