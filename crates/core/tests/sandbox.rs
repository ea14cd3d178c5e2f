//! The engine sandbox, proven from the outside. This test binary starts copies of itself
//! through the broker's own spawn (`confine::spawn`: empty environment, only the three
//! pipes, new namespaces); each copy confines itself exactly as an engine does
//! (`confine::enter_process`, V8 and its platform threads started, `confine::lock_down`),
//! checks that V8 and threads still work, then attempts one forbidden thing and reports on
//! stdout. A harness-less test target: the probe is compiled only for tests and is never
//! part of the engine binary, so no script can reach it.

#![cfg_attr(not(target_os = "linux"), allow(dead_code, unused_imports))]

use std::io::Read;
use std::os::unix::process::ExitStatusExt;

use enclave_broker_core::engine::confine::{self, EngineStderr};

/// Elsewhere the Linux layers do not exist; the engine's report must say so.
#[cfg(not(target_os = "linux"))]
fn main() {
    let layers = confine::lock_down(MEMORY_LIMIT);
    assert!(layers.is_empty(), "no lock-down layers outside Linux: {layers:?}");
}

const MEMORY_LIMIT: usize = 64 << 20;

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The outcome of a libc call, as the probe reports it.
fn outcome(name: &str, result: libc::c_long) {
    if result < 0 {
        let error = std::io::Error::last_os_error();
        say(&format!("{name} refused {}", error.raw_os_error().unwrap_or(0)));
    } else {
        say(&format!("{name} returned {result}"));
    }
}

/// Runs in the confined copy.
fn probe(case: &str) {
    let mut layers = confine::enter_process();
    deno_core::JsRuntime::init_platform(None);
    // deno_core posts V8's delayed tasks to the current tokio runtime, as the engine's does.
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let _entered = tokio.enter();
    let mut runtime = deno_core::JsRuntime::new(Default::default());
    runtime.execute_script("before", "1 + 1").expect("V8 runs before the lock-down");
    layers.extend(confine::lock_down(MEMORY_LIMIT, 1));
    for layer in &layers {
        say(&format!("layer {layer}"));
    }
    // V8 still works, with its platform threads (garbage collection runs on them).
    let script = "let a = []; for (let i = 0; i < 300000; i++) a.push({ i, s: 'x' + i }); a = null; \
                  new Date(0).getTimezoneOffset() + String(new Intl.NumberFormat('de-DE').format(1234.5))";
    match runtime.execute_script("after", script) {
        Ok(_) => say("js ok"),
        Err(error) => say(&format!("js failed {error}")),
    }
    let path = c"/etc/passwd";
    // SAFETY: plain system calls with valid arguments; the probe exists to make them.
    unsafe {
        match case {
            "thread" => {
                let value = std::thread::spawn(|| 6 * 7).join().unwrap_or(0);
                say(&format!("thread ok {value}"));
            }
            "open" => {
                outcome("open", libc::open(path.as_ptr(), libc::O_RDONLY) as libc::c_long);
                outcome(
                    "openat",
                    libc::openat(libc::AT_FDCWD, path.as_ptr(), libc::O_RDONLY) as libc::c_long,
                );
                let mut stat: libc::stat = std::mem::zeroed();
                outcome("stat", libc::stat(path.as_ptr(), &mut stat) as libc::c_long);
            }
            "socket" => outcome("socket", libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) as libc::c_long),
            "execve" => {
                let program = c"/bin/true";
                let argv = [program.as_ptr(), std::ptr::null()];
                let envp = [std::ptr::null()];
                outcome(
                    "execve",
                    libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) as libc::c_long,
                );
            }
            "fork" => {
                let pid = libc::fork();
                if pid == 0 {
                    libc::_exit(0);
                }
                outcome("fork", pid as libc::c_long);
            }
            "ptrace" => outcome("ptrace", libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0)),
            other => say(&format!("unknown case {other}")),
        }
    }
}

struct Report {
    output: String,
    errors: String,
    status: std::process::ExitStatus,
}

fn run(case: &str) -> Report {
    let exe = std::env::current_exe().expect("the test binary's path");
    let args = ["--probe".to_string(), case.to_string()];
    let mut engine = confine::spawn(&exe, &args, EngineStderr::Captured).expect("spawned");
    let mut output = String::new();
    engine.stdout.read_to_string(&mut output).expect("read the probe's report");
    let status = engine.wait().expect("waited");
    let mut errors = String::new();
    if let Some(stderr) = engine.stderr.as_mut() {
        let _ = stderr.read_to_string(&mut errors);
    }
    Report { output, errors, status }
}

fn check(case: &str, ok: bool, report: &Report, failures: &mut Vec<String>) {
    let verdict = if ok { "ok" } else { "FAILED" };
    println!("sandbox probe {case}: {verdict} ({})", report.status);
    if !ok {
        failures.push(format!("{case}: {}\n{}stderr: {}", report.status, report.output, report.errors));
    }
}

/// Killed by the seccomp filter, before the call returned anything.
fn killed_by_seccomp(report: &Report, name: &str) -> bool {
    report.status.signal() == Some(libc::SIGSYS) && !report.output.contains(&format!("{name} returned"))
}

#[cfg(target_os = "linux")]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--probe") {
        probe(args.get(2).map(String::as_str).unwrap_or(""));
        return;
    }
    let mut failures = Vec::new();

    let thread = run("thread");
    let layers = [
        "layer environment: empty",
        "layer descriptors: only its stdin/stdout/stderr pipes",
        "layer capabilities: none",
        "layer no_new_privs",
        "layer seccomp: allow-list",
    ];
    let ok = thread.status.success()
        && layers.iter().all(|l| thread.output.contains(l))
        && thread.output.contains("js ok")
        && thread.output.contains("thread ok 42");
    check("threads and V8 work after the lock-down", ok, &thread, &mut failures);

    let open = run("open");
    let refused = format!("refused {}", libc::EACCES);
    let ok = open.status.success()
        && ["open", "openat", "stat"].iter().all(|n| open.output.contains(&format!("{n} {refused}")));
    check("open(\"/etc/passwd\") is refused", ok, &open, &mut failures);

    for case in ["socket", "execve", "fork", "ptrace"] {
        let report = run(case);
        let ok = killed_by_seccomp(&report, case) && report.output.contains("js ok");
        check(&format!("{case} kills the process"), ok, &report, &mut failures);
    }

    if !failures.is_empty() {
        eprintln!("sandbox probes failed:\n{}", failures.join("\n---\n"));
        std::process::exit(1);
    }
}
