//! The engine pool's total memory budget. An execution may grow its engine process up to
//! `memory_ceiling(memoryLimit)` before the process is killed; the pool admits an execution
//! only while the ceilings of all admitted ones fit the budget, so that all of them at
//! their worst at once still fit the machine. The rest wait in a queue (their wait counts in
//! their timeout); past `max_queued` waiting executions, new work is refused at once
//! (`AtCapacity`), which the HTTP server answers with 503.
//!
//! The default budget is three quarters of the memory this process may use: the machine's,
//! or its cgroup's limit when that is lower. `ENCLAVE_BROKER_MEMORY_BUDGET` and
//! `ENCLAVE_BROKER_MAX_QUEUED` set them at start; `configure` later (the facade's
//! `runtimePool` option).

use std::fmt;

use crate::protocol::{ErrorCode, ErrorInfo};

/// Executions that may wait for the budget (or for an engine to start) before new ones are
/// refused.
pub const DEFAULT_MAX_QUEUED: usize = 1024;

/// Used where the machine's memory cannot be read.
const FALLBACK_MACHINE_MEMORY: usize = 4 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetConfig {
    /// Bytes the ceilings of admitted executions may add up to.
    pub memory_bytes: usize,
    pub max_queued: usize,
}

fn read_number(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The memory this process may use: the machine's, or its cgroup's limit when lower.
fn available_memory() -> usize {
    let machine = std::fs::read_to_string("/proc/meminfo").ok().and_then(|info| {
        let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
        line.split_whitespace().nth(1)?.parse::<usize>().ok().map(|kb| kb * 1024)
    });
    // cgroup v2, then v1 (which reports "no limit" as a huge number).
    let cgroup = read_number("/sys/fs/cgroup/memory.max")
        .or_else(|| read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes").filter(|&b| b < 1 << 60));
    match (machine, cgroup) {
        (Some(machine), Some(cgroup)) => machine.min(cgroup),
        (Some(bytes), None) | (None, Some(bytes)) => bytes,
        (None, None) => FALLBACK_MACHINE_MEMORY,
    }
}

/// Three quarters of the memory this process may use.
pub fn default_memory_budget() -> usize {
    available_memory() / 4 * 3
}

/// A size in bytes: digits, optionally followed by K, M or G (powers of 1024, with or
/// without "iB"/"B").
pub fn parse_bytes(text: &str) -> Option<usize> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: usize = number.parse().ok()?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

impl BudgetConfig {
    /// The defaults, overridden by the environment.
    pub(crate) fn from_environment() -> BudgetConfig {
        let env = |name: &str| std::env::var(name).ok();
        BudgetConfig {
            memory_bytes: env("ENCLAVE_BROKER_MEMORY_BUDGET")
                .and_then(|v| parse_bytes(&v))
                .unwrap_or_else(default_memory_budget),
            max_queued: env("ENCLAVE_BROKER_MAX_QUEUED")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(DEFAULT_MAX_QUEUED),
        }
    }
}

/// The pool cannot take more work now: its budget is in use and its queue is full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtCapacity {
    /// Executions waiting for the budget.
    pub queued: usize,
    pub config: BudgetConfig,
    /// Ceilings of the executions admitted now, in bytes.
    pub admitted: usize,
}

impl fmt::Display for AtCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "The engine pool is at capacity: {} executions already wait for its {} MiB memory budget ({} MiB admitted); try again later",
            self.queued,
            self.config.memory_bytes >> 20,
            self.admitted >> 20
        )
    }
}

impl std::error::Error for AtCapacity {}

impl AtCapacity {
    /// As a run's error (`ENGINE_CAPACITY_EXCEEDED`).
    pub fn error_info(&self) -> ErrorInfo {
        ErrorInfo::new(ErrorCode::ENGINE_CAPACITY_EXCEEDED, self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("1234"), Some(1234));
        assert_eq!(parse_bytes("8G"), Some(8 << 30));
        assert_eq!(parse_bytes(" 512 MiB "), Some(512 << 20));
        assert_eq!(parse_bytes("64kb"), Some(64 << 10));
        assert_eq!(parse_bytes("1.5G"), None);
        assert_eq!(parse_bytes("-1"), None);
        assert_eq!(parse_bytes("G"), None);
    }

    #[test]
    fn the_default_budget_is_three_quarters_of_what_this_process_may_use() {
        let budget = default_memory_budget();
        assert!(budget > 0);
        assert_eq!(budget, available_memory() / 4 * 3);
    }
}
