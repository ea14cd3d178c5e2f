//! Text encodings on the wire: base64 as the browser's `btoa`/`atob` do it, and JSON
//! string literals for the hand-ordered objects we write.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

// `atob` is the "forgiving" decoder: padding may be left off and the unused low bits of the
// last character are ignored. Peers built on it may send either, so we accept both.
const FORGIVING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Standard base64 with padding, exactly what `btoa` gives.
pub fn to_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes like `atob`: ASCII whitespace is skipped, padding is optional. `None` for any
/// character outside the standard alphabet (URL-safe `-`/`_` included, as `atob` rejects them).
pub fn from_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')).collect();
    FORGIVING.decode(compact).ok()
}

/// A JSON string literal for `text`. We write some objects by hand to pin their key
/// order, and this keeps the values correctly escaped all the same.
pub(crate) fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a &str always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_with_padding() {
        assert_eq!(to_base64(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), "AQIDBAUGBwgJCgsM");
        assert_eq!(to_base64(b"a"), "YQ==");
        assert_eq!(to_base64(b"ab"), "YWI=");
        assert_eq!(to_base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn decodes_like_atob() {
        assert_eq!(from_base64("YQ==").unwrap(), b"a");
        assert_eq!(from_base64("YQ").unwrap(), b"a");
        assert_eq!(from_base64("Y W\nI=").unwrap(), b"ab");
        // "YR==" carries a stray low bit; atob drops it.
        assert_eq!(from_base64("YR==").unwrap(), b"a");
        assert_eq!(from_base64("").unwrap(), b"");
    }

    #[test]
    fn rejects_what_atob_rejects() {
        assert_eq!(from_base64("not*base64"), None);
        assert_eq!(from_base64("-_8="), None);
        assert_eq!(from_base64("Y"), None);
    }

    #[test]
    fn json_string_escapes_like_json_stringify() {
        assert_eq!(json_string("s_1"), "\"s_1\"");
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        assert_eq!(json_string("é"), "\"é\"");
    }
}
