//! Engine entry points.

use super::args::{size_query, InOut, Options, Out, Str};
use super::{call, eo_status};
use crate::engine::{Engine, EngineOptions};
use crate::error::{Error, Result};
use std::ffi::c_char;

/// Engine settings; fill with eo_engine_options_init before changing fields.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct eo_engine_options {
    /// sizeof(eo_engine_options), set by eo_engine_options_init.
    pub struct_size: u32,
    /// CPU threads for tensor math; 0 keeps the library default.
    pub cpu_threads: u32,
    /// "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N";
    /// NULL means "auto".
    pub device: *const c_char,
    /// 1: run the layers a StyleGAN2 checkpoint trained in float16 in
    /// float16, as the official code does (CUDA only; faster, not bit-equal
    /// to float32). 0 (default): float32 everywhere. Applies to models
    /// loaded afterwards.
    pub half_precision: u32,
    /// 1: CUDA convolutions and matrix products may compute float32 in TF32
    /// (Ampere and later; several times faster, about 1e-3 relative). 0
    /// (default): true float32, matching the official outputs to 1e-4.
    pub tf32: u32,
    /// MiB of freed CPU buffers of 1 MiB and up that the engine keeps for
    /// reuse (default 1024; 0 keeps none, at most 1048576). Large buffers
    /// glibc would otherwise map afresh and page-fault in on every render.
    pub cpu_cache_mib: u32,
}

impl Default for eo_engine_options {
    fn default() -> Self {
        eo_engine_options {
            struct_size: std::mem::size_of::<Self>() as u32,
            cpu_threads: 0,
            device: std::ptr::null(),
            half_precision: 0,
            tf32: 0,
            cpu_cache_mib: crate::engine::DEFAULT_CPU_CACHE_MIB,
        }
    }
}

/// Fills `opts` with the defaults (device "auto", library thread count).
#[no_mangle]
pub unsafe extern "C" fn eo_engine_options_init(opts: *mut eo_engine_options) -> eo_status {
    // SAFETY: `opts` is NULL or points to an eo_engine_options (the header).
    let opts = unsafe { Out::new(opts, "opts") };
    call(|| opts.put(eo_engine_options::default()))
}

/// Sets up the one engine of this process. Idempotent; a later call may
/// change cpu_threads but not the device. Every other call initialises
/// with defaults if the host did not call this first. NULL opts = defaults.
#[no_mangle]
pub unsafe extern "C" fn eo_init(opts: *const eo_engine_options) -> eo_status {
    // SAFETY: `opts` is NULL or an eo_engine_options the host initialised
    // (the header).
    let opts = unsafe { Options::new(opts, "opts") };
    call(|| {
        let raw = opts.read(eo_engine_options::default())?;
        // SAFETY: a non-NULL device is a C string (the header).
        let device = unsafe { Str::new(raw.device, "opts.device") }.optional()?.unwrap_or("auto").to_string();
        Engine::init(&engine_options(raw, device)?).map(|_| ())
    })
}

/// The engine's options from the C struct, each field checked.
fn engine_options(raw: eo_engine_options, device: String) -> Result<EngineOptions> {
    if raw.cpu_threads > 4096 {
        return Err(Error::invalid(format!("opts.cpu_threads {} is out of range", raw.cpu_threads)));
    }
    let flag = |value: u32, name: &str| match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(Error::invalid(format!("opts.{name} must be 0 or 1, got {other}"))),
    };
    let half_precision = flag(raw.half_precision, "half_precision")?;
    let tf32 = flag(raw.tf32, "tf32")?;
    if raw.cpu_cache_mib > 1 << 20 {
        return Err(Error::invalid(format!("opts.cpu_cache_mib {} is out of range (at most 1048576)", raw.cpu_cache_mib)));
    }
    Ok(EngineOptions { device, cpu_threads: raw.cpu_threads, half_precision, tf32, cpu_cache_mib: raw.cpu_cache_mib })
}

/// Writes the engine's device ("cpu", "cuda:0") as a NUL-terminated string
/// into `buf` of `len` bytes; `needed` (may be NULL) receives the size
/// including the NUL. With buf NULL only `needed` is set (both NULL is
/// EO_ERR_INVALID_ARGUMENT). A buffer that is too small gets
/// EO_ERR_INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn eo_device_name(buf: *mut c_char, len: usize, needed: *mut usize) -> eo_status {
    // SAFETY: `buf` is NULL or holds `len` writable bytes, `needed` is NULL
    // or a size_t (the header).
    let (buf, needed) = unsafe { (InOut::new(buf as *mut u8, len, "buf"), Out::new(needed, "needed")) };
    call(|| {
        let name = Engine::get()?.device_name();
        let size = name.len() + 1;
        if !size_query(size, &buf, needed, false)? {
            return Ok(());
        }
        if len < size {
            return Err(Error::invalid(format!("buffer of {len} bytes is too small; {size} needed")));
        }
        let buf = buf.get()?;
        buf[..name.len()].copy_from_slice(name.as_bytes());
        buf[name.len()] = 0;
        Ok(())
    })
}

/// The number of CPU threads the engine's tensor math uses.
#[no_mangle]
pub unsafe extern "C" fn eo_cpu_threads(out: *mut u32) -> eo_status {
    // SAFETY: `out` is NULL or a uint32_t (the header).
    let out = unsafe { Out::new(out, "out") };
    call(|| out.put(Engine::get()?.cpu_threads()))
}
