//! The engine's seccomp-bpf filter: an allow-list of the system calls V8, glibc, tokio and
//! the engine make once the process is running (found with `strace -f` over the whole test
//! suite and the soak run, plus a margin for what they do under memory pressure and GC:
//! `mremap`, `mincore`, `sysinfo`, `membarrier`, sleeping and time calls). Every other call
//! kills the process (`SECCOMP_RET_KILL_PROCESS`), which the broker reports as
//! `ENGINE_CRASHED`: sockets, `execve`, `fork` and process `clone`, `ptrace`, `kill` of
//! another process, namespaces, `bpf`, `io_uring`, `userfaultfd`, ...
//!
//! A few calls are refused with an error instead (they are still never carried out):
//! opening files, reading links, `stat` by path and `ioctl` fail with `EACCES`, because
//! glibc (`/proc/sys/vm/overcommit_memory` when a heap shrinks, `/sys/devices/system/cpu`),
//! abseil (`tsc_freq_khz`), ICU (`/etc/localtime`) and Rust's `available_parallelism` probe
//! files lazily and fall back when they cannot; killing the process there would turn a
//! harmless probe into a crashed run. `prctl` is allowed only to name threads and memory
//! areas. `clone3` fails with `ENOSYS`, so glibc falls back to `clone`, whose flags a filter
//! can read: threads (V8's platform workers) are allowed, new processes are not.
//!
//! The filter is built with the `seccompiler` crate (rust-vmm, used by Firecracker): it is
//! pure Rust (no `libseccomp.so` to ship next to the engine), checks the architecture in
//! the program (a 32-bit or x32 system call cannot slip past the numbers), compiles 64-bit
//! argument checks correctly, and applies filters to every thread at once (TSYNC). It has a
//! single "on match" action per filter, so three filters are stacked; the kernel applies
//! the strictest verdict of all of them.

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// Allowed whatever their arguments.
const ALLOWED: &[libc::c_long] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_fstat,
    libc::SYS_fcntl,
    libc::SYS_mmap,
    libc::SYS_mprotect,
    libc::SYS_munmap,
    libc::SYS_madvise,
    libc::SYS_mremap,
    libc::SYS_mincore,
    libc::SYS_brk,
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_membarrier,
    libc::SYS_pkey_alloc,
    libc::SYS_pkey_free,
    libc::SYS_pkey_mprotect,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_getparam,
    libc::SYS_sched_getscheduler,
    libc::SYS_sched_get_priority_max,
    libc::SYS_sched_get_priority_min,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_getppid,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_getresuid,
    libc::SYS_getresgid,
    libc::SYS_getrusage,
    libc::SYS_times,
    libc::SYS_sysinfo,
    libc::SYS_uname,
    libc::SYS_getcpu,
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_gettimeofday,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_rt_sigpending,
    libc::SYS_rt_sigsuspend,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_getrandom,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_epoll_create1,
    libc::SYS_eventfd2,
    libc::SYS_ppoll,
    libc::SYS_pselect6,
    libc::SYS_getrlimit,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_poll,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_select,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_time,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_epoll_wait,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_arch_prctl,
];

/// Refused with `EACCES` whatever their arguments.
const REFUSED: &[libc::c_long] = &[
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_readlinkat,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_ioctl,
    libc::SYS_sched_setaffinity,
    libc::SYS_sched_setscheduler,
    libc::SYS_setpriority,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_open,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_creat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_readlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_access,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_stat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lstat,
];

/// `prctl` options that are allowed: naming threads and anonymous memory (V8, abseil), and
/// `no_new_privs`, which only ever restricts (installing a filter sets it).
const PRCTL_ALLOWED: [libc::c_int; 4] =
    [libc::PR_SET_NAME, libc::PR_GET_NAME, libc::PR_SET_VMA, libc::PR_SET_NO_NEW_PRIVS];

/// A check of the low 32 bits of argument `arg`: every argument checked here is an `int`
/// (or flags that fit one), and the upper half of its register is not defined.
fn condition(arg: u8, op: SeccompCmpOp, value: u64) -> SeccompCondition {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).expect("argument index below 6")
}

fn rule(conditions: Vec<SeccompCondition>) -> SeccompRule {
    SeccompRule::new(conditions).expect("non-empty rule")
}

fn arch() -> seccompiler::TargetArch {
    std::env::consts::ARCH.try_into().expect("an architecture seccompiler supports")
}

fn compile(rules: Rules, mismatch: SeccompAction, matched: SeccompAction) -> io::Result<BpfProgram> {
    let filter =
        SeccompFilter::new(rules, mismatch, matched, arch()).map_err(|e| io::Error::other(e.to_string()))?;
    filter.try_into().map_err(|e: seccompiler::BackendError| io::Error::other(e.to_string()))
}

/// Everything that must not kill the process, with the argument checks that decide it.
fn allow_list(pid: libc::pid_t) -> Rules {
    let mut rules: Rules = ALLOWED.iter().chain(REFUSED).map(|nr| (*nr, Vec::new())).collect();
    for nr in [libc::SYS_newfstatat, libc::SYS_statx, libc::SYS_prctl, libc::SYS_clone3] {
        rules.insert(nr, Vec::new());
    }
    // Threads share the address space, descriptors and signal handlers; a process does not.
    let thread = (libc::CLONE_THREAD | libc::CLONE_VM | libc::CLONE_SIGHAND) as u64;
    rules.insert(libc::SYS_clone, vec![rule(vec![condition(0, SeccompCmpOp::MaskedEq(thread), thread)])]);
    // Signals only to itself (`abort`, `raise`); never to the broker or its process group.
    for nr in [libc::SYS_kill, libc::SYS_tgkill] {
        rules.insert(nr, vec![rule(vec![condition(0, SeccompCmpOp::Eq, pid as u64)])]);
    }
    // Its own limits only (it holds no capability to raise them).
    rules.insert(libc::SYS_prlimit64, vec![rule(vec![condition(0, SeccompCmpOp::Eq, 0)])]);
    rules
}

/// What fails with `EACCES`: the file probes, `stat` by path, and other `prctl` options.
fn refusals() -> Rules {
    let mut rules: Rules = REFUSED.iter().map(|nr| (*nr, Vec::new())).collect();
    let by_path = |flags_arg: u8| {
        let empty_path = libc::AT_EMPTY_PATH as u64;
        vec![rule(vec![condition(flags_arg, SeccompCmpOp::MaskedEq(empty_path), 0)])]
    };
    rules.insert(libc::SYS_newfstatat, by_path(3));
    rules.insert(libc::SYS_statx, by_path(2));
    let other_option =
        PRCTL_ALLOWED.iter().map(|option| condition(0, SeccompCmpOp::Ne, *option as u64)).collect();
    rules.insert(libc::SYS_prctl, vec![rule(other_option)]);
    rules
}

/// Installs the filters on every thread of the process. Needs `no_new_privs`.
pub(crate) fn install() -> io::Result<String> {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let allowed = allow_list(pid);
    let count = allowed.len();
    // The allow-list goes last: `seccomp` itself is not on it, so no filter comes after.
    let programs = [
        compile(
            [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
        )?,
        compile(refusals(), SeccompAction::Allow, SeccompAction::Errno(libc::EACCES as u32))?,
        compile(allowed, SeccompAction::KillProcess, SeccompAction::Allow)?,
    ];
    for program in &programs {
        seccompiler::apply_filter_all_threads(program).map_err(|e| io::Error::other(e.to_string()))?;
    }
    Ok(format!(
        "seccomp: allow-list of {count} system calls on every thread (any other kills the process; \
         opening files, reading links, stat by path and ioctl fail with EACCES)"
    ))
}
