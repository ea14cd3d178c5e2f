//! `BindingToolPattern`: the core's tool-name patterns (`tools::pattern`) for the seed
//! API's `ToolRouter`, `AccessController` and `RateLimiter`.

use enclave_broker_core::tools::ToolPattern;
use napi::bindgen_prelude::Either;
use napi_derive::napi;

use crate::error::BindingError;

#[napi]
pub struct BindingToolPattern {
    pattern: ToolPattern,
}

#[napi]
impl BindingToolPattern {
    /// The compiled pattern, or why it was refused (an empty pattern).
    #[napi]
    pub fn compile(pattern: String) -> Either<BindingToolPattern, BindingError> {
        match ToolPattern::compile(&pattern) {
            Ok(pattern) => Either::A(BindingToolPattern { pattern }),
            Err(_) => Either::B(BindingError::type_error(
                "INVALID_TOOL_PATTERN",
                "Tool pattern must be a non-empty string",
            )),
        }
    }

    #[napi]
    pub fn matches(&self, name: String) -> bool {
        self.pattern.matches(&name)
    }
}
