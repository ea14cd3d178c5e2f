//! The tool calls a session's script makes: each is counted and checked against the
//! session's limits and `allowedTools`, announced (`tool_call`, `tool_progress`), sent to the
//! tool host or kept for the client (`externalTools`), bounded by `perToolDeadlineMs`, and
//! closed with `tool_result_applied` however it ends.

use std::time::{Duration, Instant};

use super::allowed_tools::AllowedTools;
use super::session::{Session, SubmitError, next_key};
use super::state::SessionState;
use crate::engine::timer;
use crate::engine::{ConsoleLevel, PendingToolCall, SandboxBridge, ToolCallInfo};
use crate::protocol::event::payload;
use crate::protocol::ids::generate_call_id;
use crate::protocol::{ErrorCode, ErrorInfo, EventType};
use crate::sidecar;
use crate::tools::{ToolCall, ToolReply, reply_channel};

impl Session {
    /// Call ids of external tool calls waiting for a submitted result.
    pub fn waiting_call_ids(&self) -> Vec<String> {
        self.lock().external_waiting.iter().map(|(id, _)| id.clone()).collect()
    }

    /// Delivers a client's result for an external tool call (`submitToolResult`).
    pub fn submit_tool_result(&self, call_id: &str, reply: ToolReply) -> Result<(), SubmitError> {
        let mut inner = self.lock();
        if inner.state != SessionState::WaitingForTool {
            return Err(SubmitError::WrongState(inner.state));
        }
        let Some(index) = inner.external_waiting.iter().position(|(id, _)| id == call_id) else {
            return match inner.external_waiting.first() {
                None => Err(SubmitError::NoPendingCall),
                Some((expected, _)) => {
                    Err(SubmitError::CallIdMismatch { expected: expected.clone(), got: call_id.to_string() })
                }
            };
        };
        let (_, sender) = inner.external_waiting.remove(index);
        if inner.external_waiting.is_empty() {
            inner.state = SessionState::Running;
        }
        drop(inner);
        // Already answered only if its deadline won the race; the submission is then moot.
        let _ = sender.send(reply);
        Ok(())
    }
}

fn too_large(code: &str, what: &str, limit: u64) -> ErrorInfo {
    ErrorInfo::new(code, format!("{what} exceeds maximum size ({limit} bytes)"))
}

impl SandboxBridge for Session {
    fn begin_tool_call(&self, name: &str, args_json: String) -> Result<PendingToolCall, ErrorInfo> {
        let mut inner = self.lock();
        if inner.state.is_terminal()
            || inner.disposed
            || inner.tool_failed && self.limits.cancel_on_first_error
        {
            return Err(ErrorInfo::new(ErrorCode::SESSION_CANCELLED, "Session cancelled"));
        }
        let max = self.limits.max_tool_calls;
        if inner.tool_call_count >= max {
            return Err(ErrorInfo::new(
                ErrorCode::MAX_TOOL_CALLS_EXCEEDED,
                format!(
                    "Maximum tool call limit exceeded ({max}). This limit prevents runaway script execution."
                ),
            ));
        }
        if args_json.len() as u64 > self.limits.max_tool_result_bytes {
            return Err(too_large(
                ErrorCode::TOOL_ARGS_TOO_LARGE,
                "Tool request",
                self.limits.max_tool_result_bytes,
            ));
        }
        let deadline = self.limits.deadline_ms;
        if deadline > 0 && self.created.elapsed() >= Duration::from_millis(deadline) {
            return Err(ErrorInfo::new(
                ErrorCode::DEADLINE_EXCEEDED,
                "Deadline exceeded before tool execution",
            ));
        }
        // References in the arguments reach the tool as their data (the `tool_call` event
        // shows them resolved too, as the original's tool handler receives them).
        let args_json = match self.sidecar.as_ref().map(|s| sidecar::resolve_arguments(s, &args_json)) {
            Some(Ok(Some(resolved))) => resolved,
            Some(Err(error)) => return Err(error),
            Some(Ok(None)) | None => args_json,
        };

        let started = Instant::now();
        let call_id = generate_call_id();
        let call_key = next_key();
        inner.tool_call_count += 1;
        self.emit_locked(&mut inner, EventType::ToolCall, &payload::tool_call(&call_id, name, &args_json));
        let connecting = payload::tool_progress(&call_id, "connecting", 0.0, None, None);
        self.emit_locked(&mut inner, EventType::ToolProgress, &connecting);
        let processing =
            payload::tool_progress(&call_id, "processing", started.elapsed().as_millis() as f64, None, None);
        self.emit_locked(&mut inner, EventType::ToolProgress, &processing);
        inner.pending_calls.insert(call_key);
        drop(inner);

        let (tx, rx) = reply_channel();
        if !self.allowed_tools.allows(name) {
            // Fails as a tool would, so the stream and counts look like any failed call.
            let _ = tx.send(ToolReply::Err(AllowedTools::refusal(name)));
        } else if self.external_tools.contains(name) {
            let mut inner = self.lock();
            inner.external_waiting.push((call_id.clone(), tx.clone()));
            if inner.state == SessionState::Running {
                inner.state = SessionState::WaitingForTool;
            }
        } else {
            self.host.call(
                ToolCall {
                    call_key,
                    session_key: self.key,
                    session_id: self.id.clone(),
                    call_id: call_id.clone(),
                    name: name.to_string(),
                    args_json,
                },
                tx.clone(),
            );
        }

        // At `perToolDeadlineMs` the call is abandoned: the handler's signal aborts and the
        // script gets an error it can catch, instead of waiting on a handler that may never
        // answer (the session deadline, if sooner, stops the whole run on its own).
        let reply = match self.limits.per_tool_deadline_ms {
            0 | u64::MAX => rx,
            ms => {
                let host = self.host.clone();
                let deadline = timer::arm(Instant::now() + Duration::from_millis(ms), move || {
                    let error = ErrorInfo::new(
                        ErrorCode::DEADLINE_EXCEEDED,
                        format!("Tool call exceeded perToolDeadlineMs ({ms}ms)"),
                    );
                    // The signal aborts first, so the handler knows before the script does.
                    if !tx.is_answered() {
                        host.abandon(call_key);
                        let _ = tx.send(ToolReply::Err(error));
                    }
                });
                rx.hold(deadline)
            }
        };
        Ok(PendingToolCall {
            info: ToolCallInfo { call_key, call_id, name: name.to_string(), started },
            reply,
        })
    }

    fn finish_tool_call(&self, info: &ToolCallInfo, reply: Option<ToolReply>) -> ToolReply {
        let mut inner = self.lock();
        inner.pending_calls.remove(&info.call_key);
        inner.external_waiting.retain(|(id, _)| *id != info.call_id);
        if inner.external_waiting.is_empty() && inner.state == SessionState::WaitingForTool {
            inner.state = SessionState::Running;
        }
        // A whole-string result over the extraction threshold stays on the host: the script
        // gets its reference string.
        let reply = match (reply, &self.sidecar) {
            (Some(ToolReply::Ok(Some(json))), Some(sidecar)) => {
                Some(ToolReply::Ok(Some(sidecar::lift_result(sidecar, &json).unwrap_or(json))))
            }
            (reply, _) => reply,
        };
        let reply = match reply {
            Some(ToolReply::Ok(Some(json))) if json.len() as u64 > self.limits.max_tool_result_bytes => {
                ToolReply::Err(too_large(
                    ErrorCode::TOOL_RESULT_TOO_LARGE,
                    "Tool response",
                    self.limits.max_tool_result_bytes,
                ))
            }
            Some(reply) => reply,
            None => {
                self.host.abandon(info.call_key);
                ToolReply::Err(ErrorInfo::new(ErrorCode::SESSION_CANCELLED, "Session cancelled"))
            }
        };
        if matches!(reply, ToolReply::Err(_)) {
            inner.tool_failed = true;
        }
        // Emitted for every call, failed or abandoned too, so each tool_call has its pair.
        self.emit_locked(
            &mut inner,
            EventType::ToolResultApplied,
            &payload::tool_result_applied(&info.call_id),
        );
        reply
    }

    fn console(&self, level: ConsoleLevel, text: &str) {
        self.emit_console(level, text);
    }

    fn stdout_chunk(&self, chunk: &str) {
        self.emit_stdout(chunk);
    }
}
