//! The one engine per process: which device tensors live on and how many
//! CPU threads libtorch may use. Everything else asks it for the device.

use crate::error::{Error, ErrorKind, Result};
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
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { device: "auto".into(), cpu_threads: 0 }
    }
}

/// The process-wide engine.
#[derive(Debug)]
pub struct Engine {
    device: Device,
    requested: String,
    threads: Mutex<u32>,
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
        let engine = Engine { device, requested: options.device.clone(), threads: Mutex::new(0) };
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

    /// The device all tensors live on.
    pub fn device(&self) -> Device {
        self.device
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
