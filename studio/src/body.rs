//! A reply's body as hyper sends it: the whole of it, or an event stream;
//! and the header values the studio writes.

use crate::events::EventStream;
use hyper::body::{Bytes, Frame, SizeHint};
use hyper::header::HeaderValue;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A reply's body: all of it at once, or an event stream.
pub enum Body {
    /// The whole body; None once sent.
    Full(Option<Bytes>),
    /// Server-Sent Events until the session or the page goes.
    Events(EventStream),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take()),
            Body::Events(events) => events.poll_next(cx),
        };
        next.map(|bytes| bytes.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Events(_) => SizeHint::default(),
        }
    }
}

/// A header value the studio writes itself (ASCII, no line breaks).
pub fn header(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("the studio's own header values are ASCII")
}
