//! A tiny JSON object writer. Event payloads must keep the original's key order and
//! must embed values produced by the sandbox verbatim (they are already JSON text), so
//! payloads are written directly instead of going through `serde_json::Value`.

use serde::Serialize;

pub struct JsonObject {
    buf: String,
    empty: bool,
}

impl Default for JsonObject {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonObject {
    pub fn new() -> Self {
        Self { buf: String::from("{"), empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.buf.push(',');
        }
        self.empty = false;
        push_json_string(&mut self.buf, key);
        self.buf.push(':');
    }

    /// Adds `key` with a serializable value.
    pub fn field<T: Serialize + ?Sized>(mut self, key: &str, value: &T) -> Self {
        self.key(key);
        // Serializing plain data (strings, numbers, bools, Values) cannot fail.
        self.buf.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()));
        self
    }

    /// Adds `key` only when `value` is present (the original omits `undefined` keys).
    pub fn opt_field<T: Serialize + ?Sized>(self, key: &str, value: Option<&T>) -> Self {
        match value {
            Some(v) => self.field(key, v),
            None => self,
        }
    }

    /// Adds `key` with a number formatted as JavaScript's `JSON.stringify` would.
    pub fn num(mut self, key: &str, value: f64) -> Self {
        self.key(key);
        self.buf.push_str(&js_number(value));
        self
    }

    pub fn opt_num(self, key: &str, value: Option<f64>) -> Self {
        match value {
            Some(v) => self.num(key, v),
            None => self,
        }
    }

    /// Adds `key` with text that is already valid JSON.
    pub fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.buf.push_str(json);
        self
    }

    pub fn opt_raw(self, key: &str, json: Option<&str>) -> Self {
        match json {
            Some(j) => self.raw(key, j),
            None => self,
        }
    }

    pub fn finish(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

pub fn push_json_string(buf: &mut String, s: &str) {
    buf.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// Formats a number the way `JSON.stringify` does: integers without a fraction,
/// non-finite values as `null`, everything else in shortest round-trip form.
pub fn js_number(value: f64) -> String {
    if !value.is_finite() {
        return "null".into();
    }
    if value == value.trunc() && value.abs() < 1e21 {
        if value == 0.0 {
            return "0".into();
        }
        return format!("{value:.0}");
    }
    let text = serde_json::to_string(&value).unwrap_or_else(|_| "null".into());
    // serde_json (ryu) writes `1e-7` and `1.5e21`; JavaScript writes `1e-7` and `1.5e+21`.
    match text.find('e') {
        Some(i) if !text[i + 1..].starts_with('-') => format!("{}e+{}", &text[..i], &text[i + 1..]),
        _ => text,
    }
}

/// ISO-8601 UTC timestamp with milliseconds, as JavaScript's `Date#toISOString`.
pub fn iso_timestamp(epoch_ms: f64) -> String {
    let ms = epoch_ms.floor() as i64;
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", sod / 3600, (sod % 3600) / 60, sod % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Milliseconds since the Unix epoch, as JavaScript's `Date.now()`.
pub fn now_epoch_ms() -> f64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    d.as_millis() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_keys_in_insertion_order_and_skips_missing() {
        let s = JsonObject::new()
            .field("b", &1)
            .opt_field::<u32>("skip", None)
            .raw("a", "{\"x\":[1,2]}")
            .field("s", "q\"uote")
            .finish();
        assert_eq!(s, r#"{"b":1,"a":{"x":[1,2]},"s":"q\"uote"}"#);
    }

    #[test]
    fn numbers_format_like_javascript() {
        assert_eq!(js_number(5.0), "5");
        assert_eq!(js_number(-0.0), "0");
        assert_eq!(js_number(1.5), "1.5");
        assert_eq!(js_number(f64::NAN), "null");
        assert_eq!(js_number(f64::INFINITY), "null");
        assert_eq!(js_number(123456789012.0), "123456789012");
        assert_eq!(js_number(1e-7), "1e-7");
        assert_eq!(js_number(0.1), "0.1");
    }

    #[test]
    fn iso_timestamps_match_javascript() {
        assert_eq!(iso_timestamp(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_timestamp(1735689600000.0), "2025-01-01T00:00:00.000Z");
        assert_eq!(iso_timestamp(951782400123.0), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso_timestamp(4102444799999.0), "2099-12-31T23:59:59.999Z");
    }
}
