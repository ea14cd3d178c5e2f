//! The broker's own HTTP server (`EnclaveBroker.listen`), served from Rust.

mod body;
pub mod callbacks;
pub mod filter;
pub mod rate_limit;
mod response;
mod routes;
mod server;
mod stream;
pub mod template;

pub use callbacks::{AuthResult, AuthValidator, BoxFuture, KeyGenerator, RequestInfo};
pub use response::Cors;
pub use server::{AuthConfig, AuthKind, HttpConfig, HttpServer, RateLimitConfig, SessionCreated};
pub use template::SessionTemplate;
