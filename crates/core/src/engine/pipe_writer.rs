//! The broker's end of the pipe into an engine process. Frames are written by whichever
//! thread has one (often Node's main thread, answering a tool call), so a write must never
//! wait for the engine: the engine thread reads its pipe only when its script yields, and a
//! script may spin until its timeout. The pipe is non-blocking; what does not fit now is
//! kept, in order, and written by a short-lived flusher thread as the engine reads.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::process::ChildStdin;
use std::sync::{Arc, Mutex, MutexGuard};

/// Asked of the kernel so that ordinary frames (tool results up to the default 5 MiB cap
/// are rarer) fit at once; unprivileged processes may get up to 1 MiB by default. Linux
/// only; elsewhere pipes keep their default size and more frames go through the backlog.
#[cfg(target_os = "linux")]
const PIPE_SIZE: libc::c_int = 1 << 20;

#[derive(Default)]
struct Backlog {
    bytes: VecDeque<u8>,
    flushing: bool,
    broken: bool,
}

pub(crate) struct PipeWriter {
    pipe: Mutex<ChildStdin>,
    backlog: Mutex<Backlog>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PipeWriter {
    pub fn new(pipe: ChildStdin) -> io::Result<Arc<PipeWriter>> {
        let fd = pipe.as_raw_fd();
        // SAFETY: fcntl on a pipe fd this value owns; failures of the size request are
        // harmless (the default size only means more frames go through the backlog).
        unsafe {
            #[cfg(target_os = "linux")]
            libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_SIZE);
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Arc::new(PipeWriter { pipe: Mutex::new(pipe), backlog: Mutex::new(Backlog::default()) }))
    }

    /// Queues `frame` after everything sent before it. Never blocks on the engine. A pipe
    /// whose reader is gone drops frames: the process's reader settles what it ran.
    pub fn send(self: &Arc<Self>, frame: &[u8]) {
        let mut backlog = lock(&self.backlog);
        if backlog.broken {
            return;
        }
        if !backlog.bytes.is_empty() {
            backlog.bytes.extend(frame);
            return;
        }
        let written = match write_some(&mut lock(&self.pipe), frame) {
            Ok(n) => n,
            Err(_) => {
                backlog.broken = true;
                return;
            }
        };
        if written == frame.len() {
            return;
        }
        backlog.bytes.extend(&frame[written..]);
        if !backlog.flushing {
            backlog.flushing = true;
            let writer = self.clone();
            let spawned =
                std::thread::Builder::new().name("enclave-engine-flush".into()).spawn(move || writer.flush());
            if spawned.is_err() {
                // Without a flusher the frames could never arrive; treat the pipe as lost.
                backlog.broken = true;
                backlog.bytes.clear();
            }
        }
    }

    /// Writes the backlog as the engine makes room, then ends.
    fn flush(&self) {
        loop {
            if !self.wait_writable() {
                let mut backlog = lock(&self.backlog);
                backlog.broken = true;
                backlog.bytes.clear();
                backlog.flushing = false;
                return;
            }
            let mut backlog = lock(&self.backlog);
            let (front, _) = backlog.bytes.as_slices();
            match write_some(&mut lock(&self.pipe), front) {
                Ok(n) => {
                    backlog.bytes.drain(..n);
                }
                Err(_) => {
                    backlog.broken = true;
                    backlog.bytes.clear();
                }
            }
            if backlog.bytes.is_empty() {
                backlog.flushing = false;
                return;
            }
        }
    }

    /// Waits until the pipe takes bytes; false once the engine's end is closed.
    fn wait_writable(&self) -> bool {
        let fd = lock(&self.pipe).as_raw_fd();
        let mut poll = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
        loop {
            // SAFETY: one valid pollfd; the fd stays open while this writer exists.
            let ready = unsafe { libc::poll(&mut poll, 1, -1) };
            if ready < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return false;
            }
            return poll.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) == 0;
        }
    }
}

/// Writes what the pipe takes now: `Ok(0)` when it is full.
fn write_some(pipe: &mut ChildStdin, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match pipe.write(&bytes[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}
