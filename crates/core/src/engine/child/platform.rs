//! V8's platform is initialised once per process, before the first isolate exists.
//! This V8 is a private copy linked into the addon, separate from Node's own.

use std::sync::Once;

pub fn ensure_initialized() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        deno_core::JsRuntime::init_platform(None);
    });
}
