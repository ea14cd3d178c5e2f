//! How an execution ended, as the engine saw it.

use crate::protocol::ErrorInfo;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptReason {
    /// The script timeout (`limits.toolTimeoutMs`) elapsed.
    Timeout,
    /// The owner stopped the run (cancel, deadline, terminate, dispose).
    Stopped,
    /// The V8 heap limit was reached.
    MemoryLimit,
}

impl InterruptReason {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            InterruptReason::Timeout => 1,
            InterruptReason::Stopped => 2,
            InterruptReason::MemoryLimit => 3,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(InterruptReason::Timeout),
            2 => Some(InterruptReason::Stopped),
            3 => Some(InterruptReason::MemoryLimit),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExecutionOutcome {
    /// The script's promise fulfilled; JSON of the value, `None` for `undefined`.
    Returned(Option<String>),
    /// The script failed (syntax error, uncaught throw, unconvertible result).
    Threw(ErrorInfo),
    Interrupted {
        reason: InterruptReason,
        /// What the engine knows about the stop (the memory limit's report).
        detail: Option<String>,
    },
}

impl ExecutionOutcome {
    /// The run ended at a memory limit; `report` is the error message users see.
    pub fn memory_limit(report: impl Into<String>) -> ExecutionOutcome {
        ExecutionOutcome::Interrupted { reason: InterruptReason::MemoryLimit, detail: Some(report.into()) }
    }

    /// A recorded memory limit hit decides, whatever ended the run first: a builtin that does
    /// not look at termination can complete after the limit was reached, and a timeout or a
    /// stop can land while the script is being stopped for memory.
    pub fn unless_limit_hit(self, hit: Option<String>) -> ExecutionOutcome {
        match hit {
            Some(report) => ExecutionOutcome::memory_limit(report),
            None => self,
        }
    }
}
