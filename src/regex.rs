//! `LinearRegex`: Rust's regex engine for the JS EventFilter. Matching takes time linear in
//! the input for every pattern, so a client-supplied filter cannot stall the event loop.

use napi::Status;
use napi_derive::napi;

#[napi]
pub struct LinearRegex {
    regex: regex::Regex,
}

#[napi]
impl LinearRegex {
    /// Throws if the pattern uses syntax the linear engine lacks (lookaround, backreferences).
    #[napi(constructor)]
    pub fn new(pattern: String, case_insensitive: bool) -> napi::Result<LinearRegex> {
        regex::RegexBuilder::new(&pattern)
            .case_insensitive(case_insensitive)
            .size_limit(1 << 20)
            .build()
            .map(|regex| LinearRegex { regex })
            .map_err(|e| napi::Error::new(Status::InvalidArg, e.to_string()))
    }

    #[napi]
    pub fn test(&self, input: String) -> bool {
        self.regex.is_match(&input)
    }
}
