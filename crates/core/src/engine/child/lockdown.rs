//! The last step before an engine takes work: what V8 and ICU would otherwise read from
//! files later is loaded now, then the process locks itself down (`confine::lock_down`:
//! afterwards it cannot open a file). Runs once per process.

use deno_core::v8;

use super::isolate::IsolateHost;
use crate::engine::confine;

/// ICU reads the host's time zone (`/etc/localtime`) the first time a date is shown in
/// local time, and caches it for the process; locale data is compiled into the binary, so
/// `Intl` needs no file.
const PRELOAD: &str = "new Date(0).getTimezoneOffset();";

fn preload(host: &mut IsolateHost) {
    let isolate = host.isolate();
    v8::scope!(scope, isolate);
    let context = v8::Context::new(scope, Default::default());
    let scope = &mut v8::ContextScope::new(scope, context);
    let Some(source) = v8::String::new(scope, PRELOAD) else { return };
    if let Some(script) = v8::Script::compile(scope, source, None) {
        script.run(scope);
    }
}

/// Preloads, locks the process down, and returns every layer it has, one per line.
pub(super) fn lock_down(
    host: &mut IsolateHost,
    memory_limit: usize,
    isolates: usize,
    mut layers: Vec<String>,
) -> String {
    preload(host);
    layers.extend(confine::lock_down(memory_limit, isolates));
    layers.join("\n")
}
