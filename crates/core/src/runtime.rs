//! The shared service runtime: session timers (heartbeats, deadlines) run here, never on
//! Node's main thread or on an engine thread that may be busy running a script.

use std::sync::OnceLock;

pub fn service() -> &'static tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("enclave-broker-service")
                .enable_all()
                .build()
                .expect("failed to start the broker service runtime")
        })
        .handle()
}
