//! NDJSON event streams. A stream is a cursor over the session's history: the session's
//! subscriber only wakes the writer, which then copies whatever is new. A slow client
//! therefore holds back only its own writer (the engine never waits for it), nothing
//! is buffered per client beyond one chunk, and replay and live delivery are one path,
//! so no event is skipped or sent twice.

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
use crate::protocol::EventType;
use crate::session::Session;

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

async fn write_events(session: Arc<Session>, mut options: StreamOptions, tx: mpsc::Sender<Bytes>) {
    let wake = Arc::new(Notify::new());
    let waker = wake.clone();
    let subscription = session.subscribe(Arc::new(move |_| waker.notify_one()));
    let mut cursor = options.after_seq;
    let mut finished = false;
    loop {
        let notified = wake.notified();
        tokio::pin!(notified);
        // Registered before reading, so an event emitted after the read still wakes us.
        notified.as_mut().enable();
        let mut chunk = String::new();
        let mut failed = false;
        for event in session.events_after(cursor) {
            cursor = event.seq();
            if options.filters.iter().all(|f| f.should_send(&event)) {
                match session.encryption() {
                    // session_init stays plaintext: it carries what the client needs to decrypt.
                    Some(encryption) if event.kind() != EventType::SessionInit => {
                        match encryption.encryptor.envelope(session.id(), event.seq(), event.json()) {
                            Ok(envelope) => chunk.push_str(&envelope),
                            // The key's nonce space is spent (2^30 events): end the stream
                            // rather than ever send an event in the clear or reuse a nonce.
                            Err(_) => {
                                failed = true;
                                break;
                            }
                        }
                    }
                    _ => chunk.push_str(event.json()),
                }
                chunk.push('\n');
            }
            if event.kind() == EventType::Final {
                finished = true;
                break;
            }
        }
        if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
            break;
        }
        if failed {
            break;
        }
        if finished {
            break;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tx.closed() => break,
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
