//! Server-Sent Events: a session's hub fans each event out to every open
//! stream of that session.

use serde_json::Value;
use std::io::Write;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Mutex;
use std::time::Duration;

/// Events a slow stream may fall behind by before it is dropped; a page
/// that cannot keep up reconnects and reads STATE afresh.
const BACKLOG: usize = 1024;

/// A comment line this often keeps proxies and the browser from timing out,
/// and lets a stream notice that its page has gone.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The subscribers of one session.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Subscribers>,
}

#[derive(Default)]
struct Subscribers {
    streams: Vec<SyncSender<String>>,
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

    /// A new stream, or None once the session is closed.
    pub fn subscribe(&self) -> Option<Receiver<String>> {
        let mut subscribers = self.lock();
        if subscribers.closed {
            return None;
        }
        let (tx, rx) = mpsc::sync_channel(BACKLOG);
        subscribers.streams.push(tx);
        Some(rx)
    }

    /// Ends every stream; later subscriptions get none.
    pub fn close(&self) {
        let mut subscribers = self.lock();
        subscribers.closed = true;
        subscribers.streams.clear();
    }
}

/// Writes the stream's HTTP head and then each event as it comes, flushed
/// at once, until the session closes or the page goes away.
pub fn stream(mut out: impl Write, events: Receiver<String>) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
                X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n: editone studio\n\n";
    if out.write_all(head.as_bytes()).and_then(|_| out.flush()).is_err() {
        return;
    }
    loop {
        let text = match events.recv_timeout(KEEPALIVE) {
            Ok(text) => text,
            Err(RecvTimeoutError::Timeout) => ": keepalive\n\n".to_string(),
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if out.write_all(text.as_bytes()).and_then(|_| out.flush()).is_err() {
            return;
        }
    }
}
