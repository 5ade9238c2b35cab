//! The objects the C API hands out by id: one table per kind, looked up by
//! the typed handles of the header, so that a latent id can only be looked
//! up as a latent. Only the C boundary uses them; Rust callers hold the
//! objects themselves.

use super::{eo_detector, eo_edit, eo_latent, eo_model};
use crate::edit::{AlphaTable, Edit, IdHasher};
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::faces::mtcnn::Detector;
use crate::invert::Photo;
use crate::model::Model;
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a handle id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Model,
    Latent,
    Edit,
    Detector,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Model => "model",
            Kind::Latent => "latent",
            Kind::Edit => "edit",
            Kind::Detector => "detector",
        })
    }
}

/// Live objects of one kind, by id. Ids come from one process-wide counter
/// shared by every table, so they are never reused and an id of another
/// kind is never mistaken for this one.
pub(super) struct HandleTable<T> {
    kind: Kind,
    items: Mutex<IdMap<Arc<T>>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl<T> HandleTable<T> {
    fn new(kind: Kind) -> Self {
        HandleTable { kind, items: Mutex::new(IdMap::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, IdMap<Arc<T>>> {
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
        self.insert_shared(Arc::new(item))
    }

    /// Stores an item the caller keeps a share of under a fresh id.
    pub fn insert_shared(&self, item: Arc<T>) -> u64 {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, item);
        id
    }

    /// The live object with `id`; it stays valid for the caller even if
    /// another thread releases the handle meanwhile.
    fn get(&self, id: u64) -> Option<Arc<T>> {
        self.lock().get(&id).cloned()
    }

    /// How many objects are live.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Releases `id`; false when it was not live.
    pub fn remove(&self, id: u64) -> bool {
        self.lock().remove(&id).is_some()
    }

    fn contains(&self, id: u64) -> bool {
        self.lock().contains_key(&id)
    }
}

/// A point in a model's latent space: one flattened W+ latent.
pub(super) struct Latent {
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
pub(super) struct EditEntry {
    /// The handle id of the model.
    pub model_id: u64,
    /// That model.
    pub model: Arc<Model>,
    /// The edit's state.
    pub edit: Mutex<Edit>,
    /// Latents' projections on the edit's direction, by latent id
    /// (eo_edit_alphas).
    pub alphas: Mutex<AlphaTable<u64>>,
}

impl EditEntry {
    /// An edit of model `model_id`, with nothing cached yet.
    pub fn new(model_id: u64, model: Arc<Model>, edit: Edit) -> Self {
        EditEntry { model_id, model, edit: Mutex::new(edit), alphas: Mutex::default() }
    }

    /// The edit, locked. Edit methods replace the state only after they
    /// succeed, so a panic mid-call leaves a consistent edit behind the
    /// poisoned lock.
    pub fn lock(&self) -> MutexGuard<'_, Edit> {
        self.edit.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A map keyed by handle id.
pub(super) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// The handle tables the C API hands ids out of.
pub(super) struct Handles {
    /// Loaded models.
    pub models: HandleTable<Model>,
    /// Latents.
    pub latents: HandleTable<Latent>,
    /// Edits.
    pub edits: HandleTable<EditEntry>,
    /// Face detectors; a detector's tensors are not shared between
    /// threads, so each is locked for one detection at a time.
    pub detectors: HandleTable<Mutex<Detector>>,
    /// The base model id of each tuned model id: a tuned model shares its
    /// base's latent space, so their latents and edits mix.
    tuned_bases: Mutex<IdMap<u64>>,
}

static HANDLES: Lazy<Handles> = Lazy::new(|| Handles {
    models: HandleTable::new(Kind::Model),
    latents: HandleTable::new(Kind::Latent),
    edits: HandleTable::new(Kind::Edit),
    detectors: HandleTable::new(Kind::Detector),
    tuned_bases: Mutex::new(IdMap::default()),
});

/// The handle tables, with the engine started (with defaults if the host
/// did not call eo_init): every call that touches a handle needs it.
pub(super) fn handles() -> Result<&'static Handles> {
    Engine::get()?;
    Ok(&HANDLES)
}

impl Handles {
    /// Records that model `tuned` was tuned from model `base`.
    pub fn set_latent_space(&self, tuned: u64, base: u64) {
        self.tuned_bases.lock().unwrap_or_else(|p| p.into_inner()).insert(tuned, base);
    }

    /// Whether the models with ids `a` and `b` share a latent space: the
    /// same model, or a model and the models tuned from it.
    pub fn same_latent_space(&self, a: u64, b: u64) -> bool {
        let bases = self.tuned_bases.lock().unwrap_or_else(|p| p.into_inner());
        let space = |id: u64| bases.get(&id).copied().unwrap_or(id);
        space(a) == space(b)
    }

    /// The model `m` names.
    pub fn model(&self, m: eo_model) -> Result<Arc<Model>> {
        self.lookup(&self.models, m.id)
    }

    /// The latent `l` names.
    pub fn latent(&self, l: eo_latent) -> Result<Arc<Latent>> {
        self.lookup(&self.latents, l.id)
    }

    /// The detector `d` names.
    pub fn detector(&self, d: eo_detector) -> Result<Arc<Mutex<Detector>>> {
        self.lookup(&self.detectors, d.id)
    }

    /// The edit `e` names.
    pub fn edit(&self, e: eo_edit) -> Result<Arc<EditEntry>> {
        self.lookup(&self.edits, e.id)
    }

    fn lookup<T>(&self, table: &HandleTable<T>, id: u64) -> Result<Arc<T>> {
        table.get(id).ok_or_else(|| self.wrong_handle(id, table.kind))
    }

    /// Releases `id` from `table`.
    pub fn release<T>(&self, table: &HandleTable<T>, id: u64) -> Result<()> {
        if table.remove(id) {
            Ok(())
        } else {
            Err(self.wrong_handle(id, table.kind))
        }
    }

    /// The error for an id that is not a live `expected`.
    pub fn wrong_handle(&self, id: u64, expected: Kind) -> Error {
        let actual = if id == 0 {
            "id 0, which is never valid".to_string()
        } else if let Some(kind) = self.kind_of(id) {
            format!("handle {id} is a {kind}")
        } else {
            format!("handle {id} was released or never created")
        };
        Error::new(ErrorKind::InvalidHandle, format!("expected a live {expected} handle: {actual}"))
    }

    fn kind_of(&self, id: u64) -> Option<Kind> {
        if self.models.contains(id) {
            Some(Kind::Model)
        } else if self.latents.contains(id) {
            Some(Kind::Latent)
        } else if self.edits.contains(id) {
            Some(Kind::Edit)
        } else if self.detectors.contains(id) {
            Some(Kind::Detector)
        } else {
            None
        }
    }
}
