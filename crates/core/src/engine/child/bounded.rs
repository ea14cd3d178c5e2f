//! Strings copied out of the sandbox with a size cap: only the part that fits is read out of
//! V8, so a script's 64 MiB error message costs the engine and the host nothing.

use deno_core::v8;

pub(crate) enum Bounded {
    Whole(String),
    /// The part that fits, and the string's length in UTF-16 code units (JavaScript's).
    Cut(String, usize),
}

/// `value`'s UTF-8 text if it fits in `max` bytes, else the longest prefix of whole
/// characters that does.
pub(crate) fn read(scope: &v8::Isolate, value: v8::Local<v8::String>, max: usize) -> Bounded {
    // A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair, 2 units, is 4).
    if value.length().saturating_mul(3) <= max {
        return Bounded::Whole(value.to_rust_string_lossy(scope));
    }
    let mut buffer = vec![0u8; max];
    let mut read = 0;
    let written =
        value.write_utf8_v2(scope, &mut buffer, v8::WriteFlags::kReplaceInvalidUtf8, Some(&mut read));
    buffer.truncate(written);
    let text =
        String::from_utf8(buffer).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    if read >= value.length() { Bounded::Whole(text) } else { Bounded::Cut(text, value.length()) }
}

/// `read`, with a cut said at the end of the text.
pub(crate) fn text(scope: &v8::Isolate, value: v8::Local<v8::String>, max: usize) -> String {
    match read(scope, value, max) {
        Bounded::Whole(text) => text,
        Bounded::Cut(text, length) => format!("{text}… [cut: {length} characters in all]"),
    }
}
