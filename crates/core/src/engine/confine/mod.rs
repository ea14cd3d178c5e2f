//! What an engine process may hold and do: it can only compute. Scripts are hostile, and V8
//! may one day be exploited; an engine then holds nothing worth stealing and can reach
//! nothing but its pipes to the broker.
//!
//! The layers, in the order they apply:
//! - at spawn (`spawn`, broker side): an empty environment (the broker passes what the
//!   engine needs, its memory limit, as an argument), no descriptor but its stdin, stdout
//!   and stderr pipes (also none the broker holds without close-on-exec), `/` as working
//!   directory and a session of its own; on Linux, new user, PID, network and IPC
//!   namespaces where the kernel allows them (`linux/namespaces.rs`);
//! - first thing in the engine (`enter_process`, one thread): descriptors and directory
//!   again, restrictive rlimits, every capability dropped, `no_new_privs` (Linux);
//! - once V8 runs, before the engine reports ready (`lock_down`): the data-segment rlimit
//!   from the memory ceiling and a seccomp-bpf allow-list on every thread (Linux,
//!   `linux/seccomp.rs`).
//!
//! This happens once per engine process, before it is pooled; executions add nothing. The
//! engine reports what it achieved, the broker adds what it did at spawn and logs it once
//! (`pool::sandbox_report`). Builds for other systems compile without the Linux layers
//! and say so in that report.

use std::fs::File;
use std::io;
use std::path::Path;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(not(target_os = "linux"))]
mod portable;

#[cfg(target_os = "linux")]
use linux as platform;
#[cfg(not(target_os = "linux"))]
use portable as platform;

pub(crate) use platform::EngineChild;

/// Where an engine's stderr goes. V8 reports fatal errors there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineStderr {
    /// A pipe nobody reads while the engine runs (writes to a full pipe are dropped).
    Captured,
    /// The broker's own stderr (`ENCLAVE_BROKER_ENGINE_STDERR=1`, for debugging).
    Inherited,
}

/// A started engine process and the broker's ends of its pipes.
pub struct SpawnedEngine {
    pub(crate) child: EngineChild,
    pub stdin: File,
    pub stdout: File,
    /// The read end of its stderr pipe, when captured.
    pub stderr: Option<File>,
    /// The namespaces it was started in, for the sandbox report.
    pub namespaces: String,
}

impl SpawnedEngine {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to end; the raw wait status.
    pub fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        self.child.wait()
    }
}

/// Starts `executable args...` confined as the module docs say.
pub fn spawn(executable: &Path, args: &[String], stderr: EngineStderr) -> io::Result<SpawnedEngine> {
    platform::spawn(executable, args, stderr)
}

/// The layers an engine applies to itself while it has a single thread. Call first thing.
#[cfg(feature = "v8")]
pub fn enter_process() -> Vec<String> {
    platform::process::enter()
}

/// The layers applied once V8 is initialised, before the engine takes work: afterwards the
/// process cannot open files, create sockets or processes, or execute programs.
#[cfg(feature = "v8")]
pub fn lock_down(memory_limit: usize, isolates: usize) -> Vec<String> {
    platform::process::lock_down(memory_limit, isolates)
}

/// The signal an engine process is killed with when it makes a system call its seccomp
/// filter forbids (none where there is no filter).
#[cfg(target_os = "linux")]
pub(crate) const SECCOMP_KILL_SIGNAL: Option<i32> = Some(libc::SIGSYS);
#[cfg(not(target_os = "linux"))]
pub(crate) const SECCOMP_KILL_SIGNAL: Option<i32> = None;

/// The exit status of an engine that aborted as PID 1 of its PID namespace, where `abort()`
/// cannot end it with SIGABRT (128 + SIGABRT, what a shell reports for an abort).
pub(crate) const ABORT_EXIT_CODE: i32 = 134;
