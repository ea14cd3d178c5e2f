//! Sessions: state machine, event history, execution lifecycle, and the manager.

pub mod allowed_tools;
pub mod encryption;
mod events;
#[cfg(test)]
mod journal_tests;
mod lifecycle;
pub mod manager;
pub mod principal;
pub mod result;
#[allow(clippy::module_inception)]
pub mod session;
pub mod state;
mod tool_calls;

pub use allowed_tools::AllowedTools;
pub use encryption::{EncryptionRefusal, SessionEncryption};
pub use manager::{ManagerError, SessionInfo, SessionManager};
pub use principal::Principal;
pub use result::{ExecutionStats, FinalResult};
pub use session::{
    EventJournal, ExternalTools, LifecycleError, Session, SessionConfig, SessionRuntime, SubmitError,
    Subscriber,
};
pub use state::SessionState;
