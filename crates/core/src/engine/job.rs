//! An execution the pool has accepted: the request, its control, and what it was admitted
//! with. It waits in the pool's queue, then runs in an engine process.

use std::sync::Arc;
use std::time::Instant;

use super::ExecutionRequest;
use super::control::ExecutionControl;
use super::timer::Ticket;

pub(crate) struct Job {
    pub exec: u64,
    pub request: ExecutionRequest,
    pub control: Arc<ExecutionControl>,
    pub queued_at: Instant,
    /// The script's timeout, armed at submission: waiting for an engine counts in it.
    pub timeout: Option<Ticket>,
    /// What the job takes from the memory budget while it runs: its engine's ceiling.
    pub ceiling: usize,
}

impl Job {
    pub fn memory_limit(&self) -> usize {
        self.request.sandbox.effective_memory_limit()
    }
}
