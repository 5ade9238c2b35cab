//! The one engine per process: which device tensors live on, how many CPU
//! threads libtorch may use, and the precision of new models. It knows
//! nothing of models or edits; the C API keeps its handle tables itself.

use crate::error::{shim_call, Error, ErrorKind, Result};
use crate::model::Placement;
use once_cell::sync::OnceCell;
use std::sync::Mutex;
use tch::Device;

/// How the host wants the engine set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
    pub device: String,
    /// CPU threads for libtorch; 0 keeps libtorch's default.
    pub cpu_threads: u32,
    /// Run the blocks a StyleGAN2 was trained with in float16 in float16,
    /// as the official code does; CUDA only (the CPU always uses float32).
    /// Applies to models loaded afterwards.
    pub half_precision: bool,
    /// Let CUDA convolutions and matrix products compute float32 in TF32
    /// (Ampere and later): several times faster, about 1e-3 relative
    /// instead of 1e-6. Off by default, so that CUDA matches the official
    /// float32 outputs to 1e-4; no effect on the CPU.
    pub tf32: bool,
    /// MiB of freed large CPU buffers (1 MiB and up) kept for reuse; 0
    /// keeps none. Without it every activation over glibc's mmap threshold
    /// is a fresh mmap, page-faulted in on first write: a third of a 256x256
    /// StyleGAN2 render on 2 cores (issue 9).
    pub cpu_cache_mib: u32,
}

/// The default of [`EngineOptions::cpu_cache_mib`].
pub const DEFAULT_CPU_CACHE_MIB: u32 = 1024;

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            device: "auto".into(),
            cpu_threads: 0,
            half_precision: false,
            tf32: false,
            cpu_cache_mib: DEFAULT_CPU_CACHE_MIB,
        }
    }
}

extern "C" {
    // csrc/precision.cpp
    fn editone_set_tf32(allow: bool, error: *mut u8, error_len: usize) -> bool;
    fn editone_tf32(error: *mut u8, error_len: usize) -> i32;
    // csrc/cpu_cache.cpp
    fn editone_cpu_cache(cap_bytes: usize, error: *mut u8, error_len: usize) -> bool;
}

/// The process-wide engine.
pub struct Engine {
    device: Device,
    requested: String,
    threads: Mutex<u32>,
    half_precision: std::sync::atomic::AtomicBool,
}

static ENGINE: OnceCell<Engine> = OnceCell::new();

impl Engine {
    /// Initialises the engine on first call; later calls must ask for the
    /// same device (models already loaded cannot move) and may change the
    /// thread count.
    pub fn init(options: &EngineOptions) -> Result<&'static Engine> {
        let engine = ENGINE.get_or_try_init(|| Engine::create(options))?;
        if engine.requested != options.device && Engine::parse_device(&options.device)? != engine.device {
            return Err(Error::invalid(format!(
                "the engine already runs on {}; it cannot switch to '{}' in this process",
                engine.device_name(),
                options.device
            )));
        }
        engine.set_cpu_threads(options.cpu_threads);
        engine.half_precision.store(options.half_precision, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: sets two flags of libtorch's global context; the buffer
        // is `len` writable bytes.
        shim_call("libtorch's TF32 switches", false, |error, len| unsafe { editone_set_tf32(options.tf32, error, len) })?;
        let cap = (options.cpu_cache_mib as usize) << 20;
        // SAFETY: installs (once) or resizes the CPU allocator's cache (the
        // shim locks around both); the buffer is `len` writable bytes.
        shim_call("the CPU buffer cache", false, |error, len| unsafe { editone_cpu_cache(cap, error, len) })?;
        Ok(engine)
    }

    /// The engine, initialised with defaults if the host did not call init.
    pub fn get() -> Result<&'static Engine> {
        match ENGINE.get() {
            Some(engine) => Ok(engine),
            None => Engine::init(&EngineOptions::default()),
        }
    }

    fn create(options: &EngineOptions) -> Result<Engine> {
        let device = Engine::parse_device(&options.device)?;
        let engine = Engine {
            device,
            requested: options.device.clone(),
            threads: Mutex::new(0),
            half_precision: options.half_precision.into(),
        };
        engine.set_cpu_threads(options.cpu_threads);
        Ok(engine)
    }

    /// Resolves a device string, checking that the device exists.
    pub fn parse_device(spec: &str) -> Result<Device> {
        let cuda_count = || if tch::Cuda::is_available() { tch::Cuda::device_count() } else { 0 };
        match spec {
            "auto" | "" => Ok(Device::cuda_if_available()),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Engine::parse_device("cuda:0"),
            other => {
                let index = other
                    .strip_prefix("cuda:")
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| Error::invalid(format!("unknown device '{other}': use auto, cpu, cuda or cuda:N")))?;
                let count = cuda_count();
                if (index as i64) < count {
                    Ok(Device::Cuda(index))
                } else {
                    Err(Error::new(
                        ErrorKind::Device,
                        format!("device '{other}' is not available: this process sees {count} CUDA device(s)"),
                    ))
                }
            }
        }
    }

    /// Whether models loaded now run their float16 blocks in float16: asked
    /// for, and on CUDA.
    pub fn half_precision(&self) -> bool {
        self.device.is_cuda() && self.half_precision.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether CUDA float32 math may use TF32 (see [`EngineOptions::tf32`]).
    pub fn tf32(&self) -> bool {
        // SAFETY: reads a flag of libtorch's global context; the buffer is
        // `len` writable bytes.
        shim_call("libtorch's TF32 switches", -1, |error, len| unsafe { editone_tf32(error, len) }) == Ok(1)
    }

    /// The device all tensors live on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Where models loaded now go: this engine's device and precision.
    pub fn placement(&self) -> Placement {
        Placement { device: self.device, half_precision: self.half_precision() }
    }

    /// "cpu" or "cuda:N".
    pub fn device_name(&self) -> String {
        match self.device {
            Device::Cuda(i) => format!("cuda:{i}"),
            _ => "cpu".into(),
        }
    }

    /// Sets libtorch's intra-op thread count; 0 leaves it as it is.
    pub fn set_cpu_threads(&self, threads: u32) {
        let mut current = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        if threads > 0 && threads != *current {
            tch::set_num_threads(threads.min(i32::MAX as u32) as i32);
            *current = threads;
        }
    }

    /// The intra-op thread count libtorch uses now.
    pub fn cpu_threads(&self) -> u32 {
        tch::get_num_threads().max(1) as u32
    }
}
