//! The one engine per process: which device tensors live on, how many CPU
//! threads libtorch may use, and the tables of live handles.

use crate::edit::Edit;
use crate::error::{Error, ErrorKind, Result};
use crate::invert::Photo;
use crate::model::Model;
use once_cell::sync::OnceCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    fn editone_set_tf32(allow: bool);
    fn editone_tf32() -> bool;
    // csrc/cpu_cache.cpp
    fn editone_cpu_cache(cap_bytes: usize);
}

/// The process-wide engine.
pub struct Engine {
    device: Device,
    requested: String,
    threads: Mutex<u32>,
    half_precision: std::sync::atomic::AtomicBool,
    /// The objects the C API hands out by id.
    pub handles: Handles,
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
        // SAFETY: sets two flags of libtorch's global context.
        unsafe { editone_set_tf32(options.tf32) };
        // SAFETY: installs (once) or resizes the CPU allocator's cache; the
        // shim locks around both.
        unsafe { editone_cpu_cache((options.cpu_cache_mib as usize) << 20) };
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
            handles: Handles::default(),
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
        // SAFETY: reads a flag of libtorch's global context.
        unsafe { editone_tf32() }
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

/// Live objects of one kind, by id. Ids come from one process-wide counter
/// shared by every table, so they are never reused and an id of another
/// kind is never mistaken for this one.
pub struct HandleTable<T> {
    items: Mutex<IdMap<Arc<T>>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl<T> Default for HandleTable<T> {
    fn default() -> Self {
        HandleTable { items: Mutex::new(IdMap::default()) }
    }
}

impl<T> HandleTable<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, IdMap<Arc<T>>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (each operation is one insert or remove), so poisoning is ignored.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first of `ids` that is not live, if any (one lock for all).
    pub fn first_missing<'a>(&self, ids: impl IntoIterator<Item = &'a u64>) -> Option<u64> {
        let items = self.lock();
        ids.into_iter().find(|id| !items.contains_key(id)).copied()
    }

    /// Stores `item` under a fresh id.
    pub fn insert(&self, item: T) -> u64 {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, Arc::new(item));
        id
    }

    /// The live object with `id`; it stays valid for the caller even if
    /// another thread releases the handle meanwhile.
    pub fn get(&self, id: u64) -> Option<Arc<T>> {
        self.lock().get(&id).cloned()
    }

    /// How many objects are live.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no object is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Releases `id`; false when it was not live.
    pub fn remove(&self, id: u64) -> bool {
        self.lock().remove(&id).is_some()
    }
}

/// A point in a model's latent space: one flattened W+ latent.
pub struct Latent {
    /// The handle id of the model it belongs to.
    pub model_id: u64,
    /// That model, kept alive as long as the latent is.
    pub model: Arc<Model>,
    /// num_ws * w_dim floats.
    pub w: Vec<f32>,
    /// The photo it was inverted from, inherited by its edits, for
    /// residual rendering.
    pub photo: Option<Arc<Photo>>,
}

/// An edit and the model it was made with; the mutex serialises calls on
/// one edit handle.
pub struct EditEntry {
    /// The handle id of the model.
    pub model_id: u64,
    /// That model.
    pub model: Arc<Model>,
    /// The edit's state.
    pub edit: Mutex<Edit>,
    /// Latents' projections on the edit's direction (eo_edit_alphas).
    pub projections: Mutex<ProjectionCache>,
}

impl EditEntry {
    /// An edit of model `model_id`, with nothing cached yet.
    pub fn new(model_id: u64, model: Arc<Model>, edit: Edit) -> Self {
        EditEntry { model_id, model, edit: Mutex::new(edit), projections: Mutex::default() }
    }
}

/// Each latent's projection w . n on an edit's unit direction, by latent
/// id, for the direction `key` identifies. Latents never change, so after
/// a strength change every alpha is one subtraction away.
#[derive(Default)]
pub struct ProjectionCache {
    /// Fingerprint of the direction the projections belong to.
    pub key: u64,
    /// Latent id to w . n.
    pub values: IdMap<f64>,
}

/// A map keyed by handle id.
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Hashes handle ids with one multiplication: batch calls look up every
/// latent, and ids are not attacker-chosen keys that need SipHash.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The handle tables the C API hands ids out of.
#[derive(Default)]
pub struct Handles {
    /// Loaded models.
    pub models: HandleTable<Model>,
    /// Latents.
    pub latents: HandleTable<Latent>,
    /// Edits.
    pub edits: HandleTable<EditEntry>,
}

impl Handles {
    /// A model by id, or an error saying what the id is instead.
    pub fn model(&self, id: u64) -> Result<Arc<Model>> {
        self.models.get(id).ok_or_else(|| self.wrong_handle(id, "model"))
    }

    /// A latent by id.
    pub fn latent(&self, id: u64) -> Result<Arc<Latent>> {
        self.latents.get(id).ok_or_else(|| self.wrong_handle(id, "latent"))
    }

    /// An edit by id.
    pub fn edit(&self, id: u64) -> Result<Arc<EditEntry>> {
        self.edits.get(id).ok_or_else(|| self.wrong_handle(id, "edit"))
    }

    /// Releases `id` from `table`, whose objects are called `kind`.
    pub fn release<T>(&self, table: &HandleTable<T>, id: u64, kind: &str) -> Result<()> {
        if table.remove(id) {
            Ok(())
        } else {
            Err(self.wrong_handle(id, kind))
        }
    }

    /// The error for an id that is not a live `expected`.
    pub fn wrong_handle(&self, id: u64, expected: &str) -> Error {
        let actual = if id == 0 {
            "id 0, which is never valid".to_string()
        } else if self.models.get(id).is_some() {
            format!("handle {id} is a model")
        } else if self.latents.get(id).is_some() {
            format!("handle {id} is a latent")
        } else if self.edits.get(id).is_some() {
            format!("handle {id} is an edit")
        } else {
            format!("handle {id} was released or never created")
        };
        Error::new(ErrorKind::InvalidHandle, format!("expected a live {expected} handle: {actual}"))
    }
}
