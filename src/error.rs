//! `BindingError`: how the core's refusals cross to JavaScript, as data (`{code, name,
//! message}`, the oxc way) rather than as thrown strings the facade would have to parse. A
//! binding function that can refuse returns its value or a `BindingError`; the facade
//! (`lib/binding-error.js`) throws it as the exception the original API throws: a
//! `TypeError` when `name` says so, an `Error` otherwise.

use enclave_broker_core::session::{LifecycleError, ManagerError, SubmitError};
use napi_derive::napi;

#[napi(object)]
#[derive(Clone, Debug)]
pub struct BindingError {
    /// What went wrong, for code (`INVALID_LIMIT`, `MAX_SESSIONS`, ...).
    pub code: String,
    /// The JavaScript error class the facade throws: `TypeError` or `Error`.
    pub name: String,
    pub message: String,
}

impl BindingError {
    /// Bad input: thrown as a `TypeError`.
    pub fn type_error(code: &str, message: impl Into<String>) -> BindingError {
        BindingError { code: code.into(), name: "TypeError".into(), message: message.into() }
    }

    /// A refusal of valid input (a full or disposed manager, a session in the wrong state).
    pub fn error(code: &str, message: impl Into<String>) -> BindingError {
        BindingError { code: code.into(), name: "Error".into(), message: message.into() }
    }
}

impl BindingError {
    /// A server that could not bind (`EADDRINUSE` and the like), with the OS's reason.
    pub fn listen_failed(e: &impl std::fmt::Display) -> BindingError {
        BindingError::error("LISTEN_FAILED", format!("listen failed: {e}"))
    }
}

impl From<ManagerError> for BindingError {
    fn from(e: ManagerError) -> BindingError {
        let code = match e {
            ManagerError::Disposed => "MANAGER_DISPOSED",
            ManagerError::MaxSessions(_) => "MAX_SESSIONS",
            ManagerError::Exists(_) => "SESSION_EXISTS",
        };
        BindingError::error(code, e.to_string())
    }
}

impl From<LifecycleError> for BindingError {
    fn from(e: LifecycleError) -> BindingError {
        let code = match e {
            LifecycleError::AlreadyExecuting => "ALREADY_EXECUTING",
            LifecycleError::Disposed => "SESSION_DISPOSED",
        };
        BindingError::error(code, e.to_string())
    }
}

impl From<SubmitError> for BindingError {
    fn from(e: SubmitError) -> BindingError {
        BindingError::error("INVALID_STATE", e.to_string())
    }
}
