//! NDJSON event streams. A stream is a cursor over the session's history: the session's
//! subscriber only wakes the writer, which then copies whatever is new. Replay and live
//! delivery are one path, so no event is skipped or sent twice.
//!
//! The writer reads the history a page at a time and sends chunks of about `CHUNK_BYTES`,
//! each only once the connection has taken the previous one; a long event line is not
//! copied at all but sent as a view of the history's own (shared) line. A client that stops
//! reading therefore holds a few small chunks (plus hyper's write buffer), never a copy of
//! the history; the engine never waits for it. A stream ends at `final`, also when its cursor
//! starts at or past it. Filters that read event content run on the blocking pool, so a
//! costly filter slows only its own stream, never the threads serving requests.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use tokio::sync::{Notify, mpsc};

use super::filter::EventFilter;
use super::response::Body;
use crate::protocol::{EventType, StreamEvent};
use crate::session::Session;

/// A chunk is sent once it holds this much (or the page is done).
const CHUNK_BYTES: usize = 64 * 1024;
/// Event lines at least this long are sent as views of the history, not copied.
const SHARE_BYTES: usize = 16 * 1024;
/// Events read from the history at a time.
const PAGE_EVENTS: usize = 64;

pub struct StreamOptions {
    /// Events with seq greater than this are sent.
    pub after_seq: u64,
    pub filters: Vec<EventFilter>,
    /// Called once if the client goes away before the stream ended.
    pub on_disconnect: Option<Box<dyn FnOnce() + Send>>,
    /// Called once when the writer is done, whatever the reason.
    pub on_end: Option<Box<dyn FnOnce() + Send>>,
}

pub fn ndjson_response(session: Arc<Session>, options: StreamOptions) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    tokio::spawn(write_events(session.clone(), options, tx));
    let body = StreamBody::new(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    }));
    let mut response = Response::new(BodyExt::boxed(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/x-ndjson"));
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    headers.insert("connection", HeaderValue::from_static("keep-alive"));
    if let Ok(id) = HeaderValue::from_str(session.id()) {
        headers.insert("x-session-id", id);
    }
    response
}

/// Which events of `page` pass every filter. Filters that read content run on the blocking
/// pool; type filters are cheap enough to run here.
async fn kept(filters: &Arc<Vec<EventFilter>>, page: &Arc<Vec<Arc<StreamEvent>>>) -> Vec<bool> {
    let decide = |filters: &[EventFilter], page: &[Arc<StreamEvent>]| -> Vec<bool> {
        page.iter().map(|event| filters.iter().all(|f| f.should_send(event))).collect()
    };
    if !filters.iter().any(EventFilter::reads_content) {
        return decide(filters, page);
    }
    let (filters, events) = (filters.clone(), page.clone());
    // A filter that panicked drops the page's events; `final` still ends the stream.
    tokio::task::spawn_blocking(move || decide(&filters, &events))
        .await
        .unwrap_or_else(|_| vec![false; page.len()])
}

/// An event's line as bytes that share the history's allocation.
struct SharedLine(Arc<StreamEvent>);

impl AsRef<[u8]> for SharedLine {
    fn as_ref(&self) -> &[u8] {
        self.0.json().as_bytes()
    }
}

/// The bytes a stream has yet to send: a chunk being filled, sent with back-pressure.
struct Outbox {
    tx: mpsc::Sender<Bytes>,
    chunk: String,
}

/// The client went away.
struct Gone;

impl Outbox {
    async fn send(&mut self, bytes: Bytes) -> Result<(), Gone> {
        self.tx.send(bytes).await.map_err(|_| Gone)
    }

    /// Sends the chunk so far, if any.
    async fn flush(&mut self) -> Result<(), Gone> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.chunk));
        self.send(chunk).await
    }

    /// Adds `event`'s line, encrypted when the session is. `Ok(false)` when the session's key
    /// is spent (2^30 events): the stream must end rather than ever send an event in the
    /// clear or reuse a nonce.
    async fn push(&mut self, session: &Session, event: &Arc<StreamEvent>) -> Result<bool, Gone> {
        match session.encryption() {
            // session_init stays plaintext: it carries what the client needs to decrypt.
            Some(encryption) if event.kind() != EventType::SessionInit => {
                match encryption.encryptor.envelope(session.id(), event.seq(), event.json()) {
                    Ok(envelope) => self.chunk.push_str(&envelope),
                    Err(_) => return Ok(false),
                }
            }
            _ if event.json().len() >= SHARE_BYTES => {
                self.flush().await?;
                self.send(Bytes::from_owner(SharedLine(event.clone()))).await?;
            }
            _ => self.chunk.push_str(event.json()),
        }
        self.chunk.push('\n');
        if self.chunk.len() >= CHUNK_BYTES {
            self.flush().await?;
        }
        Ok(true)
    }
}

async fn write_events(session: Arc<Session>, mut options: StreamOptions, tx: mpsc::Sender<Bytes>) {
    let wake = Arc::new(Notify::new());
    let waker = wake.clone();
    let subscription = session.subscribe(Arc::new(move |_| waker.notify_one()));
    let filters = Arc::new(std::mem::take(&mut options.filters));
    let mut cursor = options.after_seq;
    let mut finished = false;
    let mut out = Outbox { tx, chunk: String::new() };
    'stream: loop {
        let notified = wake.notified();
        tokio::pin!(notified);
        // Registered before reading, so an event emitted after the read still wakes us.
        notified.as_mut().enable();
        let page = session.events_page(cursor, PAGE_EVENTS);
        if page.is_empty() {
            match session.final_seq() {
                // The cursor is at or past the end of a finished session: nothing will come.
                Some(last) if last <= cursor => {
                    finished = true;
                    break;
                }
                // `final` came after the page was read.
                Some(_) => continue,
                None => {}
            }
            tokio::select! {
                _ = &mut notified => continue,
                _ = out.tx.closed() => break,
            }
        }
        let page = Arc::new(page);
        let keep = if filters.is_empty() { None } else { Some(kept(&filters, &page).await) };
        for (i, event) in page.iter().enumerate() {
            cursor = event.seq();
            let kept = keep.as_ref().is_none_or(|keep| keep[i]);
            if kept && !matches!(out.push(&session, event).await, Ok(true)) {
                break 'stream;
            }
            if event.kind() == EventType::Final {
                finished = true;
                break;
            }
        }
        if out.flush().await.is_err() || finished {
            break;
        }
        // A short page was all there was when it was read; anything newer has woken `notified`.
        if page.len() < PAGE_EVENTS {
            tokio::select! {
                _ = &mut notified => {}
                _ = out.tx.closed() => break,
            }
        }
    }
    session.unsubscribe(subscription);
    if let (false, Some(on_disconnect)) = (finished, options.on_disconnect.take()) {
        on_disconnect();
    }
    if let Some(on_end) = options.on_end.take() {
        on_end();
    }
}
