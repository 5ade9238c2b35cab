//! The HTTP/1.1 server: hyper on a one-thread tokio runtime, with the limits
//! that keep a hostile local client from exhausting the machine (issue 19).
//!
//! - At most [`MAX_CONNECTIONS`] connections are open; more wait in the
//!   kernel's listen queue until one closes.
//! - A request head must arrive whole within [`HEAD_TIMEOUT`] of the
//!   connection opening, and be at most [`MAX_HEAD`] bytes; hyper closes the
//!   connection otherwise, and answers 400 itself to what cannot be parsed.
//!   An HTTP/2 connection gets a 505 instead of hyper's silent close.
//! - A body must arrive whole within [`BODY_TIMEOUT`] of its head (408).
//! - Every reply closes its connection, so no connection idles between
//!   requests.
//! - Connections are tasks, not threads: idle and slow ones cost a few KiB
//!   each. Work that renders runs on the one render thread
//!   ([`crate::render`]); the rest takes microseconds and runs here.

use crate::api::{self, Reply};
use crate::body::Body;
use crate::refusal::Refusal;
use crate::Studio;
use hyper::body::{Body as _, Incoming};
use hyper::header::CONTENT_LENGTH;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};

/// Connections open at once. Above the 1000 idle sockets of the issue's
/// probe, so that a normal client still gets through them; each costs one
/// file descriptor and at most [`MAX_HEAD`] of buffer.
pub const MAX_CONNECTIONS: usize = 2048;
/// Time from accepting a connection to having its whole request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time from the head to the whole body (at most 64 KiB, so a client that
/// takes longer is holding it back).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's read buffer, and so the largest request head; browsers send 1
/// to 2 KiB. hyper answers 431 to a longer one.
const MAX_HEAD: usize = 16 * 1024;
/// Connections the kernel queues while all [`MAX_CONNECTIONS`] are busy.
const LISTEN_BACKLOG: i32 = 1024;
/// The file descriptors the studio needs beside its connections (the
/// model, libtorch's libraries, the listener).
const SPARE_FILES: usize = 256;

/// Listens on 127.0.0.1:`port` (0: any free port); returns the port and the
/// listener, for [`run`].
pub fn bind(port: u16) -> Result<(u16, std::net::TcpListener), String> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    Ok((port, listener))
}

/// Serves `studio` on `listener` until the process ends.
pub fn run(studio: Arc<Studio>, listener: std::net::TcpListener) -> Result<(), String> {
    let connections = connection_cap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the server: {e}"))?;
    runtime.block_on(async move {
        let listener = listen(listener)?;
        let permits = Arc::new(Semaphore::new(connections));
        loop {
            let permit = Arc::clone(&permits).acquire_owned().await.expect("the semaphore is never closed");
            match listener.accept().await {
                Ok((stream, _)) => {
                    let studio = Arc::clone(&studio);
                    tokio::spawn(async move {
                        serve(studio, stream).await;
                        drop(permit);
                    });
                }
                // Out of file descriptors or a connection reset before it was
                // accepted: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
}

/// The std listener as tokio's, with a longer listen queue than std's 128,
/// so that a burst of connections waits instead of being refused.
fn listen(listener: std::net::TcpListener) -> Result<TcpListener, String> {
    use std::os::fd::AsRawFd;
    let failed = |e: std::io::Error| format!("cannot listen: {e}");
    // SAFETY: listen(2) on a socket this function owns; on a socket that
    // listens already, Linux only updates the queue's length.
    if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG as libc::c_int) } != 0 {
        return Err(failed(std::io::Error::last_os_error()));
    }
    listener.set_nonblocking(true).map_err(failed)?;
    TcpListener::from_std(listener).map_err(failed)
}

/// [`MAX_CONNECTIONS`], or fewer when the process may not open that many
/// files. The soft limit on files is raised first (up to the hard limit):
/// many systems start processes at 1024.
fn connection_cap() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain system calls on a local struct.
    let files = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return MAX_CONNECTIONS.min(1024 - SPARE_FILES);
        }
        let wanted = (MAX_CONNECTIONS + SPARE_FILES) as libc::rlim_t;
        if limit.rlim_cur < wanted {
            let raised = libc::rlimit { rlim_cur: wanted.min(limit.rlim_max), rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        limit.rlim_cur
    };
    MAX_CONNECTIONS.min(usize::try_from(files).unwrap_or(usize::MAX).saturating_sub(SPARE_FILES).max(16))
}

/// Serves one connection: one request, then close.
async fn serve(studio: Arc<Studio>, stream: TcpStream) {
    let opened = Instant::now();
    let mut first = [0; H2_PREFIX.len()];
    let n = match tokio::time::timeout(HEAD_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => n,
        // Nothing came, or the client left: nothing to answer.
        _ => return,
    };
    if first[..n] == *H2_PREFIX {
        // A short reply fits the new socket's send buffer in one write.
        if stream.writable().await.is_ok() {
            let _ = stream.try_write(HTTP2_REFUSED.as_bytes());
        }
        return;
    }
    let service = hyper::service::service_fn(move |request| respond(Arc::clone(&studio), request));
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT.saturating_sub(opened.elapsed()))
        .max_buf_size(MAX_HEAD)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    // A client that went away or sent nothing parseable: nothing to report.
    let _ = connection.await;
}

/// How an HTTP/2 connection starts (RFC 9113, 3.4).
const H2_PREFIX: &[u8] = b"PRI * HTTP/2.0";
/// The answer to one: hyper's HTTP/1 server would close it without a word.
const HTTP2_REFUSED: &str = "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: application/json\r\n\
    Content-Length: 61\r\nConnection: close\r\n\r\n{\"error\":\"the studio speaks HTTP/1.1 only, not HTTP/2 (h2c)\"}";

/// The reply to one request.
async fn respond(studio: Arc<Studio>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (head, body) = request.into_parts();
    let reply = match read_body(&head, body).await {
        Ok(body) => match api::handle(&studio, &head, &body) {
            Ok(Reply::Later(job)) => on_render_thread(&studio, job).await,
            other => other,
        },
        Err(refusal) => Err(refusal),
    };
    Ok(api::response(reply))
}

/// Runs `job` on the render thread and waits for it, without holding this
/// thread. A job whose client has gone by its turn is skipped.
async fn on_render_thread(studio: &Studio, job: api::Job) -> Result<Reply, Refusal> {
    let (tx, rx) = oneshot::channel();
    studio.renderer.submit(move || {
        if !tx.is_closed() {
            let _ = tx.send(api::guarded(job));
        }
    });
    rx.await.unwrap_or_else(|_| Err(Refusal::new(500, "the render thread dropped the request")))
}

/// The whole body, refused with 413 past [`api::MAX_BODY`] (by its
/// Content-Length when it has one, before reading) and with 408 when it
/// does not arrive within [`BODY_TIMEOUT`].
async fn read_body(head: &hyper::http::request::Parts, mut body: Incoming) -> Result<Vec<u8>, Refusal> {
    let too_large = || Refusal::new(413, format!("the request body is over {} bytes", api::MAX_BODY));
    let declared = head.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > api::MAX_BODY as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut bytes = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            let frame = frame.map_err(|e| Refusal::new(400, format!("could not read the request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > api::MAX_BODY {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(bytes)
    };
    tokio::time::timeout(BODY_TIMEOUT, read).await.unwrap_or_else(|_| {
        Err(Refusal::new(408, format!("the request body did not arrive within {} s", BODY_TIMEOUT.as_secs())))
    })
}

