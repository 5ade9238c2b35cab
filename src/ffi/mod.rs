//! The C boundary: status codes, handles, the panic boundary and argument
//! checks. Functions here translate and validate; the work happens in the
//! plain Rust modules. Every `extern "C"` function runs inside [`call`], so
//! no panic crosses into the host.
#![allow(non_camel_case_types)]

mod drag;
mod edit;
mod engine;
mod invert;
mod latent;
mod model;
mod render;

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
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

fn status_of(kind: ErrorKind) -> eo_status {
    match kind {
        ErrorKind::InvalidArgument => eo_status::EO_ERR_INVALID_ARGUMENT,
        ErrorKind::InvalidHandle => eo_status::EO_ERR_INVALID_HANDLE,
        ErrorKind::Io => eo_status::EO_ERR_IO,
        ErrorKind::Format => eo_status::EO_ERR_FORMAT,
        ErrorKind::Incompatible => eo_status::EO_ERR_INCOMPATIBLE,
        ErrorKind::Device => eo_status::EO_ERR_DEVICE,
        ErrorKind::OutOfMemory => eo_status::EO_ERR_OUT_OF_MEMORY,
        ErrorKind::Cancelled => eo_status::EO_ERR_CANCELLED,
        ErrorKind::Internal => eo_status::EO_ERR_INTERNAL,
        ErrorKind::Exists => eo_status::EO_ERR_EXISTS,
    }
}

fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

/// The panic boundary: runs `f`, records any failure for
/// [`eo_last_error`], and maps it to a status.
fn call(f: impl FnOnce() -> Result<()>) -> eo_status {
    match catch_unwind(AssertUnwindSafe(f)) {
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
    let name: &'static str = match status {
        0 => "EO_OK\0",
        1 => "EO_ERR_INVALID_ARGUMENT\0",
        2 => "EO_ERR_INVALID_HANDLE\0",
        3 => "EO_ERR_IO\0",
        4 => "EO_ERR_FORMAT\0",
        5 => "EO_ERR_INCOMPATIBLE\0",
        6 => "EO_ERR_DEVICE\0",
        7 => "EO_ERR_OUT_OF_MEMORY\0",
        8 => "EO_ERR_CANCELLED\0",
        9 => "EO_ERR_INTERNAL\0",
        10 => "EO_ERR_EXISTS\0",
        _ => "EO_UNKNOWN\0",
    };
    name.as_ptr() as *const c_char
}

/// Counts the live handles of each kind (any out-pointer may be NULL), so
/// a host can check that it released everything it created.
#[no_mangle]
pub unsafe extern "C" fn eo_live_handles(models: *mut usize, latents: *mut usize, edits: *mut usize) -> eo_status {
    call(|| {
        let h = handles()?;
        for (out, count) in [(models, h.models.len()), (latents, h.latents.len()), (edits, h.edits.len())] {
            if !out.is_null() {
                out.write(count);
            }
        }
        Ok(())
    })
}

fn handles() -> Result<&'static crate::engine::Handles> {
    Ok(&Engine::get()?.handles)
}

/// Writes through an out-pointer after checking it is not null.
unsafe fn write_out<T>(out: *mut T, what: &str, value: T) -> Result<()> {
    if out.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    out.write(value);
    Ok(())
}

/// Checks an out-pointer before any work is done.
fn require_out<T>(out: *mut T, what: &str) -> Result<()> {
    if out.is_null() {
        Err(Error::invalid(format!("{what} is NULL")))
    } else {
        Ok(())
    }
}

/// Copies `text` plus a NUL into a host buffer (see eo_device_name).
unsafe fn write_string(text: &str, buf: *mut c_char, len: usize, needed: *mut usize) -> Result<()> {
    let size = text.len() + 1;
    if !needed.is_null() {
        needed.write(size);
    }
    if buf.is_null() {
        return if needed.is_null() { Err(Error::invalid("buf and needed are both NULL")) } else { Ok(()) };
    }
    if len < size {
        return Err(Error::invalid(format!("buffer of {len} bytes is too small; {size} needed")));
    }
    std::ptr::copy_nonoverlapping(text.as_ptr(), buf as *mut u8, text.len());
    buf.add(text.len()).write(0);
    Ok(())
}

/// A host array of `len` elements, which must be non-empty.
unsafe fn slice_arg<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T]> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    if len == 0 {
        return Err(Error::invalid(format!("{what} has length 0")));
    }
    if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(Error::invalid(format!("{what} is not aligned for its element type")));
    }
    if len.checked_mul(std::mem::size_of::<T>()).is_none_or(|b| b > isize::MAX as usize) {
        return Err(Error::invalid(format!("{what} length {len} is too large")));
    }
    Ok(std::slice::from_raw_parts(ptr, len))
}

/// A writable host array of `len` elements.
unsafe fn slice_out<'a, T>(ptr: *mut T, len: usize, what: &str) -> Result<&'a mut [T]> {
    slice_arg(ptr as *const T, len, what)?;
    Ok(std::slice::from_raw_parts_mut(ptr, len))
}

/// A NUL-terminated UTF-8 string argument.
unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    CStr::from_ptr(ptr).to_str().map_err(|_| Error::invalid(format!("{what} is not valid UTF-8")))
}

/// Reads an options struct whose first field is `uint32_t struct_size`:
/// NULL means defaults; a host built against an older, smaller struct gets
/// defaults for the fields it does not know.
unsafe fn read_options<T: Copy>(ptr: *const T, defaults: T, what: &str) -> Result<T> {
    if ptr.is_null() {
        return Ok(defaults);
    }
    let size = (ptr as *const u32).read_unaligned() as usize;
    if size < std::mem::size_of::<u32>() {
        return Err(Error::invalid(format!("{what}.struct_size is {size}; initialise it with its _init function")));
    }
    let mut value = defaults;
    let n = size.min(std::mem::size_of::<T>());
    std::ptr::copy_nonoverlapping(ptr as *const u8, &mut value as *mut T as *mut u8, n);
    Ok(value)
}

/// Writes an out struct whose first field the host set to its size.
unsafe fn write_sized<T: Copy>(out: *mut T, value: T, what: &str) -> Result<()> {
    require_out(out, what)?;
    let size = (out as *const u32).read_unaligned() as usize;
    if size < std::mem::size_of::<u32>() {
        return Err(Error::invalid(format!("{what}.struct_size is {size}; set it to sizeof the struct")));
    }
    let n = size.min(std::mem::size_of::<T>());
    std::ptr::copy_nonoverlapping(&value as *const T as *const u8, out as *mut u8, n);
    (out as *mut u32).write_unaligned(n as u32);
    Ok(())
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
