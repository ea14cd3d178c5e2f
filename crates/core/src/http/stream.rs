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
//!
//! A session another broker runs (shared state) is read the same way from its shared log
//! (`cluster::EventFeed`), whose lines are sent as stored (an encrypted session's are
//! already envelopes).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use tokio::sync::{Notify, mpsc};

use super::filter::EventFilter;
use super::response::{Body, set_headers};
use super::rules::{SESSION_ID_HEADER, STREAM_HEADERS};
use crate::cluster::EventFeed;
use crate::protocol::{EventType, StreamEvent};
use crate::session::{Session, SessionEncryption};

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

/// Where a stream's events come from.
pub enum Source {
    /// A session of this process: its history.
    Local(Arc<Session>),
    /// A session known from the shared state: its log, read through `feed`.
    Shared { session_id: String, feed: Box<dyn EventFeed> },
}

impl Source {
    fn session_id(&self) -> &str {
        match self {
            Source::Local(session) => session.id(),
            Source::Shared { session_id, .. } => session_id,
        }
    }
}

pub fn ndjson_response(source: Source, options: StreamOptions) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let session_id = source.session_id().to_string();
    match source {
        Source::Local(session) => tokio::spawn(write_events(session, options, tx)),
        Source::Shared { feed, .. } => tokio::spawn(write_feed(feed, options, tx)),
    };
    let body = StreamBody::new(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    }));
    let mut response = Response::new(BodyExt::boxed(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    set_headers(headers, STREAM_HEADERS);
    set_headers(headers, [(SESSION_ID_HEADER, session_id)]);
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

/// Where a stream is after sending a page.
enum Sent {
    /// Sent through `final`: the stream is done.
    Final,
    /// The client went away (or the session's key is spent).
    Gone,
    More,
}

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
    async fn push(
        &mut self,
        encryption: Option<(&str, &SessionEncryption)>,
        event: &Arc<StreamEvent>,
    ) -> Result<bool, Gone> {
        match encryption {
            // session_init stays plaintext: it carries what the client needs to decrypt.
            Some((session_id, encryption)) if event.kind() != EventType::SessionInit => {
                match encryption.encryptor.envelope(session_id, event.seq(), event.json()) {
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

    /// Sends the events of `page` that pass `filters`, up to `final`, moving `cursor` past
    /// each event read.
    async fn send_page(
        &mut self,
        filters: &Arc<Vec<EventFilter>>,
        encryption: Option<(&str, &SessionEncryption)>,
        page: Vec<Arc<StreamEvent>>,
        cursor: &mut u64,
    ) -> Sent {
        let page = Arc::new(page);
        let keep = if filters.is_empty() { None } else { Some(kept(filters, &page).await) };
        let mut last = false;
        for (i, event) in page.iter().enumerate() {
            *cursor = event.seq();
            let kept = keep.as_ref().is_none_or(|keep| keep[i]);
            if kept && !matches!(self.push(encryption, event).await, Ok(true)) {
                return Sent::Gone;
            }
            if event.kind() == EventType::Final {
                last = true;
                break;
            }
        }
        match (self.flush().await, last) {
            (Err(Gone), _) => Sent::Gone,
            (Ok(()), true) => Sent::Final,
            (Ok(()), false) => Sent::More,
        }
    }
}

async fn write_events(session: Arc<Session>, mut options: StreamOptions, tx: mpsc::Sender<Bytes>) {
    let wake = Arc::new(Notify::new());
    let subscription = session.watch(wake.clone());
    let encryption = session.encryption().map(|e| (session.id(), &**e));
    let filters = Arc::new(std::mem::take(&mut options.filters));
    let mut cursor = options.after_seq;
    let mut finished = false;
    let mut out = Outbox { tx, chunk: String::new() };
    loop {
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
        let short = page.len() < PAGE_EVENTS;
        match out.send_page(&filters, encryption, page, &mut cursor).await {
            Sent::Final => {
                finished = true;
                break;
            }
            Sent::Gone => break,
            Sent::More => {}
        }
        // A short page was all there was when it was read; anything newer has woken `notified`.
        if short {
            tokio::select! {
                _ = &mut notified => {}
                _ = out.tx.closed() => break,
            }
        }
    }
    session.unwatch(subscription);
    end(finished, options);
}

fn end(finished: bool, mut options: StreamOptions) {
    if let (false, Some(on_disconnect)) = (finished, options.on_disconnect.take()) {
        on_disconnect();
    }
    if let Some(on_end) = options.on_end.take() {
        on_end();
    }
}

/// A shared session's stream: the same writer over its shared log (an empty page means the
/// log has nothing more to give: it ended, or the session is gone).
async fn write_feed(mut feed: Box<dyn EventFeed>, mut options: StreamOptions, tx: mpsc::Sender<Bytes>) {
    let filters = Arc::new(std::mem::take(&mut options.filters));
    let mut cursor = options.after_seq;
    let mut finished = false;
    let mut out = Outbox { tx, chunk: String::new() };
    loop {
        let page = tokio::select! {
            page = feed.next(cursor, PAGE_EVENTS) => page,
            _ = out.tx.closed() => break,
        };
        if page.is_empty() {
            finished = true;
            break;
        }
        match out.send_page(&filters, None, page, &mut cursor).await {
            Sent::Final => {
                finished = true;
                break;
            }
            Sent::Gone => break,
            Sent::More => {}
        }
    }
    end(finished, options);
}
