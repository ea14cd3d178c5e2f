//! The shared service runtime: session timers (heartbeats, deadlines) and the HTTP server
//! run here, never on Node's main thread or on an engine thread busy running a script.

use std::sync::OnceLock;

pub fn service() -> &'static tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("enclave-broker-service")
                .enable_all()
                .build()
                .expect("failed to start the broker service runtime")
        })
        .handle()
}
