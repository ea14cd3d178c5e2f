//! A session's events: `emit_*` assigns each its `seq` under the session's lock and tells
//! subscribers at once; the history answers replays, and with a journal (shared state) only
//! what it has stored is shown to streams.

use std::sync::Arc;

use tokio::sync::Notify;

use super::session::{Inner, Session, Subscriber};
use crate::engine::ConsoleLevel;
use crate::protocol::event::payload;
use crate::protocol::{EventType, StreamEvent};

impl Session {
    pub fn events(&self) -> Vec<Arc<StreamEvent>> {
        self.lock().history.clone()
    }

    /// Events with `seq > after` (history is dense, so this is a slice).
    pub fn events_after(&self, after: u64) -> Vec<Arc<StreamEvent>> {
        let inner = self.lock();
        let start = (after as usize).min(inner.history.len());
        inner.history[start..].to_vec()
    }

    /// How many events of the history streams may show: all of them, or with a journal
    /// only those it has stored.
    pub(super) fn visible_len(&self, inner: &Inner) -> usize {
        match &self.journal {
            Some(_) if !inner.detached => inner.durable as usize,
            _ => inner.history.len(),
        }
    }

    /// At most `max` events with `seq > after` that streams may show: a reader that pages
    /// through the history never copies more of it than it can send.
    pub fn events_page(&self, after: u64, max: usize) -> Vec<Arc<StreamEvent>> {
        let inner = self.lock();
        let visible = self.visible_len(&inner);
        let start = (after as usize).min(visible);
        let end = start.saturating_add(max).min(visible);
        inner.history[start..end].to_vec()
    }

    /// The seq of the `final` event once streams may show it (nothing follows it).
    pub fn final_seq(&self) -> Option<u64> {
        let inner = self.lock();
        inner.final_seq.filter(|seq| *seq as usize <= self.visible_len(&inner))
    }

    /// Wakes `notify` whenever more events become visible to streams (until `unwatch`).
    pub fn watch(&self, notify: Arc<Notify>) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_subscriber;
        inner.next_subscriber += 1;
        inner.watchers.push((id, notify));
        id
    }

    pub fn unwatch(&self, id: u64) {
        self.lock().watchers.retain(|(wid, _)| *wid != id);
    }

    /// The journal has stored every event up to `seq`: streams may show them.
    pub fn mark_durable(&self, seq: u64) {
        let mut inner = self.lock();
        let seq = seq.min(inner.seq);
        if seq > inner.durable {
            inner.durable = seq;
            wake(&inner.watchers);
        }
    }

    /// The last seq the journal has stored (every seq without a journal).
    pub fn durable_seq(&self) -> u64 {
        let inner = self.lock();
        self.visible_len(&inner) as u64
    }

    /// The journal stops storing this session (it was taken over, or never registered):
    /// from now on its streams show its own history, as without a journal.
    pub fn detach(&self) {
        let mut inner = self.lock();
        if !inner.detached {
            inner.detached = true;
            wake(&inner.watchers);
        }
    }

    pub fn is_detached(&self) -> bool {
        self.lock().detached
    }

    /// Live subscription; no replay (use `events_after` for that).
    pub fn subscribe(&self, subscriber: Subscriber) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_subscriber;
        inner.next_subscriber += 1;
        inner.subscribers.push((id, subscriber));
        id
    }

    /// Subscribes and returns the history after `after` atomically: nothing is missed
    /// or delivered twice between replay and live events.
    pub fn subscribe_from(&self, after: u64, subscriber: Subscriber) -> (u64, Vec<Arc<StreamEvent>>) {
        let mut inner = self.lock();
        let id = inner.next_subscriber;
        inner.next_subscriber += 1;
        inner.subscribers.push((id, subscriber));
        let start = (after as usize).min(inner.history.len());
        (id, inner.history[start..].to_vec())
    }

    pub fn unsubscribe(&self, id: u64) {
        self.lock().subscribers.retain(|(sid, _)| *sid != id);
    }

    pub(super) fn emit_locked(
        &self,
        inner: &mut Inner,
        kind: EventType,
        payload_json: &str,
    ) -> Arc<StreamEvent> {
        inner.seq += 1;
        let event = Arc::new(StreamEvent::new(&self.id, inner.seq, kind, payload_json));
        inner.history.push(event.clone());
        for (_, subscriber) in &inner.subscribers {
            subscriber(&event);
        }
        match &self.journal {
            // Streams see the event once the journal has stored it (`mark_durable`).
            Some(journal) if !inner.detached => journal.append(&self.arc(), &event),
            _ => wake(&inner.watchers),
        }
        event
    }

    /// Emits an event unless the session is already terminal or disposed.
    pub(super) fn emit_active(&self, kind: EventType, payload_json: &str) -> Option<Arc<StreamEvent>> {
        let mut inner = self.lock();
        if inner.state.is_terminal() || inner.disposed {
            return None;
        }
        Some(self.emit_locked(&mut inner, kind, payload_json))
    }

    /// `emitToolProgress` (public in the original, and called twice per tool call).
    pub fn emit_tool_progress(
        &self,
        call_id: &str,
        phase: &str,
        elapsed_ms: f64,
        bytes_received: Option<f64>,
        total_bytes: Option<f64>,
    ) {
        let p = payload::tool_progress(call_id, phase, elapsed_ms, bytes_received, total_bytes);
        self.emit_active(EventType::ToolProgress, &p);
    }

    /// `emitPartialResult(path, data?, error?, hasNext)`; `error` also lands in `final.errors`.
    pub fn emit_partial_result(
        &self,
        path_json: &str,
        data_json: Option<&str>,
        error_json: Option<&str>,
        has_next: bool,
    ) {
        let p = payload::partial_result(path_json, data_json, error_json, has_next);
        let mut inner = self.lock();
        if inner.state.is_terminal() || inner.disposed {
            return;
        }
        if let Some(e) = error_json {
            inner.partial_errors.push(e.to_string());
        }
        self.emit_locked(&mut inner, EventType::PartialResult, &p);
    }

    pub fn emit_log(&self, level: &str, message: &str, data_json: Option<&str>) {
        self.emit_active(EventType::Log, &payload::log(level, message, data_json));
    }

    /// Console output from the sandbox: `stdout` chunks for `console.log`, `log` events for
    /// the levelled methods, all counted against `maxStdoutBytes`.
    pub fn emit_console(&self, level: ConsoleLevel, text: &str) {
        match level {
            ConsoleLevel::Log => self.emit_output(None, &format!("{text}\n")),
            _ => self.emit_output(Some(level.as_str()), text),
        }
    }

    /// `events.emitStdout(chunk)`: a raw stdout chunk, counted like console output.
    pub fn emit_stdout(&self, chunk: &str) {
        self.emit_output(None, chunk);
    }

    /// Emits output as `stdout` (`level` = None) or `log`. Past `maxStdoutBytes` the text is
    /// truncated once, and past `maxStdoutEvents` calls nothing more is emitted; either way a
    /// warning `log` event says so once, and later output is dropped.
    pub(super) fn emit_output(&self, level: Option<&str>, text: &str) {
        let mut inner = self.lock();
        if inner.state.is_terminal() || inner.disposed || inner.stdout_truncated {
            return;
        }
        if inner.stdout_events >= self.limits.max_stdout_events {
            return self.drop_further_output(&mut inner, "maxStdoutEvents", self.limits.max_stdout_events);
        }
        let limit = self.limits.max_stdout_bytes;
        let remaining = limit.saturating_sub(inner.stdout_bytes) as usize;
        let (chunk, truncated) =
            if text.len() > remaining { (truncate_utf8(text, remaining), true) } else { (text, false) };
        inner.stdout_bytes += chunk.len() as u64;
        if !chunk.is_empty() {
            inner.stdout_events += 1;
            match level {
                None => self.emit_locked(&mut inner, EventType::Stdout, &payload::stdout(chunk)),
                Some(level) => {
                    self.emit_locked(&mut inner, EventType::Log, &payload::log(level, chunk, None))
                }
            };
        }
        if truncated {
            self.drop_further_output(&mut inner, "maxStdoutBytes", limit);
        }
    }

    fn drop_further_output(&self, inner: &mut Inner, limit_name: &str, limit: u64) {
        inner.stdout_truncated = true;
        let msg = format!("Console output limit reached ({limit_name}: {limit}); further output was dropped");
        self.emit_locked(inner, EventType::Log, &payload::log("warn", &msg, None));
    }
}

fn wake(watchers: &[(u64, Arc<Notify>)]) {
    for (_, notify) in watchers {
        notify.notify_one();
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
