//! Commands between brokers. Each broker subscribes to its inbox channel; a route that
//! gets a cancel, `DELETE` or tool result for a session another broker runs publishes the
//! command there (`PUBLISH` says whether anyone listens) and waits for the reply on its own
//! inbox. Messages are JSON:
//!
//! - `{"op": "cancel" | "delete" | "toolResult", "id", "replyTo", "session", "reason"?,
//!   "callId"?, "result"?, "error"?: {"code", "message"}}`
//! - `{"op": "reply", "id", "status": "done" | "invalid" | "notFound", "message"?}`

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::RedisCluster;
use crate::cluster::{Command, CommandReply};
use crate::protocol::ErrorInfo;
use crate::session::SessionManager;
use crate::tools::ToolReply;

#[derive(Default)]
pub struct Inbox {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<CommandReply>>>,
}

/// Forgets a waiting command however its wait ends.
struct Waiting<'a>(&'a Inbox, u64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.1);
    }
}

/// Runs `command` on a session of this broker.
pub fn run_here(manager: &SessionManager, id: &str, command: Command) -> CommandReply {
    let Some(session) = manager.get(id) else { return CommandReply::NotFound };
    match command {
        Command::Cancel { reason } => session.cancel(reason.as_deref()),
        Command::Delete => manager.terminate_session(&session, None),
        Command::ToolResult { call_id, reply } => {
            if let Err(e) = session.submit_tool_result(&call_id, reply) {
                return CommandReply::InvalidState(e.to_string());
            }
        }
    }
    CommandReply::Done
}

fn request(command: &Command, id: u64, reply_to: &str, session: &str) -> String {
    let mut message = json!({ "id": id, "replyTo": reply_to, "session": session });
    match command {
        Command::Cancel { reason } => {
            message["op"] = json!("cancel");
            if let Some(reason) = reason {
                message["reason"] = json!(reason);
            }
        }
        Command::Delete => message["op"] = json!("delete"),
        Command::ToolResult { call_id, reply } => {
            message["op"] = json!("toolResult");
            message["callId"] = json!(call_id);
            match reply {
                ToolReply::Ok(Some(result)) => {
                    message["result"] = serde_json::from_str(result).unwrap_or(Value::Null);
                }
                ToolReply::Ok(None) => {}
                ToolReply::Err(error) => {
                    message["error"] = json!({ "code": error.code, "message": error.message })
                }
            }
        }
    }
    message.to_string()
}

fn command_of(message: &Value) -> Option<Command> {
    let text = |key: &str| message.get(key).and_then(Value::as_str).map(str::to_string);
    Some(match message.get("op")?.as_str()? {
        "cancel" => Command::Cancel { reason: text("reason") },
        "delete" => Command::Delete,
        "toolResult" => Command::ToolResult {
            call_id: text("callId")?,
            reply: match message.get("error") {
                Some(error) => ToolReply::Err(ErrorInfo::new(
                    error.get("code").and_then(Value::as_str).unwrap_or("TOOL_ERROR"),
                    error.get("message").and_then(Value::as_str).unwrap_or_default(),
                )),
                None => ToolReply::Ok(message.get("result").map(Value::to_string)),
            },
        },
        _ => return None,
    })
}

fn reply_of(message: &Value) -> CommandReply {
    let text = message.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
    match message.get("status").and_then(Value::as_str) {
        Some("done") => CommandReply::Done,
        Some("invalid") => CommandReply::InvalidState(text),
        _ => CommandReply::NotFound,
    }
}

impl Inbox {
    /// Publishes `command` to `broker` and waits for its reply (`NotFound` when nobody
    /// listens on its inbox, `Unavailable` when it does not answer in time).
    pub async fn send(
        &self,
        cluster: &RedisCluster,
        broker: &str,
        session: &str,
        command: &Command,
    ) -> CommandReply {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
        let _waiting = Waiting(self, id);
        let message = request(command, id, &cluster.keys.inbox(&cluster.broker_id), session);
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(cluster.keys.inbox(broker)).arg(message);
        match cluster.link.query::<i64>(&publish).await {
            Ok(0) => return CommandReply::NotFound,
            Ok(_) => {}
            Err(e) => return CommandReply::Unavailable(format!("Redis is unavailable: {e}")),
        }
        match tokio::time::timeout(cluster.settings.command_timeout, rx).await {
            Ok(Ok(reply)) => reply,
            _ => CommandReply::Unavailable(format!("The broker running session {session} did not answer")),
        }
    }

    fn settle(&self, id: u64, reply: CommandReply) {
        if let Some(tx) = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
            let _ = tx.send(reply);
        }
    }
}

/// Serves the broker's inbox: commands for its sessions, and replies to its own commands.
pub async fn serve(cluster: Weak<RedisCluster>, mut messages: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(payload) = messages.recv().await {
        let Some(cluster) = cluster.upgrade() else { return };
        let Ok(message) = serde_json::from_slice::<Value>(&payload) else { continue };
        let Some(id) = message.get("id").and_then(Value::as_u64) else { continue };
        if message.get("op").and_then(Value::as_str) == Some("reply") {
            cluster.inbox.settle(id, reply_of(&message));
            continue;
        }
        let (Some(reply_to), Some(session)) =
            (message.get("replyTo").and_then(Value::as_str), message.get("session").and_then(Value::as_str))
        else {
            continue;
        };
        let reply = match command_of(&message) {
            Some(command) => run_here(&cluster.manager, session, command),
            None => CommandReply::NotFound,
        };
        let (status, text) = match reply {
            CommandReply::Done => ("done", String::new()),
            CommandReply::InvalidState(message) => ("invalid", message),
            CommandReply::NotFound | CommandReply::Unavailable(_) => ("notFound", String::new()),
        };
        let answer = json!({ "op": "reply", "id": id, "status": status, "message": text }).to_string();
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(reply_to).arg(answer);
        let cluster: Arc<RedisCluster> = cluster;
        crate::runtime::service().spawn(async move {
            let _ = cluster.link.query::<i64>(&publish).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_survive_the_wire() {
        let reply = ToolReply::Ok(Some(r#"{"a":[1,2]}"#.into()));
        let text = request(&Command::ToolResult { call_id: "c_1".into(), reply }, 7, "inbox", "s_1");
        let message: Value = serde_json::from_str(&text).unwrap();
        let Some(Command::ToolResult { call_id, reply: ToolReply::Ok(Some(result)) }) = command_of(&message)
        else {
            panic!("not a tool result: {text}")
        };
        assert_eq!((call_id.as_str(), result.as_str()), ("c_1", r#"{"a":[1,2]}"#));
        let failed = ToolReply::Err(ErrorInfo::new("NOPE", "no"));
        let text = request(&Command::ToolResult { call_id: "c_2".into(), reply: failed }, 8, "inbox", "s_1");
        let message: Value = serde_json::from_str(&text).unwrap();
        assert!(
            matches!(command_of(&message), Some(Command::ToolResult { reply: ToolReply::Err(e), .. }) if e.code == "NOPE")
        );
        let text = request(&Command::Cancel { reason: Some("why".into()) }, 9, "inbox", "s_1");
        let message: Value = serde_json::from_str(&text).unwrap();
        assert!(matches!(command_of(&message), Some(Command::Cancel { reason: Some(r) }) if r == "why"));
        // Undefined stays undefined (no `result` key).
        let text =
            request(&Command::ToolResult { call_id: "c_3".into(), reply: ToolReply::Ok(None) }, 1, "i", "s");
        let message: Value = serde_json::from_str(&text).unwrap();
        assert!(matches!(command_of(&message), Some(Command::ToolResult { reply: ToolReply::Ok(None), .. })));
    }
}
