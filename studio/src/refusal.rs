//! A request the studio refuses, with the HTTP status that says why; every
//! layer (sessions, items, event streams, the API) answers with one.

use editone::{Error, ErrorKind};

/// A request the session refuses, with the HTTP status that says why.
#[derive(Debug)]
pub struct Refusal {
    /// 400, 404, 409, 500...
    pub status: u16,
    /// Names what was wrong.
    pub message: String,
    /// Seconds after which trying again may work (the Retry-After header).
    pub retry_after: Option<u64>,
}

impl Refusal {
    /// A 4xx or 5xx with `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal { status, message: message.into(), retry_after: None }
    }

    /// The same refusal, saying when to try again.
    pub fn retry_after(mut self, seconds: u64) -> Refusal {
        self.retry_after = Some(seconds.max(1));
        self
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Refusal {
        let status = match e.kind {
            ErrorKind::InvalidArgument | ErrorKind::Format | ErrorKind::Incompatible => 400,
            _ => 500,
        };
        Refusal::new(status, e.to_string())
    }
}
