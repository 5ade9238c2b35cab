//! The C boundary: status codes, handles, the panic boundary and argument
//! checks. Functions here translate and validate; the work happens in the
//! plain Rust modules. Every `extern "C"` function runs inside [`call`], so
//! no panic crosses into the host.
#![allow(non_camel_case_types)]

mod args;
mod drag;
mod edit;
mod engine;
mod faces;
mod handles;
mod invert;
mod latent;
mod model;
mod render;
mod tune;

use crate::error::{Error, ErrorKind, Result};
use args::Out;
use handles::handles;
use crate::progress::Progress;
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Version of the C ABI described by this header; bumped whenever an
/// existing function, struct or constant changes meaning.
pub const EO_ABI_VERSION: u32 = 2;

/// Outcome of every call.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum eo_status {
    /// Success.
    EO_OK = 0,
    /// A null pointer, a length mismatch, NaN or Inf in an input, an option out of range.
    EO_ERR_INVALID_ARGUMENT = 1,
    /// An unknown or released handle, a handle of another kind, or of another model.
    EO_ERR_INVALID_HANDLE = 2,
    /// A file could not be read or written.
    EO_ERR_IO = 3,
    /// A malformed or unsupported file.
    EO_ERR_FORMAT = 4,
    /// Valid input made for something else, e.g. a preset saved for another model.
    EO_ERR_INCOMPATIBLE = 5,
    /// The requested device is unavailable or failed.
    EO_ERR_DEVICE = 6,
    /// Memory ran out (host or device).
    EO_ERR_OUT_OF_MEMORY = 7,
    /// The progress callback asked to stop; state is as before the call.
    EO_ERR_CANCELLED = 8,
    /// A bug in editone (a caught panic), reported with its message.
    EO_ERR_INTERNAL = 9,
    /// The output file exists and replacing it was not asked for
    /// (EO_WRITE_REPLACE); it is left as it was.
    EO_ERR_EXISTS = 10,
}

/// A loaded face detector (eo_detector_load). Id 0 is never valid.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct eo_detector {
    /// Opaque id.
    pub id: u64,
}

/// A loaded model. Id 0 is never valid; ids are never reused.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct eo_model {
    /// Opaque id.
    pub id: u64,
}

/// A latent (an image as a point in a model's latent space).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct eo_latent {
    /// Opaque id.
    pub id: u64,
}

/// An example edit that can be optimised and applied to other latents.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct eo_edit {
    /// Opaque id.
    pub id: u64,
}

/// Progress of a long call: stage name, steps done, steps in all. Return
/// non-zero to cancel; the call then returns EO_ERR_CANCELLED and leaves
/// every handle as it was.
pub type eo_progress_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, stage: *const c_char, done: u64, total: u64) -> i32>;

/// Flags of the calls that write files (EO_WRITE_*). Every such call
/// writes a hidden temporary file in the target folder and renames it, so
/// that the file is either the old one or the new one, whole.
pub type eo_write_flags = u32;
/// Replace an existing file. Without it a path that exists (a dangling
/// link included) gives EO_ERR_EXISTS and is left as it was.
pub const EO_WRITE_REPLACE: eo_write_flags = 1;

/// What a write does with an existing file; unknown flag bits are refused,
/// so that a later flag cannot be silently ignored by this version.
fn existing_of(flags: eo_write_flags) -> Result<crate::files::Existing> {
    match flags {
        0 => Ok(crate::files::Existing::Refuse),
        EO_WRITE_REPLACE => Ok(crate::files::Existing::Replace),
        _ => Err(Error::invalid(format!("flags {flags:#x} has bits that are not EO_WRITE_* flags"))),
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// The one table of status codes beside the enum (which cbindgen needs
/// written out): each status with the error kind it reports, from which
/// the kind-to-status mapping and the names are made.
macro_rules! status_table {
    ($($status:ident => $kind:ident,)*) => {
        fn status_of(kind: ErrorKind) -> eo_status {
            match kind {
                $(ErrorKind::$kind => eo_status::$status,)*
            }
        }

        fn status_name(status: i32) -> &'static CStr {
            $(if status == eo_status::$status as i32 {
                return match CStr::from_bytes_with_nul(concat!(stringify!($status), "\0").as_bytes()) {
                    Ok(name) => name,
                    Err(_) => c"EO_UNKNOWN",
                };
            })*
            if status == eo_status::EO_OK as i32 { c"EO_OK" } else { c"EO_UNKNOWN" }
        }
    };
}

status_table! {
    EO_ERR_INVALID_ARGUMENT => InvalidArgument,
    EO_ERR_INVALID_HANDLE => InvalidHandle,
    EO_ERR_IO => Io,
    EO_ERR_FORMAT => Format,
    EO_ERR_INCOMPATIBLE => Incompatible,
    EO_ERR_DEVICE => Device,
    EO_ERR_OUT_OF_MEMORY => OutOfMemory,
    EO_ERR_CANCELLED => Cancelled,
    EO_ERR_INTERNAL => Internal,
    EO_ERR_EXISTS => Exists,
}

fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

/// The panic boundary: runs `f`, records any failure for
/// [`eo_last_error`], and maps it to a status.
fn call(f: impl FnOnce() -> Result<()>) -> eo_status {
    // Gradients on for the call, the host's setting restored after it: a
    // host that shares the process's libtorch (Python, inside
    // torch.no_grad()) must not turn off what inversion, tuning and d*
    // optimisation need. Renders turn them off themselves.
    match tch::with_grad(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(Ok(())) => eo_status::EO_OK,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            status_of(e.kind)
        }
        Err(payload) => {
            let what = crate::error::panic_message(&*payload);
            set_last_error(&format!("internal error (a bug in editone): {what}"));
            eo_status::EO_ERR_INTERNAL
        }
    }
}

/// The message of the last failed call on this thread, or "" if none has
/// failed. Valid until the next failing call on the same thread.
#[no_mangle]
pub extern "C" fn eo_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// EO_ABI_VERSION of the loaded library; compare with the header's.
#[no_mangle]
pub extern "C" fn eo_abi_version() -> u32 {
    EO_ABI_VERSION
}

/// The library version, e.g. "0.1.0" (static storage).
#[no_mangle]
pub extern "C" fn eo_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// A short static name for a status, e.g. "EO_ERR_IO"; "EO_UNKNOWN" for
/// values that are not a status.
#[no_mangle]
pub extern "C" fn eo_status_name(status: i32) -> *const c_char {
    status_name(status).as_ptr()
}

/// Counts the live handles of each kind (any out-pointer may be NULL), so
/// a host can check that it released everything it created.
#[no_mangle]
pub unsafe extern "C" fn eo_live_handles(models: *mut usize, latents: *mut usize, edits: *mut usize) -> eo_status {
    // SAFETY: each pointer is NULL or points to a size_t (the header).
    let outs = unsafe { [Out::new(models, "models"), Out::new(latents, "latents"), Out::new(edits, "edits")] };
    call(|| {
        let h = handles()?;
        for (out, count) in outs.into_iter().zip([h.models.len(), h.latents.len(), h.edits.len()]) {
            out.write(count);
        }
        Ok(())
    })
}

/// Panics inside the panic boundary, so that the C tests reach the path
/// from a panic to EO_ERR_INTERNAL; not part of the header.
/// cbindgen:ignore
#[no_mangle]
#[doc(hidden)]
pub extern "C" fn eo_test_panic() -> eo_status {
    call(|| panic!("eo_test_panic was called"))
}

/// Runs `f` with the host's progress callback as the library's closure
/// type (None when the host passed NULL).
fn with_progress<R>(callback: eo_progress_fn, user: *mut c_void, f: impl FnOnce(Option<Progress<'_>>) -> R) -> R {
    let Some(callback) = callback else { return f(None) };
    let mut forward = |stage: &str, done: u64, total: u64| {
        let stage = CString::new(stage).unwrap_or_default();
        // SAFETY: the host promised a valid callback and user pointer for
        // the duration of the call.
        unsafe { callback(user, stage.as_ptr(), done, total) == 0 }
    };
    f(Some(&mut forward))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host that turned gradients off on its thread (Python inside
    /// torch.no_grad(), sharing the process's libtorch) still gets calls
    /// that need them, and gets its setting back.
    #[test]
    fn calls_run_with_gradients_whatever_the_host_set() {
        let (status, still_off) = tch::no_grad(|| {
            let status = call(|| {
                let x = tch::Tensor::ones([3], tch::kind::FLOAT_CPU).set_requires_grad(true);
                (&x * 2.0).sum(tch::Kind::Float).backward();
                assert_eq!(Vec::<f32>::try_from(x.grad()).unwrap(), vec![2.0; 3]);
                Ok(())
            });
            let probe = tch::Tensor::ones([1], tch::kind::FLOAT_CPU).set_requires_grad(true) * 2.0;
            (status, !probe.requires_grad())
        });
        assert_eq!(status, eo_status::EO_OK);
        assert!(still_off, "the host's setting was not restored");
    }
}
