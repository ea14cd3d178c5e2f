//! The references of one execution: data kept on the host, named by `__REF_<uuid>__`
//! strings the script holds instead. Dropped with the session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::config::ReferenceConfig;

pub const REF_PREFIX: &str = "__REF_";
pub const REF_SUFFIX: &str = "__";

/// Whether `value` is a whole reference string (`__REF_` + a UUID, any case, + `__`).
pub fn is_reference_id(value: &str) -> bool {
    let Some(uuid) = value.strip_prefix(REF_PREFIX).and_then(|v| v.strip_suffix(REF_SUFFIX)) else {
        return false;
    };
    let bytes = uuid.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Why something could not be stored (the original's `SidecarLimitError` messages).
#[derive(Clone, Debug, PartialEq)]
pub struct SidecarError(pub String);

impl std::fmt::Display for SidecarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Default)]
struct Held {
    refs: HashMap<String, Arc<str>>,
    total: usize,
}

pub struct Sidecar {
    config: ReferenceConfig,
    held: Mutex<Held>,
}

impl Sidecar {
    pub fn new(config: ReferenceConfig) -> Sidecar {
        Sidecar { config, held: Mutex::new(Held::default()) }
    }

    pub fn config(&self) -> &ReferenceConfig {
        &self.config
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `data` and returns its reference string, within the limits.
    pub fn store(&self, data: String) -> Result<String, SidecarError> {
        let size = data.len();
        let mut held = self.held();
        let c = &self.config;
        if held.refs.len() >= c.max_reference_count {
            return Err(SidecarError(format!(
                "Maximum reference count exceeded ({})",
                c.max_reference_count
            )));
        }
        if size > c.max_reference_size {
            return Err(SidecarError(format!(
                "Reference size {size} bytes exceeds maximum {} bytes",
                c.max_reference_size
            )));
        }
        if held.total + size > c.max_total_size {
            return Err(SidecarError(format!(
                "Total sidecar size would exceed maximum: {} > {}",
                held.total + size,
                c.max_total_size
            )));
        }
        let id = format!("{REF_PREFIX}{}{REF_SUFFIX}", uuid::Uuid::new_v4());
        held.total += size;
        held.refs.insert(id.clone(), Arc::from(data));
        Ok(id)
    }

    pub fn get(&self, id: &str) -> Option<Arc<str>> {
        self.held().refs.get(id).cloned()
    }

    /// UTF-8 bytes of a reference's data.
    pub fn size(&self, id: &str) -> Option<usize> {
        self.held().refs.get(id).map(|d| d.len())
    }

    pub fn count(&self) -> usize {
        self.held().refs.len()
    }

    /// Frees every reference (the run is over); later lookups find none.
    pub fn release(&self) {
        let mut held = self.held();
        held.refs = HashMap::new();
        held.total = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_ids_are_exact() {
        assert!(is_reference_id("__REF_123e4567-e89b-42d3-a456-426614174000__"));
        assert!(is_reference_id("__REF_123E4567-E89B-42D3-A456-426614174000__"));
        assert!(!is_reference_id("x__REF_123e4567-e89b-42d3-a456-426614174000__"));
        assert!(!is_reference_id("__REF_123e4567e89b-42d3-a456-4266141740000__"));
        assert!(!is_reference_id("__REF___"));
    }

    #[test]
    fn limits_are_enforced_with_the_originals_messages() {
        let config = ReferenceConfig {
            max_reference_count: 2,
            max_reference_size: 10,
            max_total_size: 15,
            ..ReferenceConfig::for_level("STRICT")
        };
        let sidecar = Sidecar::new(config);
        let id = sidecar.store("0123456789".into()).unwrap();
        assert!(is_reference_id(&id));
        assert_eq!(sidecar.size(&id), Some(10));
        assert_eq!(
            sidecar.store("x".repeat(11)).unwrap_err().0,
            "Reference size 11 bytes exceeds maximum 10 bytes"
        );
        assert_eq!(
            sidecar.store("x".repeat(6)).unwrap_err().0,
            "Total sidecar size would exceed maximum: 16 > 15"
        );
        sidecar.store("x".into()).unwrap();
        assert_eq!(sidecar.store("x".into()).unwrap_err().0, "Maximum reference count exceeded (2)");
        sidecar.release();
        assert_eq!((sidecar.count(), sidecar.get(&id)), (0, None));
    }
}
