//! The engine process: runs scripts for a broker over stdin/stdout frames.
//! Started by the broker as `enclave-engine <memory-limit-bytes> <isolates>`; not meant for
//! people.

use enclave_broker_core::engine::{
    DEFAULT_ISOLATES_PER_ENGINE, DEFAULT_MEMORY_LIMIT, MAX_ISOLATES_PER_ENGINE,
};

fn main() {
    let arg = |n: usize| std::env::args().nth(n).and_then(|arg| arg.parse::<usize>().ok());
    let memory_limit = arg(1).unwrap_or(DEFAULT_MEMORY_LIMIT);
    let isolates = arg(2).unwrap_or(DEFAULT_ISOLATES_PER_ENGINE).clamp(1, MAX_ISOLATES_PER_ENGINE);
    enclave_broker_core::engine::child::main(memory_limit, isolates)
}
