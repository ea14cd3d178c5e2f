//! One WebSocket connection's I/O, the same on both ends. A writer task sends what is
//! queued on the connection's outbox, coalescing whatever is queued into one flush (one
//! syscall for a tool call's several events), and pings the peer every heartbeat. The
//! reader hands each text frame to the connection; a frame it refuses, a binary frame, an
//! oversized frame, or silence past two heartbeats ends the connection, and only it.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Frames waiting to be written to one connection.
pub(crate) type Outbox = mpsc::UnboundedSender<Message>;

/// Default cap on one frame, each way (`maxMessageBytes`). Tool results and return values
/// are capped at 5 MiB by default; the rest is room for larger configured caps.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The most a capped value (tool arguments and results, output, the returned value) may
/// take in a frame of `max_message_bytes`: the rest is room for the envelope, the ids and
/// the tool name (64 KiB, or an eighth of a small frame).
pub(crate) fn payload_cap(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_sub((64 << 10).min(max_message_bytes / 8)).max(1)
}

pub(crate) fn config(max_message_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

pub(crate) fn close_frame(code: CloseCode, reason: &str) -> Message {
    // A close reason must fit in a control frame (125 bytes with the code).
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame { code, reason: reason[..end].to_string().into() }))
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub reason: String,
}

/// A frame the connection refuses: it is closed with `code`.
pub(crate) struct Refusal {
    pub code: CloseCode,
    pub reason: String,
}

impl Refusal {
    pub fn malformed(reason: String) -> Refusal {
        Refusal { code: CloseCode::Invalid, reason }
    }
}

/// Runs the connection until it ends; `on_text` gets every text frame, in order. The peer
/// is pinged every `heartbeat`; a peer silent for `silence` (pongs count) is dropped.
pub(crate) async fn drive<S>(
    ws: WebSocketStream<S>,
    outbox: Outbox,
    queued: mpsc::UnboundedReceiver<Message>,
    heartbeat: Duration,
    silence: Duration,
    mut on_text: impl FnMut(&str) -> Result<(), Refusal>,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, mut stream) = ws.split();
    let writer = tokio::spawn(write_loop(sink, queued, heartbeat));
    let silence = (!silence.is_zero()).then_some(silence);
    let ended = loop {
        let next = match silence {
            None => stream.next().await,
            Some(limit) => match tokio::time::timeout(limit, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let reason = format!("nothing heard from the peer for {} ms", limit.as_millis());
                    let _ = outbox.send(close_frame(CloseCode::Away, &reason));
                    break reason;
                }
            },
        };
        match next {
            None => break "connection closed".to_string(),
            Some(Ok(Message::Text(text))) => {
                if let Err(refusal) = on_text(text.as_str()) {
                    let _ = outbox.send(close_frame(refusal.code, &refusal.reason));
                    break refusal.reason;
                }
            }
            Some(Ok(Message::Binary(_))) => {
                let reason = "binary frames are not part of the runtime protocol".to_string();
                let _ = outbox.send(close_frame(CloseCode::Unsupported, &reason));
                break reason;
            }
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    Some(frame) if !frame.reason.is_empty() => {
                        format!("closed by the peer ({}: {})", u16::from(frame.code), frame.reason)
                    }
                    Some(frame) => format!("closed by the peer ({})", u16::from(frame.code)),
                    None => "closed by the peer".to_string(),
                };
            }
            Some(Ok(_)) => {}
            Some(Err(WsError::Capacity(e))) => {
                let reason = format!("frame too large ({e})");
                let _ = outbox.send(close_frame(CloseCode::Size, &reason));
                break reason;
            }
            Some(Err(WsError::Utf8(_))) => {
                let reason = "text frame is not valid UTF-8".to_string();
                let _ = outbox.send(close_frame(CloseCode::Invalid, &reason));
                break reason;
            }
            Some(Err(WsError::Protocol(e))) => {
                let reason = format!("WebSocket protocol error ({e})");
                let _ = outbox.send(close_frame(CloseCode::Protocol, &reason));
                break reason;
            }
            Some(Err(e)) => break e.to_string(),
        }
    };
    // The writer sends the close frame queued above (or this one) and stops; a peer that
    // no longer reads cannot hold it for long.
    let _ = outbox.send(Message::Close(None));
    let abort = writer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(1), writer).await.is_err() {
        abort.abort();
    }
    Ended { reason: ended }
}

async fn write_loop<S>(
    mut sink: futures::stream::SplitSink<WebSocketStream<S>, Message>,
    mut queued: mpsc::UnboundedReceiver<Message>,
    heartbeat: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let period = if heartbeat.is_zero() { Duration::from_secs(3600 * 24) } else { heartbeat };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        let first = tokio::select! {
            message = queued.recv() => match message {
                Some(message) => message,
                None => break,
            },
            _ = ticker.tick() => Message::Ping(Default::default()),
        };
        let mut closing = matches!(first, Message::Close(_));
        if sink.feed(first).await.is_err() {
            return;
        }
        while !closing {
            let Ok(next) = queued.try_recv() else { break };
            closing = matches!(next, Message::Close(_));
            if sink.feed(next).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() || closing {
            return;
        }
    }
    let _ = sink.close().await;
}
