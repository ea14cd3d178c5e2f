//! How much the reference sidecar may hold and resolve: the original's `REFERENCE_CONFIGS`
//! per security level, which a user's `sidecar` options override field by field (all but
//! `maxResolutionDepth`).

#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceConfig {
    /// Bytes all references of one execution may hold together.
    pub max_total_size: usize,
    /// Bytes one reference may hold.
    pub max_reference_size: usize,
    /// A string literal or whole-string tool result of at least this many UTF-8 bytes is
    /// lifted into the sidecar.
    pub extraction_threshold: usize,
    /// Bytes the arguments of one tool call may reach once their references are resolved.
    pub max_resolved_size: usize,
    /// Whether concatenating a reference gives a composite handle (else it throws).
    pub allow_composites: bool,
    pub max_reference_count: usize,
    /// How deep in tool arguments references are looked for and resolved.
    pub max_resolution_depth: usize,
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

impl ReferenceConfig {
    /// The level's configuration (`STRICT`, `SECURE`, `STANDARD`, `PERMISSIVE`; anything
    /// else is `STANDARD`, the broker's default level).
    pub fn for_level(level: &str) -> ReferenceConfig {
        let (total, one, threshold, resolved, composites, count, depth) = match level {
            "STRICT" => (16 * MIB, 4 * MIB, 64 * KIB, 8 * MIB, false, 50, 5),
            "SECURE" => (64 * MIB, 16 * MIB, 256 * KIB, 32 * MIB, false, 100, 10),
            "PERMISSIVE" => (1024 * MIB, 256 * MIB, 4 * MIB, 512 * MIB, true, 1000, 50),
            _ => (256 * MIB, 64 * MIB, MIB, 128 * MIB, true, 500, 20),
        };
        ReferenceConfig {
            max_total_size: total,
            max_reference_size: one,
            extraction_threshold: threshold,
            max_resolved_size: resolved,
            allow_composites: composites,
            max_reference_count: count,
            max_resolution_depth: depth,
        }
    }
}

/// The `sidecar` options a user gave (`enabled` aside); absent fields keep the level's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SidecarOverrides {
    pub max_total_size: Option<usize>,
    pub max_reference_size: Option<usize>,
    pub extraction_threshold: Option<usize>,
    pub max_resolved_size: Option<usize>,
    pub allow_composites: Option<bool>,
    pub max_reference_count: Option<usize>,
}

impl SidecarOverrides {
    pub fn apply(&self, mut config: ReferenceConfig) -> ReferenceConfig {
        let o = self;
        config.max_total_size = o.max_total_size.unwrap_or(config.max_total_size);
        config.max_reference_size = o.max_reference_size.unwrap_or(config.max_reference_size);
        config.extraction_threshold = o.extraction_threshold.unwrap_or(config.extraction_threshold);
        config.max_resolved_size = o.max_resolved_size.unwrap_or(config.max_resolved_size);
        config.allow_composites = o.allow_composites.unwrap_or(config.allow_composites);
        config.max_reference_count = o.max_reference_count.unwrap_or(config.max_reference_count);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_the_originals_and_overrides_keep_the_depth() {
        let strict = ReferenceConfig::for_level("STRICT");
        assert_eq!(
            (strict.extraction_threshold, strict.allow_composites, strict.max_resolution_depth),
            (65536, false, 5)
        );
        assert_eq!(ReferenceConfig::for_level("unknown"), ReferenceConfig::for_level("STANDARD"));
        let custom = SidecarOverrides {
            extraction_threshold: Some(10),
            allow_composites: Some(true),
            ..Default::default()
        }
        .apply(strict.clone());
        assert_eq!(custom.extraction_threshold, 10);
        assert!(custom.allow_composites);
        assert_eq!(custom.max_resolution_depth, 5);
        assert_eq!(custom.max_total_size, strict.max_total_size);
    }
}
