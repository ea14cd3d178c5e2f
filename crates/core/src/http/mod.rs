//! The broker's own HTTP server (`EnclaveBroker.listen`), served from Rust.

mod access;
pub mod auth;
mod body;
pub mod callbacks;
pub mod filter;
pub mod rate_limit;
mod response;
mod routes;
pub mod rules;
mod server;
mod state;
pub mod static_files;
mod stream;
pub mod template;

pub use auth::{AuthConfig, AuthKind};
pub use callbacks::{Action, AuthResult, AuthValidator, Authorizer, BoxFuture, KeyGenerator, RequestInfo};
pub use rate_limit::RateLimitConfig;
pub use response::AT_CAPACITY;
pub use rules::Cors;
pub use server::HttpServer;
pub use state::{HttpConfig, SessionCreated};
pub use static_files::StaticFiles;
pub use template::SessionTemplate;
