//! V8's platform is initialised once per process, before the first isolate exists.
//! This V8 is a private copy linked into the addon, separate from Node's own.

use std::sync::Once;

#[cfg(target_os = "linux")]
use deno_core::v8;

/// V8's entropy (hash seeds, `Math.random`) from `getrandom(2)`: left to itself V8 opens
/// `/dev/urandom` for every isolate, which the engine's sandbox refuses (Linux; elsewhere V8
/// uses the system's source as it is).
#[cfg(target_os = "linux")]
fn entropy(buffer: &mut [u8]) -> bool {
    let mut filled = 0;
    while filled < buffer.len() {
        let rest = &mut buffer[filled..];
        // SAFETY: getrandom writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        filled += n as usize;
    }
    true
}

pub fn ensure_initialized() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        #[cfg(target_os = "linux")]
        v8::V8::set_entropy_source(entropy);
        // Without Maglev, V8's mid tier, hot loops go from the baseline compiler straight to
        // TurboFan. Every execution runs in a fresh context, so its loops tier up anew each
        // time, and Maglev's code kept a 1e6-iteration float loop about 15% slower over a run
        // (`npm run bench` row e). The TurboFan threshold is set to Maglev's (400) because
        // unoptimized code serves interrupts only when that budget runs out: at TurboFan's own
        // threshold a loop of builtin calls went thousands of iterations between them, and the
        // ICU memory budget's collection (`buffer_budget.rs`) ran too late
        // (`__test__/security/caps.test.mjs`, 20,000 formatters in 32 MiB).
        deno_core::v8::V8::set_flags_from_string("--no-maglev --invocation-count-for-turbofan=400");
        deno_core::JsRuntime::init_platform(None);
    });
}
