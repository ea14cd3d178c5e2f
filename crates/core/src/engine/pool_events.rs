//! What an engine process tells the pool that owns it. The process only knows this trait,
//! so the pool (which starts and schedules processes) and the process (which talks to one
//! engine) do not depend on each other.

/// Implemented by the pool; calls come from a process's reader thread or from whichever
/// thread ends one of its executions.
pub(crate) trait PoolEvents: Send + Sync {
    /// The process `id` is locked down, has an isolate, and takes work.
    fn process_ready(&'static self, id: u64);
    /// An execution that process `id` ran, admitted with `ceiling` bytes of the memory
    /// budget, ended.
    fn execution_released(&'static self, id: u64, ceiling: usize);
    /// The process `id` ended while it ran `lost` executions (they are settled next).
    fn process_exited(&'static self, id: u64, lost: usize);
    /// A stopped execution did not stop in time and was ended without waiting for its isolate.
    fn execution_detached(&'static self);
    /// The broker killed a process while it ran (a stop not honoured, memory past the ceiling).
    fn process_killed(&'static self);
    /// The layers of confinement a process reports it applied (the first report is logged).
    fn process_confined(&'static self, layers: Vec<String>);
}
