//! The engine process's end of `engine::signal`: the interrupt signal is blocked in every
//! thread (so it never takes its default action, which would end the process) and taken
//! by one thread that waits for it and stops the execution it names.
//!
//! The same thread ends the process once the broker is gone: the pipe's end-of-file is
//! only seen when the engine thread waits, and a script spinning without a timeout would
//! otherwise outlive its broker. It looks at the pipe itself (its write end closes when
//! the broker's process ends), not at the parent pid: in its own PID namespace an engine
//! has no visible parent.

use std::sync::Arc;

use super::link::Link;
use crate::engine::signal;

fn interrupt_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given; sigaddset adds a valid signal.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal::number());
        set
    }
}

/// Must run before any other thread starts: threads inherit the mask of their creator.
pub(super) fn block() {
    let set = interrupt_set();
    // SAFETY: changes only this thread's mask, with a valid set.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// How often the thread looks whether the broker is still there.
const BROKER_CHECK: libc::timespec = libc::timespec { tv_sec: 1, tv_nsec: 0 };

/// Whether the broker's end of the stdin pipe is closed (the broker's process ended).
fn broker_gone() -> bool {
    let mut stdin = libc::pollfd { fd: 0, events: 0, revents: 0 };
    // SAFETY: one valid pollfd, no wait; reads nothing from the pipe.
    let ready = unsafe { libc::poll(&mut stdin, 1, 0) };
    ready > 0 && stdin.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

pub(super) fn listen(link: Arc<Link>) {
    let spawned = std::thread::Builder::new().name("enclave-engine-interrupts".into()).spawn(move || {
        let set = interrupt_set();
        loop {
            // SAFETY: a zeroed siginfo_t is a valid out-parameter for sigtimedwait.
            let mut info = unsafe { std::mem::zeroed::<libc::siginfo_t>() };
            // SAFETY: the set and the timeout are valid and `info` outlives the call.
            if unsafe { libc::sigtimedwait(&set, &mut info, &BROKER_CHECK) } < 0 {
                if broker_gone() {
                    std::process::exit(0);
                }
                continue;
            }
            // SAFETY: signals sent with sigqueue carry a value.
            let value = unsafe { info.si_value().sival_ptr } as usize;
            if let Some((exec, reason)) = signal::decode(value) {
                link.interrupt(exec, reason);
            }
        }
    });
    if spawned.is_err() {
        // Without it a spinning script could only be stopped by the kill after the grace period.
        std::process::exit(0);
    }
}
