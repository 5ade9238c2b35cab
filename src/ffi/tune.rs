//! Pivotal tuning: a tuned copy of a model's generator as a model handle
//! of its own, and the latents of its photos bound to it (src/tune.rs).

use super::args::{In, InOut, Options, Out, Str};
use super::handles::{handles, Latent};
use super::latent::register;
use super::{call, eo_latent, eo_model, eo_progress_fn, eo_status, eo_write_flags, existing_of, with_progress};
use crate::error::{Error, ErrorKind, Result};
use crate::invert::Photo;
use crate::model::Model;
use crate::tune::{self, TuneOptions};
use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of eo_model_tune; fill with eo_tune_options_init.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct eo_tune_options {
    /// sizeof(eo_tune_options), set by the init function.
    pub struct_size: u32,
    /// Adam steps (default 100).
    pub steps: u32,
    /// Adam's learning rate (default 2e-4).
    pub learning_rate: f32,
    /// Weight of the locality term (default 0.1; 0 turns it off).
    pub locality_weight: f32,
    /// How far from each pivot toward a random latent the locality term
    /// looks, as a fraction of the way (default 0.5).
    pub locality_reach: f32,
    /// Seed of the locality term's random latents.
    pub seed: u64,
    /// A TorchScript VGG16 (the projector's vgg16.pt) for the paper's LPIPS
    /// plus L2, or NULL for L2 at three scales.
    pub vgg16_path: *const c_char,
    /// Out, optional: n values, each photo's PSNR in dB against its
    /// target after tuning.
    pub psnr: *mut f32,
}

impl Default for eo_tune_options {
    fn default() -> Self {
        let d = TuneOptions::default();
        eo_tune_options {
            struct_size: std::mem::size_of::<Self>() as u32,
            steps: d.steps,
            learning_rate: d.learning_rate as f32,
            locality_weight: d.locality_weight as f32,
            locality_reach: d.locality_reach as f32,
            seed: d.seed,
            vgg16_path: std::ptr::null(),
            psnr: std::ptr::null_mut(),
        }
    }
}

/// Fills `opts` with the defaults.
#[no_mangle]
pub unsafe extern "C" fn eo_tune_options_init(opts: *mut eo_tune_options) -> eo_status {
    // SAFETY: `opts` is NULL or an eo_tune_options (the header).
    let opts = unsafe { Out::new(opts, "opts") };
    call(|| opts.put(eo_tune_options::default()))
}

/// The latents to tune on: live, of model `m`, each inverted from a photo.
fn pivots(m: eo_model, latents: &In<'_, eo_latent>) -> Result<Vec<Arc<Latent>>> {
    let h = handles()?;
    let latents = latents.get()?.iter().map(|l| h.latent(*l)).collect::<Result<Vec<_>>>()?;
    if latents.is_empty() {
        return Err(Error::invalid("n is 0: give the latents of the photos to tune on"));
    }
    for (k, latent) in latents.iter().enumerate() {
        if latent.model_id != m.id {
            return Err(Error::new(ErrorKind::InvalidHandle, format!("latents[{k}] belongs to another model")));
        }
        if latent.photo.is_none() {
            return Err(Error::invalid(format!(
                "latents[{k}] was not inverted from a photo (eo_latent_invert or eo_faces_invert make those)"
            )));
        }
    }
    Ok(latents)
}

/// Registers the tuned model and one latent per pivot bound to it, all or
/// nothing.
fn register_tuned(tuned: Model, pivots: &[Arc<Latent>], out: Out<'_, eo_model>, out_latents: &mut [eo_latent]) -> Result<()> {
    let h = handles()?;
    let tuned = Arc::new(tuned);
    let model = eo_model { id: h.models.insert_shared(tuned.clone()) };
    h.set_latent_space(model.id, pivots[0].model_id);
    let mut made = Vec::with_capacity(pivots.len());
    for pivot in pivots {
        let photo = pivot.photo.as_deref().map(|p| Arc::new(Photo::clone(p)));
        match register(Latent { model_id: model.id, model: tuned.clone(), w: pivot.w.clone(), photo }) {
            Ok(latent) => made.push(latent),
            Err(e) => {
                made.iter().for_each(|l| drop(h.release(&h.latents, l.id)));
                drop(h.release(&h.models, model.id));
                return Err(e);
            }
        }
    }
    out_latents.copy_from_slice(&made);
    out.write(model);
    Ok(())
}

/// Tunes a copy of model `m`'s generator (pivotal tuning, PTI) until it
/// reproduces the photos that latents[0..n] were inverted from
/// (eo_latent_invert, eo_faces_invert; all of model m), while staying
/// close to m elsewhere. `out` receives the tuned model, a model handle of
/// its own that shares m's unchanged tensors (m may be released first);
/// `tuned_latents` receives n latents, the same values and photos, bound
/// to the tuned model, so they and their edits render through it. Edits
/// and presets of m apply to the tuned model's latents and the reverse
/// (the latent space is the same). n is 1 to 256. Progress: ("tune",
/// step, steps). On
/// error or cancel nothing is created and m is unchanged.
#[no_mangle]
pub unsafe extern "C" fn eo_model_tune(
    m: eo_model,
    latents: *const eo_latent,
    n: usize,
    opts: *const eo_tune_options,
    progress: eo_progress_fn,
    user: *mut c_void,
    out: *mut eo_model,
    tuned_latents: *mut eo_latent,
) -> eo_status {
    // SAFETY: `latents` is NULL or n eo_latent, `opts` NULL or an
    // initialised eo_tune_options, `out` NULL or an eo_model,
    // `tuned_latents` NULL or n writable eo_latent (the header).
    let (latents, opts, out, tuned_latents) = unsafe {
        (In::new(latents, n, "latents"), Options::new(opts, "opts"), Out::new(out, "out"), InOut::new(tuned_latents, n, "tuned_latents"))
    };
    call(|| {
        let out = out.required()?;
        let out_latents = tuned_latents.get()?;
        let o = opts.read(eo_tune_options::default())?;
        // SAFETY: the options' pointers are NULL or as the header
        // describes each field (a C string, n floats).
        let (vgg16, psnr) = unsafe { (Str::new(o.vgg16_path, "opts.vgg16_path"), InOut::new(o.psnr, n, "opts.psnr")) };
        let options = TuneOptions {
            steps: o.steps,
            learning_rate: o.learning_rate as f64,
            locality_weight: o.locality_weight as f64,
            locality_reach: o.locality_reach as f64,
            seed: o.seed,
            vgg16: vgg16.optional()?.map(PathBuf::from),
        };
        let psnr = if psnr.is_null() { None } else { Some(psnr.get()?) };
        let model = handles()?.model(m)?;
        let pivots = pivots(m, &latents)?;
        let photos: Vec<&Photo> = pivots.iter().filter_map(|l| l.photo.as_deref()).collect();
        let tuned = with_progress(progress, user, |p| tune::tune(&model, &photos, &options, p))?;
        if let Some(psnr) = psnr {
            let resolution = model.info().resolution as u32;
            for (dst, photo) in psnr.iter_mut().zip(&photos) {
                *dst = crate::invert::psnr(&tuned.render(&[photo.base()])?, &photo.target(resolution)?) as f32;
            }
        }
        register_tuned(tuned, &pivots, out, out_latents)
    })
}

/// eo_model_save_tuned_ex with flags 0: never replaces an existing file.
#[no_mangle]
pub unsafe extern "C" fn eo_model_save_tuned(m: eo_model, path: *const c_char) -> eo_status {
    // SAFETY: the same arguments under the same contract.
    unsafe { eo_model_save_tuned_ex(m, path, 0) }
}

/// Saves a tuned model (from eo_model_tune) to a .safetensors file: only
/// its tuned tensors, with its base's fingerprint, so it loads only over
/// that base (eo_model_load_tuned). Written atomically; an existing file
/// is replaced only with EO_WRITE_REPLACE (otherwise EO_ERR_EXISTS). A
/// model that is not tuned is EO_ERR_INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn eo_model_save_tuned_ex(m: eo_model, path: *const c_char, flags: eo_write_flags) -> eo_status {
    // SAFETY: `path` is NULL or a C string (the header).
    let path = unsafe { Str::new(path, "path") };
    call(|| {
        let existing = existing_of(flags)?;
        let model = handles()?.model(m)?;
        tune::save(&model, Path::new(path.get()?), existing)
    })
}

/// Loads a tuned model file (eo_model_save_tuned) over `base`, the model
/// it was tuned from; `out` receives a tuned model handle, as from
/// eo_model_tune (rebuild its photos' latents on it with eo_latent_from_w_photo
/// or eo_latents_from_faces). A file tuned from another model is
/// EO_ERR_INCOMPATIBLE; a damaged one EO_ERR_FORMAT.
#[no_mangle]
pub unsafe extern "C" fn eo_model_load_tuned(base: eo_model, path: *const c_char, out: *mut eo_model) -> eo_status {
    // SAFETY: `path` is NULL or a C string, `out` NULL or an eo_model (the header).
    let (path, out) = unsafe { (Str::new(path, "path"), Out::new(out, "out")) };
    call(|| {
        let out = out.required()?;
        let h = handles()?;
        let model = tune::load(&*h.model(base)?, Path::new(path.get()?))?;
        let id = h.models.insert(model);
        h.set_latent_space(id, base.id);
        out.write(eo_model { id });
        Ok(())
    })
}

/// Whether `m` is a tuned model: *tuned receives 1 for a model from
/// eo_model_tune or eo_model_load_tuned, 0 otherwise.
#[no_mangle]
pub unsafe extern "C" fn eo_model_is_tuned(m: eo_model, tuned: *mut u32) -> eo_status {
    // SAFETY: `tuned` is NULL or a uint32_t (the header).
    let tuned = unsafe { Out::new(tuned, "tuned") };
    call(|| {
        let tuned = tuned.required()?;
        tuned.write(handles()?.model(m)?.tuned_from().is_some() as u32);
        Ok(())
    })
}
