//! One browser tab's editing session: the example and batch latents, the
//! current edit, a background renderer that streams images as they finish,
//! and the long tasks (optimise, drag) with progress and cancellation.
//!
//! Faces of photos are items like any other; besides their tiles, the
//! session shows each photo they came from with all its faces edited (a
//! "photo" slot), composited in one call after every change.

use crate::events::Hub;
use crate::items::{Item, Picture};
use crate::refusal::Refusal;
use crate::render::{Background, Renderer};
use editone::edit::drag::{self, DragOptions, Point};
use editone::edit::sefa::Direction;
use editone::edit::{Edit, LatentShape, OptimizeOptions, Transfer};
use editone::faces::PasteMode;
use editone::invert::{Photo, RenderMode};
use editone::model::Model;
use editone::{Error, ErrorKind};
use serde_json::{json, Value};
use std::cell::Cell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::{Duration, Instant};

/// Batch images rendered per call after the example, which goes alone so
/// that it shows first.
const RENDER_CHUNK: usize = 4;

/// The API's name of a transfer mode (the paper's comparison).
pub fn parse_transfer(name: &str) -> Option<Transfer> {
    match name {
        "editone" => Some(Transfer::Editone),
        "naive" => Some(Transfer::Naive),
        "unscaled" => Some(Transfer::Unscaled),
        _ => None,
    }
}

/// The API's name of a paste mode.
pub fn parse_paste(name: &str) -> Option<PasteMode> {
    match name {
        "residual" => Some(PasteMode::Residual),
        "plain" => Some(PasteMode::Plain),
        _ => None,
    }
}

fn paste_name(paste: PasteMode) -> &'static str {
    match paste {
        PasteMode::Residual => "residual",
        PasteMode::Plain => "plain",
    }
}

fn transfer_name(mode: Transfer) -> &'static str {
    match mode {
        Transfer::Editone => "editone",
        Transfer::Naive => "naive",
        Transfer::Unscaled => "unscaled",
    }
}

/// An image position: the example, batch image i, or photo j (a photo
/// of the folder with all of its faces in the session edited).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The example.
    Example,
    /// Batch image i.
    Batch(usize),
    /// Photo j, composited.
    Photo(usize),
}

impl Slot {
    fn to_json(self) -> Value {
        match self {
            Slot::Example => json!("example"),
            Slot::Batch(i) => json!(i),
            Slot::Photo(j) => json!(format!("photo-{j}")),
        }
    }
}

/// A photo whose faces are items of the session.
struct Group {
    picture: Arc<Picture>,
    /// The slots of its faces in the session, in face order.
    faces: Vec<Slot>,
}

/// The models of a session: one latent space, one or two generators.
pub struct Models {
    /// The studio's model: the session's latents, directions, d* and
    /// presets are its.
    pub edits: Arc<Model>,
    /// The model the session's images render through, and the example is
    /// dragged on: `edits` itself, or (`--folder --tune`) the generator
    /// tuned from it on the folder's photos, which renders their latents
    /// as the photos look.
    pub renders: Arc<Model>,
}

/// The long operations; one runs at a time per session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Computing d*.
    Optimize,
    /// A DragGAN drag of the example.
    Drag,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Optimize => "optimize",
            Task::Drag => "drag",
        }
    }
}

struct State {
    edit: Option<Edit>,
    mode: Transfer,
    /// How faces are drawn into their photos and tiles.
    paste: PasteMode,
    /// Bumped by every change that alters pixels.
    version: u64,
    busy: Option<Task>,
    closed: bool,
    /// How far the background rendering of a version has come.
    rendered: Progress,
}

/// The background rendering of one version: the turns of the session's
/// plan before `next` are done.
#[derive(Clone, Copy)]
struct Progress {
    version: u64,
    next: usize,
}

/// A rendered PNG and the state version it shows.
#[derive(Clone)]
struct Rendered {
    version: u64,
    png: Arc<Vec<u8>>,
}

/// What a slot shows under one state.
enum Shown {
    /// An item: its latent.
    Latent(Vec<f32>),
    /// A photo: the latents of its faces, in the order of its group.
    Faces(Vec<Vec<f32>>),
}

/// What every slot shows under one state.
struct Snapshot {
    version: u64,
    paste: PasteMode,
    slots: Vec<(Slot, Shown)>,
}

/// One tab's session. Shared by the connections, the render thread and the
/// task thread; all mutable state sits behind `state`.
pub struct Session {
    /// Random, unguessable id.
    pub id: String,
    /// Itself, for the render queue, which holds sessions weakly so that a
    /// closed session's memory goes as soon as its last request ends.
    me: Weak<Session>,
    renderer: Arc<Renderer>,
    /// In the render queue (at most once).
    queued: AtomicBool,
    /// When a request last named this session.
    last_used: Mutex<Instant>,
    models: Models,
    directions: Arc<Vec<Direction>>,
    example: Arc<Item>,
    batch: Vec<Arc<Item>>,
    /// The photos the session's faces come from.
    photos: Vec<Group>,
    /// The background rendering's turns, in order: the example alone (it
    /// shows first), each photo alone (what a user watches while moving
    /// the slider), then the batch [`RENDER_CHUNK`] images at a time.
    plan: Vec<Vec<Slot>>,
    state: Mutex<State>,
    images: Mutex<HashMap<Slot, Rendered>>,
    cancel: AtomicBool,
    /// Server-Sent Events subscribers.
    pub events: Hub,
}

impl Session {
    /// A session on `items` (the example first, then the batch), whose
    /// images `renderer` starts rendering.
    pub fn start(
        id: String,
        models: Models,
        directions: Arc<Vec<Direction>>,
        renderer: Arc<Renderer>,
        mut items: Vec<Arc<Item>>,
    ) -> Result<Arc<Session>, Refusal> {
        if items.len() < 2 {
            return Err(Refusal::new(400, "a session needs an example and at least one batch image"));
        }
        let batch = items.split_off(1);
        let example = items.remove(0);
        let slots = std::iter::once((Slot::Example, &example)).chain(batch.iter().enumerate().map(|(i, item)| (Slot::Batch(i), item)));
        let mut photos: Vec<Group> = Vec::new();
        for (slot, item) in slots {
            let Some(face) = &item.face else { continue };
            match photos.iter_mut().find(|g| Arc::ptr_eq(&g.picture, &face.picture)) {
                Some(group) => group.faces.push(slot),
                None => photos.push(Group { picture: Arc::clone(&face.picture), faces: vec![slot] }),
            }
        }
        let plan = std::iter::once(vec![Slot::Example])
            .chain((0..photos.len()).map(|j| vec![Slot::Photo(j)]))
            .chain((0..batch.len()).collect::<Vec<_>>().chunks(RENDER_CHUNK).map(|c| c.iter().map(|&i| Slot::Batch(i)).collect()))
            .collect();
        let session = Arc::new_cyclic(|me| Session {
            id,
            me: me.clone(),
            renderer,
            queued: AtomicBool::new(false),
            last_used: Mutex::new(Instant::now()),
            models,
            directions,
            example,
            batch,
            photos,
            plan,
            state: Mutex::new(State {
                edit: None,
                mode: Transfer::Editone,
                paste: PasteMode::Residual,
                version: 0,
                busy: None,
                closed: false,
                rendered: Progress { version: 0, next: 0 },
            }),
            images: Mutex::new(HashMap::new()),
            cancel: AtomicBool::new(false),
            events: Hub::default(),
        });
        session.wake();
        Ok(session)
    }

    /// Notes that a request named this session.
    pub fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// When a request last named this session.
    pub fn last_used(&self) -> Instant {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether closing this session would take nothing from anyone: no
    /// page listens to it, no task runs, and no request named it for
    /// `quiet`. An open tab keeps its event stream, so it is never idle.
    pub fn is_idle(&self, quiet: Duration) -> bool {
        let unused = self.last_used().elapsed() >= quiet;
        unused && self.lock().busy.is_none() && !self.events.has_streams()
    }

    /// The reply to POST /api/sessions.
    pub fn describe(&self) -> Value {
        let directions: Vec<Value> =
            (0..self.directions.len()).map(|i| json!({"index": i, "label": format!("SeFa {}", i + 1)})).collect();
        json!({
            "session": self.id,
            "resolution": self.resolution(),
            "count": self.batch.len(),
            "example_label": self.example.label,
            "labels": self.batch.iter().map(|item| &item.label).collect::<Vec<_>>(),
            // Seeds, when the images are seeds (for `editone apply --seeds`).
            "example_seed": self.example.key.get("seed"),
            "seeds": self.batch.iter().map(|item| item.key.get("seed")).collect::<Option<Vec<_>>>(),
            "directions": directions,
            "photos": self.photos_json(),
            "state": self.state_json(),
        })
    }

    /// The photos the session's faces come from, as the page shows them:
    /// each face's box is the part of the photo its edit may change.
    fn photos_json(&self) -> Value {
        let photos: Vec<Value> = self
            .photos
            .iter()
            .enumerate()
            .map(|(j, group)| {
                let picture = &group.picture;
                let faces: Vec<Value> = group
                    .faces
                    .iter()
                    .map(|&slot| {
                        let item = self.item(slot);
                        let face = item.face.as_ref().expect("groups hold faces");
                        let [x, y, w, h] = face.shown.crop;
                        json!({"slot": slot.to_json(), "label": item.label, "number": face.number, "box": [x, y, x + w, y + h]})
                    })
                    .collect();
                json!({
                    "slot": Slot::Photo(j).to_json(),
                    "name": picture.name,
                    "width": picture.display.width(),
                    "height": picture.display.height(),
                    "size": [picture.size.0, picture.size.1],
                    "faces_found": picture.faces_found,
                    "faces": faces,
                })
            })
            .collect();
        json!(photos)
    }

    /// STATE (docs/studio-api.md).
    pub fn state_json(&self) -> Value {
        let state = self.lock();
        let alphas = state.edit.as_ref().map(|edit| self.alphas(edit));
        json!({
            "version": state.version,
            "mode": transfer_name(state.mode),
            "paste": paste_name(state.paste),
            "strength": state.edit.as_ref().map(Edit::strength),
            "has_edit": state.edit.is_some(),
            "optimized": state.edit.as_ref().is_some_and(|e| e.optimized().is_some()),
            "busy": state.busy.map(Task::name),
            "alphas": alphas,
        })
    }

    /// alpha_i of every batch image under `edit`.
    fn alphas(&self, edit: &Edit) -> Vec<f64> {
        self.batch.iter().map(|item| edit.alpha(&item.w).expect("batch latents have the model's shape")).collect()
    }

    /// The model's resolution.
    pub fn resolution(&self) -> usize {
        self.models.edits.info().resolution
    }

    /// Stops rendering and any task; event streams end.
    pub fn close(&self) {
        self.lock().closed = true;
        self.cancel.store(true, Ordering::Relaxed);
        self.events.close();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave State half-changed: every update
        // is a plain assignment, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bumps the version after a change, queues the rendering and tells
    /// the page; `state` is released first so that STATE can be read.
    fn changed(&self, mut state: MutexGuard<'_, State>) {
        state.version += 1;
        drop(state);
        self.wake();
        self.events.send("state", &self.state_json());
    }

    /// Queues this session's background rendering unless it is queued.
    fn wake(&self) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            self.renderer.wake(self.me.clone());
        }
    }

    /// The edit becomes SeFa direction `index` at `strength` (naive).
    pub fn set_direction(&self, index: usize, strength: f64) -> Result<(), Refusal> {
        let direction = self
            .directions
            .get(index)
            .ok_or_else(|| Refusal::new(400, format!("direction {index} does not exist (0 to {})", self.directions.len() - 1)))?;
        check_strength(strength)?;
        let info = self.models.edits.info();
        let shape = LatentShape::of(info);
        let edit = Edit::from_direction(shape, &self.example.w, &direction.vector, strength as f32)?;
        let mut state = self.lock();
        if let Some(task) = state.busy {
            return Err(Refusal::new(409, format!("a {} task is running; cancel it first", task.name())));
        }
        state.edit = Some(edit);
        self.changed(state);
        Ok(())
    }

    /// Sets the example's strength; every alpha_i moves by the same amount.
    pub fn set_strength(&self, strength: f64) -> Result<(), Refusal> {
        check_strength(strength)?;
        let mut state = self.lock();
        let edit = state.edit.as_mut().ok_or_else(|| Refusal::new(409, "there is no edit yet: pick a direction or drag"))?;
        edit.set_strength(strength)?;
        self.changed(state);
        Ok(())
    }

    /// Switches between the method and its baselines.
    pub fn set_mode(&self, mode: Transfer) {
        let mut state = self.lock();
        state.mode = mode;
        self.changed(state);
    }

    /// Switches how faces are drawn: the edit's change on the photo, or the
    /// generator's face.
    pub fn set_paste(&self, paste: PasteMode) {
        let mut state = self.lock();
        state.paste = paste;
        self.changed(state);
    }

    /// Asks the running task to stop; false when none runs.
    pub fn cancel(&self) -> bool {
        let running = self.lock().busy.is_some();
        if running {
            self.cancel.store(true, Ordering::Relaxed);
        }
        running
    }

    /// Starts computing d* for the current edit with the interactive
    /// settings and `iterations` steps at most.
    pub fn start_optimize(self: &Arc<Self>, iterations: u32) -> Result<(), Refusal> {
        let edit = self.lock().edit.clone().ok_or_else(|| Refusal::new(409, "there is no edit to optimise yet"))?;
        let options = OptimizeOptions { iterations, ..OptimizeOptions::fast() };
        self.start_task(Task::Optimize, move |session, progress| {
            let mut edit = edit;
            let loss = Cell::new(None);
            let mut on_loss = |_step: u32, value: f64| loss.set(Some(value));
            let mut report = |_: &str, step: u64, total: u64| progress(step, total, loss.get());
            edit.optimize_observed(&session.models.edits, &options, Some(&mut report), Some(&mut on_loss))?;
            Ok(edit)
        })
    }

    /// Starts a drag of the example from `handles` to `targets` (model
    /// pixels); the edit becomes example to dragged.
    pub fn start_drag(self: &Arc<Self>, handles: Vec<Point>, targets: Vec<Point>, steps: u32) -> Result<(), Refusal> {
        let res = self.resolution() as f64;
        let inside = |p: &Point| (0.0..res).contains(&p.x) && (0.0..res).contains(&p.y);
        if let Some(p) = handles.iter().chain(&targets).find(|p| !inside(p)) {
            return Err(Refusal::new(400, format!("point ({}, {}) lies outside the {res}x{res} image", p.x, p.y)));
        }
        let options = DragOptions { max_steps: steps, ..DragOptions::default() };
        self.start_task(Task::Drag, move |session, progress| {
            let mut report = |_: &str, step: u64, total: u64| progress(step, total, None);
            let (edit, _) =
                drag::edit_from_drag(&session.models.renders, &session.example.w, &handles, &targets, &options, Some(&mut report), None)?;
            Ok(edit)
        })
    }

    /// Runs `work` on its own thread as the session's one task. Progress
    /// goes to the page as events; on success the edit it returns replaces
    /// the current one, otherwise the edit stays as it was.
    fn start_task<F>(self: &Arc<Self>, task: Task, work: F) -> Result<(), Refusal>
    where
        F: FnOnce(&Session, &mut dyn FnMut(u64, u64, Option<f64>) -> bool) -> Result<Edit, Error> + Send + 'static,
    {
        let mut state = self.lock();
        if let Some(running) = state.busy {
            return Err(Refusal::new(409, format!("a {} task is already running", running.name())));
        }
        state.busy = Some(task);
        self.cancel.store(false, Ordering::Relaxed);
        drop(state);
        self.events.send("state", &self.state_json());
        let session = Arc::clone(self);
        thread::Builder::new()
            .name(format!("{}-{}", task.name(), &self.id[..8]))
            .spawn(move || {
                let mut progress = |step: u64, total: u64, loss: Option<f64>| {
                    session.events.send("progress", &json!({"task": task.name(), "step": step, "total": total, "loss": loss}));
                    !session.cancel.load(Ordering::Relaxed)
                };
                let outcome = work(&session, &mut progress);
                session.finish(task, outcome);
            })
            .map_err(|e| {
                self.lock().busy = None;
                Refusal::new(500, format!("cannot start the task: {e}"))
            })?;
        Ok(())
    }

    /// Ends the task: a new edit changes the pixels (a new version); a
    /// cancelled or failed task leaves them, and `done` carries STATE.
    fn finish(&self, task: Task, outcome: Result<Edit, Error>) {
        let mut state = self.lock();
        state.busy = None;
        let (cancelled, error) = match outcome {
            Ok(edit) => {
                state.edit = Some(edit);
                self.changed(state);
                (false, None)
            }
            Err(e) => {
                drop(state);
                let cancelled = e.kind == ErrorKind::Cancelled;
                (cancelled, (!cancelled).then(|| e.to_string()))
            }
        };
        self.events.send("done", &json!({"task": task.name(), "cancelled": cancelled, "error": error, "state": self.state_json()}));
    }

    /// What `slot` shows under `state`.
    fn shown(&self, state: &State, slot: Slot) -> Shown {
        let edit = |w: &[f32]| edited(state.edit.as_ref(), state.mode, w);
        match slot {
            Slot::Photo(j) => Shown::Faces(self.photos[j].faces.iter().map(|&face| edit(&self.item(face).w)).collect()),
            _ => Shown::Latent(edit(&self.item(slot).w)),
        }
    }

    /// What every slot shows under the current state.
    fn snapshot(&self, state: &State) -> Snapshot {
        let slots = std::iter::once(Slot::Example)
            .chain((0..self.batch.len()).map(Slot::Batch))
            .chain((0..self.photos.len()).map(Slot::Photo));
        Snapshot { version: state.version, paste: state.paste, slots: slots.map(|slot| (slot, self.shown(state, slot))).collect() }
    }

    /// The item of an example or batch slot (a photo slot is none).
    fn item(&self, slot: Slot) -> &Item {
        match slot {
            Slot::Example => &self.example,
            Slot::Batch(i) => &self.batch[i],
            Slot::Photo(_) => unreachable!("a photo slot shows several items"),
        }
    }

    /// PNGs of `slots`: the items' latents in one render (through the
    /// session's rendering model), then, with `paste` residual,
    /// - a whole photo gets the edit as a residual at its own size (the
    ///   example's cropped to the square the model sees, so that drag
    ///   points map onto it);
    /// - a face gets it on its aligned crop, the face as the model sees
    ///   it, so that drag points on the example are model pixels;
    ///
    /// and with `paste` plain, both are the generator's render. A photo
    /// slot is the photo with all its faces' edits pasted in `paste` mode,
    /// at display size, or at full size when `full` (the export).
    fn render_pngs(&self, slots: &[(Slot, Shown)], paste: PasteMode, full: bool) -> Result<Vec<Vec<u8>>, Error> {
        let latents: Vec<&[f32]> = slots
            .iter()
            .filter_map(|(_, shown)| match shown {
                Shown::Latent(w) => Some(w.as_slice()),
                Shown::Faces(_) => None,
            })
            .collect();
        // Pixels, and the photos' residuals, are made on the engine's device.
        let renders = if latents.is_empty() { None } else { Some(self.models.renders.render_on_device(&latents)?) };
        let plain = match &renders {
            Some(renders) => editone::render::to_images(renders)?,
            None => Vec::new(),
        };
        let mut plain = plain.into_iter();
        let mut next = 0;
        let mut pngs = Vec::with_capacity(slots.len());
        for (slot, shown) in slots {
            let png = match shown {
                Shown::Faces(latents) => {
                    let Slot::Photo(j) = *slot else { unreachable!("only photo slots show faces") };
                    self.photo_png(j, latents, paste, full)?
                }
                Shown::Latent(_) => {
                    let render = renders.as_ref().expect("rendered above").get(next);
                    next += 1;
                    let plain = plain.next().expect("one picture per latent");
                    encode_png(&self.item_picture(*slot, &render, plain, paste)?)?
                }
            };
            pngs.push(png);
        }
        Ok(pngs)
    }

    /// The picture of an item whose edited latent rendered as `render`
    /// ([C, R, R]) and `plain`, in `paste` mode.
    fn item_picture(&self, slot: Slot, render: &tch::Tensor, plain: image::DynamicImage, paste: PasteMode) -> Result<image::DynamicImage, Error> {
        let item = self.item(slot);
        let mode = match paste {
            PasteMode::Residual => RenderMode::Auto,
            PasteMode::Plain => RenderMode::Plain,
        };
        let Some(photo) = mode.photo(item.photo.as_ref())? else { return Ok(plain) };
        if let Some(face) = &item.face {
            let r = self.resolution() as i64;
            let aligned = tch::Tensor::from_slice(&face.aligned).view([3, r, r]).to_device(render.device());
            let change = render.to_kind(tch::Kind::Float) - photo.base_render(&self.models.renders)?.to_kind(tch::Kind::Float);
            return editone::render::to_image(&(aligned + change).clamp(-1.0, 1.0));
        }
        let full = photo.residual(&self.models.renders, render)?;
        let [x, y, w, h] = photo.crop;
        let shown = if slot == Slot::Example { image::imageops::crop_imm(&full, x, y, w, h).to_image() } else { full };
        Ok(image::DynamicImage::ImageRgb8(shown))
    }

    /// Photo `j` with each face's edited latent (`latents`, in the group's
    /// order) composited in one call: on the display copy, or on the photo
    /// itself when `full`.
    fn photo_png(&self, j: usize, latents: &[Vec<f32>], paste: PasteMode, full: bool) -> Result<Vec<u8>, Error> {
        let faces: Vec<(&Photo, &[f32])> = self.photos[j]
            .faces
            .iter()
            .zip(latents)
            .map(|(&slot, w)| {
                let item = self.item(slot);
                let face = item.face.as_ref().expect("groups hold faces");
                let photo = if full { item.photo.as_ref().expect("a face has its photo") } else { &face.shown };
                (photo, w.as_slice())
            })
            .collect();
        let picture = editone::faces::render_photo(&self.models.renders, &faces, paste)?;
        encode_png_fast(&picture)
    }

    /// Whether the newest version has turns left to render.
    fn render_pending(&self, state: &State) -> bool {
        !state.closed && (state.rendered.version != state.version || state.rendered.next < self.plan.len())
    }
}

impl Background for Session {
    /// One turn of background rendering, on the render thread: the next
    /// turn of the plan for the newest version, each image announced when
    /// stored. A newer version abandons an older one; a failed render is
    /// not retried until something changes.
    fn render_step(&self) {
        let (version, paste, chunk) = {
            let mut state = self.lock();
            if !self.render_pending(&state) {
                return;
            }
            if state.rendered.version != state.version {
                state.rendered = Progress { version: state.version, next: 0 };
            }
            let chunk: Vec<(Slot, Shown)> = self.plan[state.rendered.next].iter().map(|&slot| (slot, self.shown(&state, slot))).collect();
            (state.version, state.paste, chunk)
        };
        let ok = self.render_chunk(&chunk, version, paste);
        let mut state = self.lock();
        if state.rendered.version == version {
            state.rendered.next = if ok { state.rendered.next + 1 } else { usize::MAX };
        }
    }

    /// After a turn: queues the session again while the newest version has
    /// slots left. The flag is cleared first, so that a change made during
    /// the turn is never missed.
    fn render_turn_over(&self) {
        self.queued.store(false, Ordering::SeqCst);
        let pending = self.render_pending(&self.lock());
        if pending {
            self.wake();
        }
    }
}

impl Session {
    /// Renders and stores one chunk; false (after telling the page) when
    /// rendering failed.
    fn render_chunk(&self, chunk: &[(Slot, Shown)], version: u64, paste: PasteMode) -> bool {
        let rendered = catch_unwind(AssertUnwindSafe(|| self.render_pngs(chunk, paste, false)))
            .unwrap_or_else(|p| Err(Error::new(ErrorKind::Internal, editone::error::panic_message(&*p))));
        match rendered {
            Ok(pngs) => {
                for ((slot, _), png) in chunk.iter().zip(pngs) {
                    self.store(*slot, version, Arc::new(png));
                    self.events.send("image", &json!({"slot": slot.to_json(), "version": version}));
                }
                true
            }
            Err(e) => {
                self.events.send("error", &json!({"error": e.to_string()}));
                false
            }
        }
    }

    fn store(&self, slot: Slot, version: u64, png: Arc<Vec<u8>>) {
        let mut images = self.images.lock().unwrap_or_else(|p| p.into_inner());
        if images.get(&slot).is_none_or(|r| r.version < version) {
            images.insert(slot, Rendered { version, png });
        }
    }

    /// The stored PNG of `slot` if it shows version `at_least` or later
    /// (default: the current version), else None: then [`Self::render_now`]
    /// makes it. Pages ask for the version an `image` event announced,
    /// which the renderer has stored, so a slider that has already moved on
    /// does not make them wait for a render.
    pub fn stored_image(&self, slot: Slot, at_least: Option<u64>) -> Result<Option<Arc<Vec<u8>>>, Refusal> {
        match slot {
            Slot::Batch(i) if i >= self.batch.len() => {
                return Err(Refusal::new(404, format!("there is no batch image {i} (0 to {})", self.batch.len() - 1)));
            }
            Slot::Photo(j) if j >= self.photos.len() => {
                let have = match self.photos.len() {
                    0 => "this session has no photos of faces".to_string(),
                    n => format!("0 to {}", n - 1),
                };
                return Err(Refusal::new(404, format!("there is no photo {j} ({have})")));
            }
            _ => {}
        }
        let version = self.lock().version;
        let images = self.images.lock().unwrap_or_else(|p| p.into_inner());
        Ok(images.get(&slot).filter(|r| r.version >= at_least.unwrap_or(version).min(version)).map(|r| Arc::clone(&r.png)))
    }

    /// The current state's PNG of `slot`, rendered now; for the render
    /// thread.
    pub fn render_now(&self, slot: Slot) -> Result<Arc<Vec<u8>>, Refusal> {
        let (version, paste, shown) = {
            let state = self.lock();
            (state.version, state.paste, self.shown(&state, slot))
        };
        let png = Arc::new(self.render_pngs(&[(slot, shown)], paste, false)?.remove(0));
        self.store(slot, version, Arc::clone(&png));
        Ok(png)
    }

    /// Every image of the current state as (file name, PNG), plus the
    /// alphas as JSON, for the zip export; for the render thread. Photos of
    /// faces come at full size, as `photos/NAME.png`.
    pub fn export(&self) -> Result<Vec<(String, Vec<u8>)>, Refusal> {
        let (snapshot, alphas, mode) = {
            let state = self.lock();
            (self.snapshot(&state), state.edit.as_ref().map(|e| self.alphas(e)), state.mode)
        };
        let mut pngs = Vec::with_capacity(snapshot.slots.len());
        for (slot, shown) in snapshot.slots {
            if let Slot::Photo(_) = slot {
                // The page's copy is display-sized.
                pngs.push(self.render_pngs(&[(slot, shown)], snapshot.paste, true)?.remove(0));
                continue;
            }
            // The renderer has usually stored this version already.
            let stored = self.images.lock().unwrap_or_else(|p| p.into_inner()).get(&slot).cloned();
            match stored {
                Some(r) if r.version == snapshot.version => pngs.push(r.png.to_vec()),
                _ => pngs.push(self.render_pngs(&[(slot, shown)], snapshot.paste, false)?.remove(0)),
            }
        }
        let names = std::iter::once("example.png".to_string())
            .chain(self.batch.iter().map(|item| format!("{}.png", item.file_stem)))
            .chain(self.photos.iter().map(|group| format!("photos/{}.png", group.picture.name)));
        let mut files: Vec<(String, Vec<u8>)> = names.zip(pngs).collect();
        let table: Vec<Value> = self
            .batch
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut row = item.key.clone();
                row["alpha"] = json!(alphas.as_ref().map(|a| a[i]));
                row
            })
            .collect();
        let meta = json!({"mode": transfer_name(mode), "example": self.example.key, "alphas": table});
        files.push(("alphas.json".into(), serde_json::to_vec_pretty(&meta).expect("JSON values serialise")));
        Ok(files)
    }

    /// The edit as a preset file.
    pub fn preset(&self) -> Result<String, Refusal> {
        let state = self.lock();
        let edit = state.edit.as_ref().ok_or_else(|| Refusal::new(409, "there is no edit to save yet"))?;
        Ok(editone::edit::preset::to_json(edit, &self.models.edits)?)
    }
}

fn check_strength(strength: f64) -> Result<(), Refusal> {
    if strength.is_finite() && strength.abs() <= 100.0 {
        Ok(())
    } else {
        Err(Refusal::new(400, format!("strength {strength} must be finite and at most 100 in absolute value")))
    }
}

/// Where `w` ends under `edit` in `mode`; the example is treated like any
/// batch image, so in editone mode it lands at its own strength.
fn edited(edit: Option<&Edit>, mode: Transfer, w: &[f32]) -> Vec<f32> {
    let Some(edit) = edit else { return w.to_vec() };
    edit.transfer(mode, w).expect("latents have the model's shape").0
}

/// A composited photo as PNG, compressed for speed: a slider step encodes
/// one per photo, up to [`crate::items::DISPLAY_SIDE`] a side (the export
/// at full size).
fn encode_png_fast(image: &image::RgbImage) -> Result<Vec<u8>, Error> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Adaptive)
        .write_image(image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgb8)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("PNG encoding: {e}")))?;
    Ok(png)
}

fn encode_png(image: &image::DynamicImage) -> Result<Vec<u8>, Error> {
    let mut png = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("PNG encoding: {e}")))?;
    Ok(png.into_inner())
}
