//! Session configuration as the facade passes it (already merged the original's way).

use enclave_broker_core::engine::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_RESULT_BYTES, DEFAULT_MEMORY_LIMIT, SandboxOptions,
};
use enclave_broker_core::protocol::{LIMIT_KEYS, LimitInput, PartialLimits, SessionLimits};
use enclave_broker_core::session::{AllowedTools, ExternalTools, Principal, SessionConfig};
use enclave_broker_core::sidecar::{ReferenceConfig, SidecarOverrides};
use napi::bindgen_prelude::{Either, Object, Unknown};
use napi::{Env, JsValue, ValueType};
use napi_derive::napi;

use crate::error::BindingError;

#[napi(object)]
#[derive(Default)]
pub struct BindingLimits {
    pub session_ttl_ms: Option<f64>,
    pub max_tool_calls: Option<f64>,
    pub max_stdout_bytes: Option<f64>,
    pub max_stdout_events: Option<f64>,
    pub max_tool_result_bytes: Option<f64>,
    pub tool_timeout_ms: Option<f64>,
    pub heartbeat_interval_ms: Option<f64>,
    pub deadline_ms: Option<f64>,
    pub per_tool_deadline_ms: Option<f64>,
    pub cancel_on_first_error: Option<bool>,
    pub timeout: Option<f64>,
    pub memory_limit: Option<f64>,
}

#[napi(object)]
#[derive(Default)]
pub struct BindingSessionConfig {
    pub session_id: Option<String>,
    pub limits: Option<BindingLimits>,
    /// `enclave.memoryLimit` (bytes); `limits.memoryLimit` wins when both are given.
    pub memory_limit: Option<f64>,
    pub max_result_bytes: Option<f64>,
    pub max_depth: Option<u32>,
    /// `enclave.globals` as JSON (the facade has already checked and copied it).
    pub globals_json: Option<String>,
    /// Tools the client runs itself (results come through `submitToolResult`); `["*"]` for all.
    pub external_tools: Option<Vec<String>>,
    /// Glob patterns of the tools the script may call (seed `allowedTools`); all when absent.
    pub allowed_tools: Option<Vec<String>>,
    /// The principal (a user id) a `SessionHandler` created the session for; `anonymous` when absent.
    pub owner_user_id: Option<String>,
    /// `enclave.securityLevel`, which picks the sidecar's limits (`STANDARD` when absent).
    pub security_level: Option<String>,
    /// `enclave.sidecar` when it is enabled (the facade has checked its values).
    pub sidecar: Option<BindingSidecar>,
}

/// The reference sidecar's options (`enclave.sidecar: {enabled: true, ...}`): each given
/// value replaces the security level's (see `enclave_broker_core::sidecar`).
#[napi(object)]
#[derive(Default)]
pub struct BindingSidecar {
    pub max_total_size: Option<f64>,
    pub max_reference_size: Option<f64>,
    pub extraction_threshold: Option<f64>,
    pub max_resolved_size: Option<f64>,
    pub allow_composites: Option<bool>,
    pub max_reference_count: Option<f64>,
}

impl BindingSidecar {
    fn config(self, level: Option<&str>) -> ReferenceConfig {
        let size = |v: Option<f64>| {
            v.filter(|v| *v >= 0.0).map(|v| if v.is_finite() { v as usize } else { usize::MAX })
        };
        SidecarOverrides {
            max_total_size: size(self.max_total_size),
            max_reference_size: size(self.max_reference_size),
            extraction_threshold: size(self.extraction_threshold),
            max_resolved_size: size(self.max_resolved_size),
            allow_composites: self.allow_composites,
            max_reference_count: size(self.max_reference_count),
        }
        .apply(ReferenceConfig::for_level(level.unwrap_or("STANDARD")))
    }
}

pub(crate) fn external_tools(names: Option<Vec<String>>) -> ExternalTools {
    match names {
        None => ExternalTools::None,
        Some(names) if names.iter().any(|n| n == "*") => ExternalTools::All,
        Some(names) => ExternalTools::Named(names.into_iter().collect()),
    }
}

fn bytes(value: Option<f64>, default: usize) -> usize {
    match value {
        Some(v) if v.is_finite() && v > 0.0 => v as usize,
        Some(v) if v == f64::INFINITY => usize::MAX,
        _ => default,
    }
}

/// The limits a JavaScript caller gave, before defaults are applied.
pub(crate) fn partial(limits: BindingLimits) -> PartialLimits {
    PartialLimits {
        session_ttl_ms: limits.session_ttl_ms,
        max_tool_calls: limits.max_tool_calls,
        max_stdout_bytes: limits.max_stdout_bytes,
        max_stdout_events: limits.max_stdout_events,
        max_tool_result_bytes: limits.max_tool_result_bytes,
        tool_timeout_ms: limits.tool_timeout_ms,
        heartbeat_interval_ms: limits.heartbeat_interval_ms,
        deadline_ms: limits.deadline_ms,
        per_tool_deadline_ms: limits.per_tool_deadline_ms,
        cancel_on_first_error: limits.cancel_on_first_error,
        timeout: limits.timeout,
        memory_limit: limits.memory_limit,
    }
}

/// A JavaScript value as `String(value)` shows it in a message (strings quoted, arrays
/// named), for limits that are not what their key takes.
fn shown(env: napi::sys::napi_env, value: Unknown<'_>, kind: ValueType) -> napi::Result<String> {
    Ok(match kind {
        ValueType::String => serde_json::to_string(&unsafe { value.cast::<String>() }?).unwrap_or_default(),
        ValueType::Null => "null".into(),
        ValueType::Symbol => "symbol".into(),
        _ if value.is_array()? => "an array".into(),
        _ => match value.coerce_to_string().and_then(|s| s.into_utf8()).and_then(|s| s.into_owned()) {
            Ok(text) => text,
            // `String(value)` threw (a throwing toString): name its type instead, and drop
            // the pending exception, which is not this call's answer.
            Err(_) => {
                let mut pending = std::ptr::null_mut();
                // SAFETY: `env` is the env of this call, on its own thread.
                unsafe { napi::sys::napi_get_and_clear_last_exception(env, &mut pending) };
                format!("{kind}").to_lowercase()
            }
        },
    })
}

fn from_partial(p: PartialLimits) -> BindingLimits {
    BindingLimits {
        session_ttl_ms: p.session_ttl_ms,
        max_tool_calls: p.max_tool_calls,
        max_stdout_bytes: p.max_stdout_bytes,
        max_stdout_events: p.max_stdout_events,
        max_tool_result_bytes: p.max_tool_result_bytes,
        tool_timeout_ms: p.tool_timeout_ms,
        heartbeat_interval_ms: p.heartbeat_interval_ms,
        deadline_ms: p.deadline_ms,
        per_tool_deadline_ms: p.per_tool_deadline_ms,
        cancel_on_first_error: p.cancel_on_first_error,
        timeout: p.timeout,
        memory_limit: p.memory_limit,
    }
}

/// A caller's `limits` object, checked by the core's rule (`PartialLimits::from_inputs`):
/// the limits it gives, or an `INVALID_LIMIT` TypeError naming the first bad one.
#[napi]
pub fn check_limits(env: Env, limits: Object) -> napi::Result<Either<BindingLimits, BindingError>> {
    let mut inputs = Vec::new();
    for (key, _) in LIMIT_KEYS {
        let Some(value) = limits.get::<Unknown>(key)? else { continue };
        let kind = value.get_type()?;
        let input = match kind {
            ValueType::Undefined => continue,
            ValueType::Number => LimitInput::Number(unsafe { value.cast::<f64>() }?),
            ValueType::Boolean => LimitInput::Bool(unsafe { value.cast::<bool>() }?),
            _ => LimitInput::Other(shown(env.raw(), value, kind)?),
        };
        inputs.push((key, input));
    }
    Ok(match PartialLimits::from_inputs(inputs) {
        Ok(partial) => Either::A(from_partial(partial)),
        Err(e) => Either::B(BindingError::type_error("INVALID_LIMIT", e.to_string())),
    })
}

impl BindingSessionConfig {
    pub fn into_core(self) -> Result<SessionConfig, BindingError> {
        let l = self.limits.unwrap_or_default();
        let partial = partial(l);
        let limits = SessionLimits::resolve(&partial)
            .map_err(|e| BindingError::type_error("INVALID_LIMIT", e.to_string()))?;
        let memory = limits
            .memory_limit_bytes
            .map(|b| b as usize)
            .unwrap_or_else(|| bytes(self.memory_limit, DEFAULT_MEMORY_LIMIT));
        Ok(SessionConfig {
            session_id: self.session_id,
            limits,
            sandbox: SandboxOptions {
                memory_limit_bytes: memory,
                max_result_bytes: bytes(self.max_result_bytes, DEFAULT_MAX_RESULT_BYTES),
                max_depth: self.max_depth.unwrap_or(DEFAULT_MAX_DEPTH),
                globals_json: self.globals_json,
            },
            external_tools: external_tools(self.external_tools),
            allowed_tools: match self.allowed_tools {
                None => AllowedTools::all(),
                Some(patterns) => AllowedTools::matching(&patterns)
                    .map_err(|message| BindingError::type_error("INVALID_TOOL_PATTERN", message))?,
            },
            encryption: None,
            owner_key: 0,
            owner: match self.owner_user_id {
                Some(user_id) => Principal::User { user_id, tenant_id: None },
                None => Principal::Anonymous,
            },
            journal: None,
            sidecar: self.sidecar.map(|s| s.config(self.security_level.as_deref())),
        })
    }
}
