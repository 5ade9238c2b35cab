//! Latent entry points.

use super::{call, eo_latent, eo_model, eo_status, handles, require_out, slice_arg, write_out};
use crate::edit::LatentShape;
use crate::engine::Latent;
use crate::error::{Error, Result};
use std::sync::Arc;

/// The latent shape of a model.
pub(super) fn shape_of(model: &crate::model::Model) -> LatentShape {
    LatentShape { num_ws: model.info().num_ws, w_dim: model.info().w_dim }
}

/// Registers a new latent of model `model_id` and returns its handle.
pub(super) fn new_latent(model_id: u64, model: Arc<crate::model::Model>, w: Vec<f32>) -> Result<eo_latent> {
    register(Latent { model_id, model, w, photo: None })
}

/// Registers `latent` and returns its handle.
pub(super) fn register(latent: Latent) -> Result<eo_latent> {
    Ok(eo_latent { id: handles()?.latents.insert(latent) })
}

/// A new latent `w` derived from `source` (an edit of it): same model, and
/// the same photo, so residual rendering keeps the photo's detail.
pub(super) fn derived_latent(source: &Latent, w: Vec<f32>) -> Result<eo_latent> {
    register(Latent { model_id: source.model_id, model: source.model.clone(), w, photo: source.photo.clone() })
}

fn from_seed(m: eo_model, seed: u64, class: Option<usize>, psi: f32, out: *mut eo_latent) -> Result<()> {
    require_out(out, "out")?;
    if !psi.is_finite() {
        return Err(Error::invalid("truncation_psi must be finite"));
    }
    let model = handles()?.model(m.id)?;
    let w = model.latent_from_seed(seed, class, psi)?;
    let latent = new_latent(m.id, model, w)?;
    // SAFETY: checked non-null above.
    unsafe { write_out(out, "out", latent) }
}

/// The latent of `seed` as the official generate.py draws it (numpy
/// legacy RandomState, seeds 0..2^32-1), mapped with truncation psi
/// (1 = none). For unconditional models.
#[no_mangle]
pub unsafe extern "C" fn eo_latent_from_seed(m: eo_model, seed: u64, truncation_psi: f32, out: *mut eo_latent) -> eo_status {
    call(|| from_seed(m, seed, None, truncation_psi, out))
}

/// Like eo_latent_from_seed for a conditional model, with class index
/// `class_index` as the one-hot label.
#[no_mangle]
pub unsafe extern "C" fn eo_latent_from_seed_class(
    m: eo_model,
    seed: u64,
    class_index: u32,
    truncation_psi: f32,
    out: *mut eo_latent,
) -> eo_status {
    call(|| from_seed(m, seed, Some(class_index as usize), truncation_psi, out))
}

/// A latent from raw floats: len is w_dim (W, repeated to every row) or
/// num_ws * w_dim (W+). NaN or Inf is refused.
#[no_mangle]
pub unsafe extern "C" fn eo_latent_from_w(m: eo_model, w: *const f32, len: usize, out: *mut eo_latent) -> eo_status {
    call(|| {
        require_out(out, "out")?;
        let model = handles()?.model(m.id)?;
        let w = shape_of(&model).to_wplus(slice_arg(w, len, "w")?, "w")?;
        write_out(out, "out", new_latent(m.id, model, w)?)
    })
}

/// Copies the W+ latent (num_ws * w_dim floats, row-major) into buf of len
/// floats; `needed` (may be NULL) receives the count. With buf NULL only
/// `needed` is set.
#[no_mangle]
pub unsafe extern "C" fn eo_latent_read(l: eo_latent, buf: *mut f32, len: usize, needed: *mut usize) -> eo_status {
    call(|| {
        let latent = handles()?.latent(l.id)?;
        if !needed.is_null() {
            needed.write(latent.w.len());
        }
        if buf.is_null() {
            return if needed.is_null() { Err(Error::invalid("buf and needed are both NULL")) } else { Ok(()) };
        }
        if len != latent.w.len() {
            return Err(Error::invalid(format!("len is {len}; the latent has {} floats", latent.w.len())));
        }
        super::slice_out(buf, len, "buf")?.copy_from_slice(&latent.w);
        Ok(())
    })
}

/// Releases a latent.
#[no_mangle]
pub extern "C" fn eo_latent_release(l: eo_latent) -> eo_status {
    call(|| {
        let h = handles()?;
        h.release(&h.latents, l.id, "latent")
    })
}
