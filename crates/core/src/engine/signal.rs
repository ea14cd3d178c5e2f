//! Interrupts delivered to an engine process as a queued real-time signal. The engine
//! thread reads its frames itself (a tool reply wakes exactly one thread), so while it
//! runs JavaScript nobody reads the pipe; a signal, taken by a thread in the engine
//! process that waits for nothing else, stops the script all the same. The Interrupt frame
//! is still sent: it is what a waiting engine reads. The signal names the execution it is
//! for, so a late one cannot stop the next execution in the same process.

use super::outcome::InterruptReason;

/// The signal used. The engine process blocks it in every thread and waits for it.
pub(crate) fn number() -> libc::c_int {
    libc::SIGRTMIN()
}

/// Execution ids count executions in one broker process, so 56 bits never run out.
pub(crate) fn encode(exec: u64, reason: InterruptReason) -> usize {
    ((exec << 8) | u64::from(reason.to_u8())) as usize
}

#[cfg_attr(not(feature = "v8"), allow(dead_code))]
pub(crate) fn decode(value: usize) -> Option<(u64, InterruptReason)> {
    let value = value as u64;
    Some((value >> 8, InterruptReason::from_u8((value & 0xff) as u8)?))
}

/// Sends the interrupt to `pid`, which the caller guarantees is a live, unreaped child.
pub(crate) fn send(pid: u32, exec: u64, reason: InterruptReason) {
    let value = libc::sigval { sival_ptr: encode(exec, reason) as *mut libc::c_void };
    // SAFETY: sigqueue only reads its arguments; a failure (the process is exiting) is
    // harmless because the frame and the kill that follows a grace period remain.
    unsafe {
        libc::sigqueue(pid as libc::pid_t, number(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for reason in [InterruptReason::Timeout, InterruptReason::Stopped, InterruptReason::MemoryLimit] {
            assert_eq!(decode(encode(123_456_789, reason)), Some((123_456_789, reason)));
        }
        assert_eq!(decode(7 << 8), None);
    }
}
