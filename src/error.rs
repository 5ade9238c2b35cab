//! The crate's error type: a kind that maps one-to-one onto the C status
//! codes, and a message that names what was wrong.

use std::fmt;

/// What went wrong, coarse enough for a host to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A null pointer, a length mismatch, a NaN or Inf, an option out of range.
    InvalidArgument,
    /// An unknown or released handle, or one of another kind or model.
    InvalidHandle,
    /// A file could not be read or written.
    Io,
    /// A file is malformed or uses something unsupported.
    Format,
    /// Valid input that does not fit this model (e.g. a preset for another model).
    Incompatible,
    /// The requested device is unavailable or failed.
    Device,
    /// An allocation failed.
    OutOfMemory,
    /// The host cancelled through a progress callback.
    Cancelled,
    /// A bug: a caught panic or an unexpected libtorch error.
    Internal,
    /// An output file exists and replacing it was not asked for.
    Exists,
}

/// An error with its kind and a message for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The coarse category.
    pub kind: ErrorKind,
    /// A sentence naming what was wrong, and the file where there is one.
    pub message: String,
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }

    /// Shorthand for [`ErrorKind::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// Shorthand for [`ErrorKind::Format`].
    pub fn format(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Format, message)
    }

    /// Shorthand for [`ErrorKind::Cancelled`].
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "cancelled by the progress callback")
    }

    /// Prefixes the message with context, keeping the kind.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Error { kind: self.kind, message: format!("{what}: {}", self.message) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl Error {
    /// An error from a libtorch failure message: out-of-memory when it says
    /// so (libtorch reports failed allocations as ordinary exceptions, and
    /// hosts can recover from those with a smaller batch), else internal.
    pub fn from_torch(context: &str, message: &str) -> Self {
        let message = torch_message(message);
        let lower = message.to_lowercase();
        let kind = if lower.contains("out of memory") || lower.contains("can't allocate") {
            ErrorKind::OutOfMemory
        } else {
            ErrorKind::Internal
        };
        Error::new(kind, format!("{context}: {message}"))
    }
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Error::from_torch("libtorch", &e.to_string())
    }
}

/// A libtorch error message without what only a debugger needs: libtorch
/// appends "Exception raised from ..." and a stack of frames with
/// addresses, and tch prefixes "Internal torch error: ". Users get the
/// sentence that names the problem.
pub fn torch_message(message: &str) -> &str {
    let message = message.strip_prefix("Internal torch error: ").unwrap_or(message);
    // tch's panics print the error with Debug, so the markers may come
    // with their line breaks escaped.
    let end = ["\nException raised from", "\nframe #0", "\nException raised", "\\nException raised", "\\nframe #0"]
        .iter()
        .filter_map(|marker| message.find(marker))
        .min()
        .unwrap_or(message.len());
    message[..end].trim_end()
}

/// The NUL-terminated message a C++ shim in csrc/ wrote into `buffer`.
fn shim_message(buffer: &[u8]) -> String {
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// Calls a csrc/ entry point that reports failure by returning `failed`
/// and the exception's message in an error buffer (csrc/shim.h): `call`
/// gets the buffer and its length. The failure becomes an error about
/// `what`.
pub(crate) fn shim_call<T: PartialEq>(what: &str, failed: T, call: impl FnOnce(*mut u8, usize) -> T) -> Result<T> {
    let mut error = [0u8; 512];
    let value = call(error.as_mut_ptr(), error.len());
    if value == failed {
        return Err(Error::from_torch(what, &shim_message(&error)));
    }
    Ok(value)
}

/// The message a panic was raised with.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    // A panic of a tch wrapper carries libtorch's stack trace.
    torch_message(&message).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_of_tch_wrappers_lose_their_stack_traces() {
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from(
            "called `Result::unwrap()` on an `Err` value: Torch(\"element 0 of tensors does not require grad\\nException raised from run_backward at autograd.cpp:1 (most recent call first):\\nframe #0: c10::Error\")",
        ));
        let message = panic_message(&*payload);
        assert!(message.ends_with("does not require grad"), "{message}");
    }

    #[test]
    fn libtorch_messages_lose_their_stack_traces() {
        let raw = "Internal torch error: PytorchStreamReader failed reading zip archive: failed finding central directory\n\
                   Exception raised from valid at ../caffe2/serialize/inline_container.cc:236 (most recent call first):\n\
                   frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x96 (0x7f3c in /x/libc10.so)";
        let e = Error::from_torch("perceptual network 'x'", raw);
        assert_eq!(e.message, "perceptual network 'x': PytorchStreamReader failed reading zip archive: failed finding central directory");
        assert_eq!(torch_message("plain"), "plain");
    }
}
