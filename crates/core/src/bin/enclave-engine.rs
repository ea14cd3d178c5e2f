//! The engine process: runs scripts for a broker over stdin/stdout frames.
//! Started by the broker as `enclave-engine <memory-limit-bytes>`; not meant for people.

fn main() {
    let memory_limit = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(enclave_broker_core::engine::DEFAULT_MEMORY_LIMIT);
    enclave_broker_core::engine::child::main(memory_limit)
}
