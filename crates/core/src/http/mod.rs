//! The broker's own HTTP server (`EnclaveBroker.listen`), served from Rust.

mod body;
pub mod callbacks;
pub mod filter;
pub mod rate_limit;
mod response;
mod routes;
mod server;
pub mod static_files;
mod stream;
pub mod template;

pub use callbacks::{AuthResult, AuthValidator, BoxFuture, KeyGenerator, RequestInfo};
pub use response::Cors;
pub use server::{AuthConfig, AuthKind, HttpConfig, HttpServer, RateLimitConfig, SessionCreated};
pub use static_files::StaticFiles;
pub use template::SessionTemplate;
