//! Edit entry points: build an edit, optimise d*, set the example's
//! strength, apply to other latents, save and load presets.

use super::args::{In, InOut, Options, Out, Str};
use super::handles::{handles, EditEntry, Latent};
use super::latent::{copy_out, derived_latent, shape_of};
use super::{call, eo_edit, eo_latent, eo_model, eo_progress_fn, eo_status, eo_write_flags, existing_of, with_progress};
use crate::edit::{preset, Edit, Init, Objective, OptimizeOptions, Transfer};
use crate::error::{Error, ErrorKind, Result};
use std::ffi::{c_char, c_void};
use std::path::Path;
use std::sync::Arc;

/// Which loss eo_edit_optimize minimises (EO_OBJECTIVE_*).
pub type eo_objective = u32;
/// The paper: ||G(w0 + dw) - G(w0 + d*)||_2 + lambda |(w0 + d*) . d*| on the example.
pub const EO_OBJECTIVE_PAPER: eo_objective = 0;
/// The authors' demo code: MSE over batch_size seeded latents with random strengths.
pub const EO_OBJECTIVE_BATCH: eo_objective = 1;

/// Where d* starts (EO_INIT_*).
pub type eo_init_mode = u32;
/// Zeros for the paper objective, the naive direction for the batch one.
pub const EO_INIT_AUTO: eo_init_mode = 0;
/// Zeros.
pub const EO_INIT_ZERO: eo_init_mode = 1;
/// The naive direction dw = w0' - w0.
pub const EO_INIT_NAIVE: eo_init_mode = 2;

/// A comparison baseline for eo_edit_apply_baseline (EO_BASELINE_*).
pub type eo_baseline = u32;
/// w_i + dw: the example's offset added to every image.
pub const EO_BASELINE_NAIVE: eo_baseline = 0;
/// w_i + d*: the optimised direction without per-image strength.
pub const EO_BASELINE_UNSCALED: eo_baseline = 1;

/// Options of eo_edit_optimize; fill with eo_optimize_options_init.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct eo_optimize_options {
    /// sizeof(eo_optimize_options), set by the init function.
    pub struct_size: u32,
    /// AdamW steps at most (default 1000).
    pub iterations: u32,
    /// AdamW learning rate (default 1e-3).
    pub learning_rate: f32,
    /// Weight of the hyperplane term (default 0.02).
    pub lambda: f32,
    /// EO_OBJECTIVE_PAPER (default) or EO_OBJECTIVE_BATCH.
    pub objective: eo_objective,
    /// Latents per step for the batch objective, the example included (default 16).
    pub batch_size: u32,
    /// Editable W+ rows: 0 (default) keeps the edit's rows (all unless set
    /// before), k > 0 the first k rows; d* stays exactly zero elsewhere.
    pub edit_rows: u32,
    /// EO_INIT_AUTO (default), EO_INIT_ZERO or EO_INIT_NAIVE.
    pub init: eo_init_mode,
    /// Stop after this many steps without a better loss; 0 never stops early (default 100).
    pub patience: u32,
    /// Seed of the batch objective's latents and strengths (default 0).
    pub seed: u64,
}

impl From<OptimizeOptions> for eo_optimize_options {
    fn from(d: OptimizeOptions) -> Self {
        eo_optimize_options {
            struct_size: std::mem::size_of::<Self>() as u32,
            iterations: d.iterations,
            learning_rate: d.learning_rate as f32,
            lambda: d.lambda as f32,
            objective: match d.objective {
                Objective::Paper => EO_OBJECTIVE_PAPER,
                Objective::Batch => EO_OBJECTIVE_BATCH,
            },
            batch_size: d.batch_size,
            edit_rows: d.edit_rows,
            init: match d.init {
                Init::Auto => EO_INIT_AUTO,
                Init::Zero => EO_INIT_ZERO,
                Init::Naive => EO_INIT_NAIVE,
            },
            patience: d.patience,
            seed: d.seed,
        }
    }
}

impl Default for eo_optimize_options {
    fn default() -> Self {
        OptimizeOptions::default().into()
    }
}

impl eo_optimize_options {
    fn to_options(self) -> Result<OptimizeOptions> {
        let objective = match self.objective {
            EO_OBJECTIVE_PAPER => Objective::Paper,
            EO_OBJECTIVE_BATCH => Objective::Batch,
            other => return Err(Error::invalid(format!("opts.objective {other} is not an EO_OBJECTIVE_* value"))),
        };
        let init = match self.init {
            EO_INIT_AUTO => Init::Auto,
            EO_INIT_ZERO => Init::Zero,
            EO_INIT_NAIVE => Init::Naive,
            other => return Err(Error::invalid(format!("opts.init {other} is not an EO_INIT_* value"))),
        };
        Ok(OptimizeOptions {
            iterations: self.iterations,
            learning_rate: self.learning_rate as f64,
            lambda: self.lambda as f64,
            objective,
            batch_size: self.batch_size,
            edit_rows: self.edit_rows,
            init,
            seed: self.seed,
            patience: self.patience,
        })
    }
}

/// What the last eo_edit_optimize did. Set struct_size before calling
/// eo_edit_report.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct eo_optimize_report {
    /// sizeof(eo_optimize_report), set by the caller.
    pub struct_size: u32,
    /// 1 when d* has been optimised, 0 while the edit uses the naive direction.
    pub optimized: u32,
    /// Steps taken.
    pub iterations: u32,
    /// 1 when it stopped because the loss stopped improving.
    pub stopped_early: u32,
    /// Loss at the first step.
    pub initial_loss: f64,
    /// Best loss; d* is the direction that reached it.
    pub best_loss: f64,
}

/// The latent, checked to belong to the edit's model or one sharing its
/// latent space.
fn latent_for(entry: &EditEntry, l: eo_latent, what: &str) -> Result<Arc<Latent>> {
    let h = handles()?;
    let latent = h.latent(l)?;
    // A model and the models tuned from it share one latent space.
    if !h.same_latent_space(latent.model_id, entry.model_id) {
        return Err(Error::new(
            ErrorKind::InvalidHandle,
            format!("{what} (latent {}) belongs to model {}, the edit to model {}", l.id, latent.model_id, entry.model_id),
        ));
    }
    Ok(latent)
}

/// Registers an edit of `model_id` and writes its handle to `out`.
fn register(model_id: u64, model: Arc<crate::model::Model>, edit: Edit, out: Out<'_, eo_edit>) -> Result<()> {
    out.put(eo_edit { id: handles()?.edits.insert(EditEntry::new(model_id, model, edit)) })
}

/// An edit from the example and its edited state (two latents of one model).
#[no_mangle]
pub unsafe extern "C" fn eo_edit_from_latents(example: eo_latent, edited: eo_latent, out: *mut eo_edit) -> eo_status {
    // SAFETY: `out` is NULL or an eo_edit (the header).
    let out = unsafe { Out::new(out, "out") };
    call(|| {
        let out = out.required()?;
        let h = handles()?;
        let (a, b) = (h.latent(example)?, h.latent(edited)?);
        if a.model_id != b.model_id {
            return Err(Error::new(ErrorKind::InvalidHandle, "example and edited latents belong to different models"));
        }
        let edit = Edit::from_latents(shape_of(&a.model), &a.w, &b.w)?;
        register(a.model_id, a.model.clone(), edit, out)
    })
}

/// An edit that moves the example to w0 + strength * dir (len w_dim or
/// num_ws * w_dim floats; a W-length dir is repeated on every row).
///
/// UNITS: `strength` here multiplies `dir` as given. eo_edit_strength and
/// eo_edit_set_strength measure the example's move as a distance along the
/// unit W+ direction, so they differ by the W+ length of `dir`: a unit
/// W-length dir on a model of R rows gives eo_edit_strength = strength *
/// sqrt(R) (3 on 10 rows reads back as 9.49). To set the same move later,
/// set that read-back value, not `strength`.
#[no_mangle]
pub unsafe extern "C" fn eo_edit_from_direction(
    example: eo_latent,
    dir: *const f32,
    len: usize,
    strength: f32,
    out: *mut eo_edit,
) -> eo_status {
    // SAFETY: `dir` is NULL or `len` floats, `out` NULL or an eo_edit (the header).
    let (dir, out) = unsafe { (In::new(dir, len, "dir"), Out::new(out, "out")) };
    call(|| {
        let out = out.required()?;
        let a = handles()?.latent(example)?;
        let edit = Edit::from_direction(shape_of(&a.model), &a.w, dir.get()?, strength)?;
        register(a.model_id, a.model.clone(), edit, out)
    })
}

/// Continues editing the example: its final state becomes `edited`. Only
/// the final state transfers; d* returns to the naive direction until
/// optimised again.
#[no_mangle]
pub extern "C" fn eo_edit_push_latent(e: eo_edit, edited: eo_latent) -> eo_status {
    call(|| {
        let entry = handles()?.edit(e)?;
        let latent = latent_for(&entry, edited, "edited")?;
        let result = entry.lock().push_latent(&latent.w);
        result
    })
}

/// Continues editing the example: moves its final state by `strength`
/// times `dir` (w_dim or num_ws * w_dim floats), in the units of
/// eo_edit_from_direction, not those of eo_edit_strength.
#[no_mangle]
pub unsafe extern "C" fn eo_edit_push_direction(e: eo_edit, dir: *const f32, len: usize, strength: f32) -> eo_status {
    // SAFETY: `dir` is NULL or `len` floats (the header).
    let dir = unsafe { In::new(dir, len, "dir") };
    call(|| {
        let entry = handles()?.edit(e)?;
        let dir = dir.get()?;
        let result = entry.lock().push_direction(dir, strength);
        result
    })
}

/// Fills `opts` with the paper's defaults.
#[no_mangle]
pub unsafe extern "C" fn eo_optimize_options_init(opts: *mut eo_optimize_options) -> eo_status {
    // SAFETY: `opts` is NULL or an eo_optimize_options (the header).
    let opts = unsafe { Out::new(opts, "opts") };
    call(|| opts.put(eo_optimize_options::default()))
}

/// Fills `opts` with the interactive preset: the paper's objective with
/// learning rate 0.02 and at most 100 steps, stopping after 20 without
/// progress. On the default model it reaches the loss of the paper's 1000
/// steps about 12x sooner.
#[no_mangle]
pub unsafe extern "C" fn eo_optimize_options_init_fast(opts: *mut eo_optimize_options) -> eo_status {
    // SAFETY: `opts` is NULL or an eo_optimize_options (the header).
    let opts = unsafe { Out::new(opts, "opts") };
    call(|| opts.put(OptimizeOptions::fast().into()))
}

/// Computes the globally consistent direction d* (progress stage
/// "optimize", one step per iteration). On error or cancellation the edit
/// is unchanged. NULL opts = defaults.
#[no_mangle]
pub unsafe extern "C" fn eo_edit_optimize(
    e: eo_edit,
    opts: *const eo_optimize_options,
    progress: eo_progress_fn,
    user: *mut c_void,
) -> eo_status {
    // SAFETY: `opts` is NULL or an eo_optimize_options the host
    // initialised (the header).
    let opts = unsafe { Options::new(opts, "opts") };
    call(|| {
        let options = opts.read(eo_optimize_options::default())?.to_options()?;
        let entry = handles()?.edit(e)?;
        let mut edit = entry.lock();
        with_progress(progress, user, |p| edit.optimize(&entry.model, &options, p)).map(|_| ())
    })
}

/// Reports what the last optimisation did (out.struct_size set by the caller).
#[no_mangle]
pub unsafe extern "C" fn eo_edit_report(e: eo_edit, out: *mut eo_optimize_report) -> eo_status {
    // SAFETY: `out` is NULL or an eo_optimize_report whose struct_size the
    // host set (the header).
    let out = unsafe { Out::new(out, "out") };
    call(|| {
        let out = out.required()?;
        let entry = handles()?.edit(e)?;
        let edit = entry.lock();
        let mut report = eo_optimize_report {
            struct_size: std::mem::size_of::<eo_optimize_report>() as u32,
            optimized: 0,
            iterations: 0,
            stopped_early: 0,
            initial_loss: f64::NAN,
            best_loss: f64::NAN,
        };
        if let Some((_, r)) = edit.optimized() {
            report.optimized = 1;
            report.iterations = r.iterations;
            report.stopped_early = r.stopped_early as u32;
            report.initial_loss = r.initial_loss;
            report.best_loss = r.best_loss;
        }
        out.write_sized(report)
    })
}

/// Sets the example's own strength a: the distance the example moves
/// along the edit's unit W+ direction (see eo_edit_from_direction for how
/// it relates to a direction's strength); every image's alpha moves by the
/// same amount (no optimisation runs).
#[no_mangle]
pub extern "C" fn eo_edit_set_strength(e: eo_edit, a: f32) -> eo_status {
    call(|| {
        let entry = handles()?.edit(e)?;
        let result = entry.lock().set_strength(a as f64);
        result
    })
}

/// The example's own strength a: the distance along the edit's unit W+
/// direction (see eo_edit_from_direction on units).
#[no_mangle]
pub unsafe extern "C" fn eo_edit_strength(e: eo_edit, a: *mut f32) -> eo_status {
    // SAFETY: `a` is NULL or a float (the header).
    let a = unsafe { Out::new(a, "a") };
    call(|| {
        let a = a.required()?;
        let strength = handles()?.edit(e)?.lock().strength();
        a.put(strength as f32)
    })
}

/// The unit transfer direction n (num_ws * w_dim floats), like
/// eo_latent_read: with buf NULL only `needed` is set (both NULL is
/// EO_ERR_INVALID_ARGUMENT).
#[no_mangle]
pub unsafe extern "C" fn eo_edit_direction(e: eo_edit, buf: *mut f32, len: usize, needed: *mut usize) -> eo_status {
    // SAFETY: `buf` is NULL or `len` writable floats, `needed` NULL or a
    // size_t (the header).
    let (buf, needed) = unsafe { (InOut::new(buf, len, "buf"), Out::new(needed, "needed")) };
    call(|| {
        let entry = handles()?.edit(e)?;
        let edit = entry.lock();
        copy_out(edit.unit_direction(), buf, needed, "the direction")
    })
}

/// The strength alpha_i = (w0' - w_i) . n this edit gives `target`.
#[no_mangle]
pub unsafe extern "C" fn eo_edit_alpha(e: eo_edit, target: eo_latent, alpha: *mut f32) -> eo_status {
    // SAFETY: `alpha` is NULL or a float (the header).
    let alpha = unsafe { Out::new(alpha, "alpha") };
    call(|| {
        let alpha = alpha.required()?;
        let entry = handles()?.edit(e)?;
        let latent = latent_for(&entry, target, "target")?;
        let value = entry.lock().alpha(&latent.w)?;
        alpha.put(value as f32)
    })
}

/// The strengths alpha_i this edit gives n latents, as eo_edit_alpha does
/// for each, into alphas[0..n]. The edit remembers each latent's
/// projection on its direction, so after eo_edit_set_strength the same
/// call costs one subtraction per latent (a slider over 100,000 images).
/// All or nothing: on error `alphas` is left as it was.
#[no_mangle]
pub unsafe extern "C" fn eo_edit_alphas(e: eo_edit, targets: *const eo_latent, n: usize, alphas: *mut f32) -> eo_status {
    // SAFETY: `targets` is NULL or n latents, `alphas` NULL or n writable
    // floats (the header).
    let (targets, alphas) = unsafe { (In::new(targets, n, "targets"), InOut::new(alphas, n, "alphas")) };
    call(|| {
        let (targets, out) = (targets.get()?, alphas.get()?);
        let entry = handles()?.edit(e)?;
        let edit = entry.lock().clone();
        // Remembered projections skip the latent lookup, so check every
        // handle is still live first.
        let h = handles()?;
        if let Some(id) = h.latents.first_missing(targets.iter().map(|t| &t.id)) {
            let i = targets.iter().position(|t| t.id == id).unwrap_or(0);
            return Err(h.wrong_handle(id, super::handles::Kind::Latent).context(format!("targets[{i}]")));
        }
        let ids: Vec<u64> = targets.iter().map(|t| t.id).collect();
        let mut table = entry.alphas.lock().unwrap_or_else(|p| p.into_inner());
        let result = table.alphas(&edit, &ids, |i| {
            let latent = latent_for(&entry, targets[i], "target").map_err(|e| e.context(format!("targets[{i}]")))?;
            Ok(LatentW(latent))
        })?;
        for (slot, alpha) in out.iter_mut().zip(result) {
            *slot = alpha as f32;
        }
        Ok(())
    })
}

/// A latent handle's floats, for [`crate::edit::AlphaTable`].
struct LatentW(Arc<Latent>);

impl AsRef<[f32]> for LatentW {
    fn as_ref(&self) -> &[f32] {
        &self.0.w
    }
}

/// The edited latent w_i + alpha_i n of `target`, as a new handle.
#[no_mangle]
pub unsafe extern "C" fn eo_edit_apply(e: eo_edit, target: eo_latent, edited: *mut eo_latent) -> eo_status {
    // SAFETY: `edited` is NULL or an eo_latent (the header).
    let edited = unsafe { Out::new(edited, "edited") };
    call(|| transfer_one(e, target, Transfer::Editone, edited))
}

/// `target` edited in `mode`, as a new handle written to `out`.
fn transfer_one(e: eo_edit, target: eo_latent, mode: Transfer, out: Out<'_, eo_latent>) -> Result<()> {
    let out = out.required()?;
    let entry = handles()?.edit(e)?;
    let latent = latent_for(&entry, target, "target")?;
    let (w, _) = entry.lock().transfer(mode, &latent.w)?;
    out.put(derived_latent(&latent, w)?)
}

/// Applies the edit to n latents: edited[i] receives a new handle and
/// alphas[i] (alphas may be NULL) the strength used. All or nothing: on
/// error no handle is created.
#[no_mangle]
pub unsafe extern "C" fn eo_edit_apply_batch(
    e: eo_edit,
    targets: *const eo_latent,
    n: usize,
    edited: *mut eo_latent,
    alphas: *mut f32,
) -> eo_status {
    // SAFETY: `targets` is NULL or n latents, `edited` NULL or n writable
    // latents, `alphas` NULL or n writable floats (the header).
    let (targets, edited, alphas) =
        unsafe { (In::new(targets, n, "targets"), InOut::new(edited, n, "edited"), InOut::new(alphas, n, "alphas")) };
    call(|| {
        let targets = targets.get()?;
        let out = edited.get()?;
        let alphas_out = if alphas.is_null() { None } else { Some(alphas.get()?) };
        let entry = handles()?.edit(e)?;
        let latents = targets
            .iter()
            .enumerate()
            .map(|(i, t)| latent_for(&entry, *t, &format!("targets[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let edit = entry.lock().clone();
        let results = latents.iter().map(|l| edit.apply(&l.w)).collect::<Result<Vec<_>>>()?;
        if let Some(alphas_out) = alphas_out {
            for (slot, (_, alpha)) in alphas_out.iter_mut().zip(&results) {
                *slot = *alpha as f32;
            }
        }
        let created = results
            .into_iter()
            .zip(&latents)
            .map(|((w, _), source)| derived_latent(source, w))
            .collect::<Vec<_>>();
        if let Some(Err(e)) = created.iter().find(|c| c.is_err()) {
            let error = e.clone();
            for latent in created.into_iter().flatten() {
                handles()?.latents.remove(latent.id);
            }
            return Err(error);
        }
        for (slot, latent) in out.iter_mut().zip(created.into_iter().flatten()) {
            *slot = latent;
        }
        Ok(())
    })
}

/// A comparison baseline applied to `target` (EO_BASELINE_NAIVE: w_i + dw;
/// EO_BASELINE_UNSCALED: w_i + d*), as a new handle. After
/// eo_edit_set_strength the offset is scaled by the new strength over the
/// strength the edit was made with, as the example itself moves.
#[no_mangle]
pub unsafe extern "C" fn eo_edit_apply_baseline(
    e: eo_edit,
    target: eo_latent,
    baseline: eo_baseline,
    edited: *mut eo_latent,
) -> eo_status {
    // SAFETY: `edited` is NULL or an eo_latent (the header).
    let edited = unsafe { Out::new(edited, "edited") };
    call(|| {
        let mode = match baseline {
            EO_BASELINE_NAIVE => Transfer::Naive,
            EO_BASELINE_UNSCALED => Transfer::Unscaled,
            other => return Err(Error::invalid(format!("baseline {other} is not an EO_BASELINE_* value"))),
        };
        transfer_one(e, target, mode, edited)
    })
}

/// eo_edit_save_ex with flags 0: never replaces an existing file.
#[no_mangle]
pub unsafe extern "C" fn eo_edit_save(e: eo_edit, path: *const c_char) -> eo_status {
    // SAFETY: the same arguments under the same contract.
    unsafe { eo_edit_save_ex(e, path, 0) }
}

/// Saves the edit as a JSON preset (direction, hyperplane offset, mask,
/// options, model fingerprint), atomically; an existing file is replaced
/// only with EO_WRITE_REPLACE (otherwise EO_ERR_EXISTS).
#[no_mangle]
pub unsafe extern "C" fn eo_edit_save_ex(e: eo_edit, path: *const c_char, flags: eo_write_flags) -> eo_status {
    // SAFETY: `path` is NULL or a C string (the header).
    let path = unsafe { Str::new(path, "path") };
    call(|| {
        let existing = existing_of(flags)?;
        let path = path.get()?;
        let entry = handles()?.edit(e)?;
        let edit = entry.lock().clone();
        preset::save(&edit, &entry.model, Path::new(path), existing)
    })
}

/// Loads a preset for model m. A preset made for another model gives
/// EO_ERR_INCOMPATIBLE; a malformed one EO_ERR_FORMAT.
#[no_mangle]
pub unsafe extern "C" fn eo_edit_load(m: eo_model, path: *const c_char, out: *mut eo_edit) -> eo_status {
    // SAFETY: `path` is NULL or a C string, `out` NULL or an eo_edit (the header).
    let (path, out) = unsafe { (Str::new(path, "path"), Out::new(out, "out")) };
    call(|| {
        let out = out.required()?;
        let path = path.get()?;
        let model = handles()?.model(m)?;
        let edit = preset::load(&model, Path::new(path))?;
        register(m.id, model, edit, out)
    })
}

/// Releases an edit.
#[no_mangle]
pub extern "C" fn eo_edit_release(e: eo_edit) -> eo_status {
    call(|| {
        let h = handles()?;
        h.release(&h.edits, e.id)
    })
}
