//! Starts an engine process on Linux. `std::process::Command` cannot put a child in new
//! namespaces (a PID namespace must be asked for when the process is created, `unshare`
//! only moves later children) nor close descriptors the parent holds without
//! close-on-exec, so the child is made here with `clone(2)`, the way `posix_spawn` does:
//! `CLONE_VM | CLONE_VFORK` (the broker's thread waits until the child has exec'd, and the
//! child only makes system calls on its own stack), with all signals blocked around it.
//!
//! In the child, before `execve`: its pipes become 0, 1 and 2, every other descriptor is
//! closed (`close_range`, whatever its close-on-exec flag), signal handlers and the mask are
//! reset, `/` becomes the working directory and it starts its own session (so a signal to
//! the broker's process group never reaches it, and its `kill(0, ..)` could not reach the
//! broker's). It is exec'd with an empty environment.

use std::ffi::{CString, c_void};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

use super::namespaces;
use crate::engine::confine::{EngineStderr, SpawnedEngine};

/// Stack of the cloned child until it execs; it only makes a few system calls.
const CHILD_STACK: usize = 64 * 1024;

/// What the child needs, prepared by the parent (the child must not allocate).
struct ChildPlan {
    program: CString,
    argv: Vec<*const libc::c_char>,
    envp: [*const libc::c_char; 1],
    stdin: RawFd,
    stdout: RawFd,
    /// `None`: keep the broker's stderr (ENCLAVE_BROKER_ENGINE_STDERR).
    stderr: Option<RawFd>,
    /// Written by the child (shared memory, CLONE_VM) when something before exec failed.
    error: libc::c_int,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Runs in the child, on its own stack, sharing the parent's memory: system calls only.
extern "C" fn child_main(arg: *mut c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildPlan`, alive until the child has exec'd or exited
    // (CLONE_VFORK suspends the parent until then).
    let plan = unsafe { &mut *(arg as *mut ChildPlan) };
    // SAFETY: plain system calls on descriptors and memory the plan owns.
    unsafe {
        let fail = |plan: &mut ChildPlan| -> libc::c_int {
            plan.error = *libc::__errno_location();
            libc::_exit(127)
        };
        // Handlers installed by the broker would run here on shared memory: back to defaults.
        for signal in 1..libc::SIGRTMAX() {
            let mut action: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut action) == 0
                && action.sa_sigaction != libc::SIG_DFL
                && (action.sa_sigaction != libc::SIG_IGN || signal == libc::SIGPIPE)
            {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        if libc::dup2(plan.stdin, 0) < 0 || libc::dup2(plan.stdout, 1) < 0 {
            return fail(plan);
        }
        match plan.stderr {
            Some(stderr) => {
                if libc::dup2(stderr, 2) < 0 {
                    return fail(plan);
                }
                // Nobody reads it while the engine runs: a full pipe drops writes, never blocks.
                libc::fcntl(2, libc::F_SETFL, libc::O_NONBLOCK);
            }
            // Node opens its stdio close-on-exec; the broker's stderr must survive the exec.
            None => {
                libc::fcntl(2, libc::F_SETFD, 0);
            }
        }
        // Every descriptor above stderr, inherited with or without close-on-exec.
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) < 0 {
            let mut limit: libc::rlimit = std::mem::zeroed();
            let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur.min(1 << 20) as libc::c_int
            } else {
                1 << 16
            };
            for fd in 3..top {
                libc::close(fd);
            }
        }
        if libc::chdir(c"/".as_ptr()) < 0 {
            return fail(plan);
        }
        libc::setsid();
        let empty: libc::sigset_t = {
            let mut set = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            set
        };
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::execve(plan.program.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
        fail(plan)
    }
}

/// Clones the child with `namespace_flags` and waits until it has exec'd.
fn clone_child(plan: &mut ChildPlan, namespace_flags: libc::c_int) -> namespaces::Attempt {
    let mut stack = vec![0u8; CHILD_STACK];
    // The stack grows down: the child starts at its (16-byte aligned) top.
    let top = (stack.as_mut_ptr() as usize + CHILD_STACK) & !15;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD | namespace_flags;
    plan.error = 0;
    // SAFETY: sigset operations on local sets; the mask is restored right after the clone.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
        // SAFETY: `child_main` only makes system calls, on `stack`, which outlives the child's
        // use of it (CLONE_VFORK returns once the child has exec'd or exited).
        let pid = libc::clone(child_main, top as *mut c_void, flags, plan as *mut ChildPlan as *mut c_void);
        let error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        if pid < 0 {
            return Err(error);
        }
        pid
    };
    drop(stack);
    if plan.error != 0 {
        let mut status = 0;
        // SAFETY: reaps the child that failed before exec.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Ok(Err(io::Error::from_raw_os_error(plan.error)));
    }
    Ok(Ok(pid))
}

/// Spawns `executable args...` confined as described in the module docs.
pub(crate) fn spawn(executable: &Path, args: &[String], stderr: EngineStderr) -> io::Result<SpawnedEngine> {
    let program = CString::new(executable.as_os_str().as_bytes())?;
    let args: Vec<CString> = args.iter().map(|a| CString::new(a.as_bytes())).collect::<Result<_, _>>()?;
    let mut argv: Vec<*const libc::c_char> = vec![program.as_ptr()];
    argv.extend(args.iter().map(|a| a.as_ptr()));
    argv.push(std::ptr::null());

    let (stdin_read, stdin_write) = pipe()?;
    let (stdout_read, stdout_write) = pipe()?;
    let stderr_pipe = match stderr {
        EngineStderr::Captured => Some(pipe()?),
        EngineStderr::Inherited => None,
    };
    let mut plan = ChildPlan {
        program,
        argv,
        envp: [std::ptr::null()],
        stdin: stdin_read.as_raw_fd(),
        stdout: stdout_write.as_raw_fd(),
        stderr: stderr_pipe.as_ref().map(|(_, write)| write.as_raw_fd()),
        error: 0,
    };
    let (pid, namespaces) = namespaces::clone_with_best(|flags| clone_child(&mut plan, flags))?;
    drop((stdin_read, stdout_write));
    let stderr = stderr_pipe.map(|(read, write)| {
        drop(write);
        std::fs::File::from(read)
    });
    Ok(SpawnedEngine {
        child: EngineChild { pid, status: None },
        stdin: std::fs::File::from(stdin_write),
        stdout: std::fs::File::from(stdout_read),
        stderr,
        namespaces: namespaces.describe(),
    })
}

/// A child started by `spawn`, waited for by pid (it is not a `std::process::Child`).
pub(crate) struct EngineChild {
    pid: libc::pid_t,
    /// Set once reaped: the pid may then belong to another process.
    status: Option<ExitStatus>,
}

impl EngineChild {
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    fn reap(&mut self, options: libc::c_int) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let mut raw = 0;
        loop {
            // SAFETY: waits for our own child; `raw` outlives the call.
            let pid = unsafe { libc::waitpid(self.pid, &mut raw, options) };
            if pid < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            if pid == 0 {
                return Ok(None);
            }
            self.status = Some(ExitStatus::from_raw(raw));
            return Ok(self.status);
        }
    }

    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        self.reap(0)?.ok_or_else(|| io::Error::other("waitpid returned no status"))
    }

    /// SIGKILL, unless the child was already reaped.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // SAFETY: the pid is our unreaped child (at worst a zombie), never a stranger's.
        if unsafe { libc::kill(self.pid, libc::SIGKILL) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
