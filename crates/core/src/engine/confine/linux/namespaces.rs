//! Which new namespaces an engine process gets. A user namespace lets an unprivileged
//! broker create the others (PID, network, IPC); some kernels and container runtimes
//! refuse unprivileged user namespaces, and a privileged broker needs none. The first
//! spawn tries the sets in order and the pool keeps the first that works.
//!
//! In them, an engine sees no other process (it is PID 1 of its own PID namespace), has no
//! network interface but a loopback that is down, and shares no System V IPC object with
//! the host. Files are not hidden this way (no mount namespace): seccomp refuses every
//! open, which is the layer that keeps files out of reach.

use std::io;
use std::sync::Mutex;

const USER: libc::c_int = libc::CLONE_NEWUSER;
const OTHERS: libc::c_int = libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWIPC;

/// Namespace sets to try, best first.
const CANDIDATES: [libc::c_int; 3] = [USER | OTHERS, OTHERS, 0];

/// The namespaces an engine was started in, for the sandbox report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Namespaces {
    New(libc::c_int),
    /// None could be created; why the last attempt failed.
    Unavailable(String),
}

impl Namespaces {
    pub fn describe(&self) -> String {
        match self {
            Namespaces::New(flags) => {
                let names: Vec<&str> = [
                    (libc::CLONE_NEWUSER, "user"),
                    (libc::CLONE_NEWPID, "pid"),
                    (libc::CLONE_NEWNET, "net"),
                    (libc::CLONE_NEWIPC, "ipc"),
                ]
                .iter()
                .filter(|(flag, _)| flags & flag != 0)
                .map(|(_, name)| *name)
                .collect();
                format!("new {} namespaces", names.join("/"))
            }
            Namespaces::Unavailable(reason) => format!("no new namespaces ({reason})"),
        }
    }
}

/// The index into `CANDIDATES` chosen by the first spawn, and why better sets failed.
static CHOSEN: Mutex<Option<(usize, Option<String>)>> = Mutex::new(None);

/// Errors of `clone` that mean "this set of namespaces is not allowed here".
fn refused(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EUSERS | libc::ENOSYS | libc::EACCES)
    )
}

/// What one attempt gave: `Err` if `clone` itself failed (the namespaces may be refused),
/// `Ok(Err)` if the child failed before exec, `Ok(Ok(pid))` once it runs.
pub(crate) type Attempt = io::Result<io::Result<libc::pid_t>>;

fn report(index: usize, reason: Option<String>) -> Namespaces {
    match CANDIDATES[index] {
        0 => Namespaces::Unavailable(reason.unwrap_or_else(|| "not requested".into())),
        flags => Namespaces::New(flags),
    }
}

/// Calls `clone(flags)` with the best namespace set that works here, and reports it.
pub(crate) fn clone_with_best(
    mut clone: impl FnMut(libc::c_int) -> Attempt,
) -> io::Result<(libc::pid_t, Namespaces)> {
    let decided = CHOSEN.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some((index, reason)) = decided {
        let pid = clone(CANDIDATES[index])??;
        return Ok((pid, report(index, reason)));
    }
    // The first spawn: others wait for its decision rather than probe in parallel.
    let mut chosen = CHOSEN.lock().unwrap_or_else(|p| p.into_inner());
    let mut reason = None;
    for (index, flags) in CANDIDATES.iter().enumerate() {
        match clone(*flags) {
            Ok(child) => {
                *chosen = Some((index, reason.clone()));
                return Ok((child?, report(index, reason)));
            }
            Err(error) if *flags != 0 && refused(&error) => reason = Some(format!("clone: {error}")),
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::other("no way to start an engine process"))
}
