//! The engine process confining itself, on Linux. `enter` runs first thing in `main`, while
//! the process has one thread (capabilities and the signal setup are per thread, and
//! threads inherit them); `lock_down` runs once V8 is up, before the process is pooled.

use std::io;

use super::seccomp;
use crate::engine::confine::ABORT_EXIT_CODE;
use crate::engine::memory_ceiling;

/// Most descriptors an engine needs: its three pipes, the runtime's epoll, eventfd and
/// socketpair, and V8's. Counted at about ten; the rest is margin.
const MAX_DESCRIPTORS: u64 = 64;

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let limit = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(resource, &limit) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Closes every descriptor but 0, 1 and 2 (the broker's spawn already did; an engine started
/// some other way gets the same).
fn close_inherited_descriptors() {
    // SAFETY: closes descriptors no Rust object owns this early in `main`.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) < 0 {
            for fd in 3..1024 {
                libc::close(fd);
            }
        }
    }
}

/// Drops every capability: the bounding set (so none can come back), the ambient set, then
/// the effective, permitted and inheritable sets. An engine in a new user namespace holds
/// none already (it exec'd there as a user without a mapping); one started by a root broker
/// without namespaces holds them all until here.
fn drop_capabilities() -> io::Result<()> {
    // SAFETY: prctl and capset/capget with valid arguments and buffers.
    unsafe {
        for capability in 0..64 {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                capability as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            );
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
        #[repr(C)]
        struct Header {
            version: u32,
            pid: libc::c_int,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const VERSION_3: u32 = 0x2008_0522;
        let mut header = Header { version: VERSION_3, pid: 0 };
        let none = [Data::default(); 2];
        if libc::syscall(libc::SYS_capset, &mut header, none.as_ptr()) < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut held = [Data::default(); 2];
        if libc::syscall(libc::SYS_capget, &mut header, held.as_mut_ptr()) < 0 {
            return Err(io::Error::last_os_error());
        }
        if held.iter().any(|d| d.effective | d.permitted | d.inheritable != 0) {
            return Err(io::Error::other("capabilities still held after capset"));
        }
    }
    Ok(())
}

/// PID 1 of a PID namespace ignores signals it has no handler for when they come from
/// inside the namespace, so `abort()` (V8's fatal errors) would not end it with SIGABRT. A
/// handler ends it with the exit status the broker reads as an abort.
fn exit_on_abort() {
    extern "C" fn aborted(_: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(ABORT_EXIT_CODE) };
    }
    // SAFETY: installs a handler that only calls _exit.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = aborted as extern "C" fn(libc::c_int) as usize;
        libc::sigaction(libc::SIGABRT, &action, std::ptr::null_mut());
    }
}

/// The layers that need a single-threaded process. Returns what they achieved.
pub(crate) fn enter() -> Vec<String> {
    let mut layers = Vec::new();
    close_inherited_descriptors();
    layers.push("descriptors: only its stdin/stdout/stderr pipes".to_string());
    let variables = std::env::vars_os().count();
    layers.push(match variables {
        0 => "environment: empty".to_string(),
        n => format!("environment: {n} variables (not started by the broker)"),
    });
    // SAFETY: chdir with a valid C string.
    if unsafe { libc::chdir(c"/".as_ptr()) } == 0 {
        layers.push("working directory: /".to_string());
    }
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } == 1 {
        exit_on_abort();
    }
    let limits = [
        (libc::RLIMIT_CORE, 0, "core 0"),
        (libc::RLIMIT_FSIZE, 0, "fsize 0"),
        (libc::RLIMIT_NOFILE, MAX_DESCRIPTORS, "nofile 64"),
        (libc::RLIMIT_MEMLOCK, 0, "memlock 0"),
        (libc::RLIMIT_MSGQUEUE, 0, "msgqueue 0"),
        (libc::RLIMIT_LOCKS, 0, "locks 0"),
    ];
    let applied: Vec<&str> = limits
        .iter()
        .filter(|(resource, value, _)| set_limit(*resource, *value).is_ok())
        .map(|l| l.2)
        .collect();
    layers.push(format!("rlimits: {}", applied.join(", ")));
    layers.push(match drop_capabilities() {
        Ok(()) => "capabilities: none".to_string(),
        Err(error) => format!("capabilities: could not be dropped ({error})"),
    });
    // SAFETY: prctl with valid arguments.
    let no_new_privs = unsafe {
        let zero: libc::c_ulong = 0;
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, zero, zero, zero) == 0
            && libc::prctl(libc::PR_GET_NO_NEW_PRIVS, zero, zero, zero, zero) == 1
    };
    layers.push(if no_new_privs { "no_new_privs" } else { "no_new_privs: unavailable" }.to_string());
    layers
}

/// Virtual memory of the process's private writable mappings (`VmData`), in bytes.
fn data_size() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmData:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// The layers applied once V8 runs: the data-segment limit, sized from what the process
/// maps now plus the memory ceiling of `isolates` isolates of `memory_limit` (so the kernel
/// refuses memory past the ceiling even between two looks of the broker's guard), then the
/// seccomp filter on every thread.
pub(crate) fn lock_down(memory_limit: usize, isolates: usize) -> Vec<String> {
    let mut layers = Vec::new();
    if let Some(now) = data_size() {
        let limit = now.saturating_add(memory_ceiling(memory_limit, isolates) as u64);
        if set_limit(libc::RLIMIT_DATA, limit).is_ok() {
            layers.push(format!("rlimit data: {} MiB", limit >> 20));
        }
    }
    layers.push(match seccomp::install() {
        Ok(description) => description,
        Err(error) => format!("seccomp: unavailable ({error})"),
    });
    layers
}
