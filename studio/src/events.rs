//! Server-Sent Events: a session's hub fans each event out to every open
//! stream of that session.

use crate::refusal::Refusal;
use hyper::body::Bytes;
use serde_json::Value;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc::{self, Receiver, Sender};
use tokio::time::{Instant, Interval};

/// Events a slow stream may fall behind by before it is dropped; a page
/// that cannot keep up reconnects and reads STATE afresh.
const BACKLOG: usize = 1024;

/// Streams one session may have open at once. A page opens one; a stream
/// whose page has gone is noticed at once (the connection reads EOF), so
/// only a client that holds streams open on purpose meets this.
pub const MAX_STREAMS: usize = 4;

/// A comment line this often keeps proxies and the browser from timing out.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The subscribers of one session.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Subscribers>,
}

#[derive(Default)]
struct Subscribers {
    streams: Vec<Sender<String>>,
    closed: bool,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `event` with JSON `data` to every stream; streams that are
    /// gone or full are dropped.
    pub fn send(&self, event: &str, data: &Value) {
        let text = format!("event: {event}\ndata: {data}\n\n");
        self.lock().streams.retain(|tx| tx.try_send(text.clone()).is_ok());
    }

    /// A new stream: 404 once the session is closed, 429 when it has
    /// [`MAX_STREAMS`] open.
    pub fn subscribe(&self) -> Result<EventStream, Refusal> {
        let mut subscribers = self.lock();
        if subscribers.closed {
            return Err(Refusal::new(404, "the session has closed"));
        }
        subscribers.streams.retain(|tx| !tx.is_closed());
        if subscribers.streams.len() >= MAX_STREAMS {
            return Err(Refusal::new(429, format!("this session already has {MAX_STREAMS} event streams open")).retry_after(5));
        }
        let (tx, rx) = mpsc::channel(BACKLOG);
        subscribers.streams.push(tx);
        Ok(EventStream::new(rx))
    }

    /// Whether any stream is open.
    pub fn has_streams(&self) -> bool {
        self.lock().streams.iter().any(|tx| !tx.is_closed())
    }

    /// Ends every stream; later subscriptions get none.
    pub fn close(&self) {
        let mut subscribers = self.lock();
        subscribers.closed = true;
        subscribers.streams.clear();
    }
}

/// The body of an event stream: a greeting comment, then each event as it
/// comes, with a keep-alive comment when none came for [`KEEPALIVE`]. It
/// ends when the session closes or drops the stream; when the page goes,
/// the connection drops it.
pub struct EventStream {
    events: Receiver<String>,
    /// Made on the first poll, which runs on the server's runtime; None
    /// until the greeting is sent.
    keepalive: Option<Interval>,
}

impl EventStream {
    fn new(events: Receiver<String>) -> EventStream {
        EventStream { events, keepalive: None }
    }

    /// The next piece of the stream; None at its end.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let Some(keepalive) = &mut self.keepalive else {
            self.keepalive = Some(tokio::time::interval_at(Instant::now() + KEEPALIVE, KEEPALIVE));
            return Poll::Ready(Some(Bytes::from_static(b": editone studio\n\n")));
        };
        if let Poll::Ready(event) = self.events.poll_recv(cx) {
            keepalive.reset();
            return Poll::Ready(event.map(Bytes::from));
        }
        match keepalive.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Bytes::from_static(b": keepalive\n\n"))),
            Poll::Pending => Poll::Pending,
        }
    }
}
