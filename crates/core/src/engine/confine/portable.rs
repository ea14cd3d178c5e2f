//! Engine confinement where the Linux layers do not exist: the process is started with
//! `std::process::Command` with an empty environment (on Windows, but for the system's own
//! location) and the root directory as working directory, and closes stray descriptors
//! itself. Namespaces, rlimits, capabilities, `no_new_privs` and
//! seccomp are Linux-only; the sandbox report says they are missing.

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::{EngineStderr, SpawnedEngine};

pub(crate) struct EngineChild(Child);

impl EngineChild {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    pub fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        self.0.wait()
    }

    pub fn kill(&mut self) -> io::Result<()> {
        self.0.kill()
    }
}

#[cfg(unix)]
fn into_file<T: Into<std::os::fd::OwnedFd>>(pipe: T) -> File {
    File::from(pipe.into())
}

#[cfg(windows)]
fn into_file<T: Into<std::os::windows::io::OwnedHandle>>(pipe: T) -> File {
    File::from(pipe.into())
}

pub(crate) fn spawn(executable: &Path, args: &[String], stderr: EngineStderr) -> io::Result<SpawnedEngine> {
    let mut command = Command::new(executable);
    command.args(args).env_clear();
    // Windows needs to know where it is installed to start a process's runtime.
    #[cfg(windows)]
    for name in ["SystemRoot", "windir"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let mut child = command
        .current_dir(if cfg!(windows) { "C:\\" } else { "/" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(match stderr {
            EngineStderr::Captured => Stdio::piped(),
            EngineStderr::Inherited => Stdio::inherit(),
        })
        .spawn()?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        return Err(io::Error::other("engine process has no pipes"));
    };
    let stderr = child.stderr.take().map(into_file);
    Ok(SpawnedEngine {
        child: EngineChild(child),
        stdin: into_file(stdin),
        stdout: into_file(stdout),
        stderr,
        namespaces: format!("no namespaces (Linux only; this is {})", std::env::consts::OS),
    })
}

#[cfg(feature = "v8")]
pub(crate) mod process {
    /// Closes stray descriptors; reports that the Linux layers are missing.
    pub(crate) fn enter() -> Vec<String> {
        #[cfg(unix)]
        {
            // SAFETY: closes descriptors no Rust object owns this early in `main`.
            unsafe {
                for fd in 3..1024 {
                    libc::close(fd);
                }
            }
        }
        let variables = std::env::vars_os().count();
        vec![
            "descriptors: only its stdin/stdout/stderr pipes".to_string(),
            format!("environment: {variables} variables"),
            "working directory: /".to_string(),
            format!(
                "rlimits, capabilities, no_new_privs and seccomp: not available (Linux only; this is {})",
                std::env::consts::OS
            ),
        ]
    }

    pub(crate) fn lock_down(_memory_limit: usize, _isolates: usize) -> Vec<String> {
        Vec::new()
    }
}
