//! Latent entry points.

use super::args::{size_query, In, InOut, Out};
use super::handles::{handles, Latent};
use super::{call, eo_latent, eo_model, eo_status};
use crate::edit::LatentShape;
use crate::error::{Error, Result};
use crate::model::Model;
use std::sync::Arc;

/// The latent shape of a model.
pub(super) fn shape_of(model: &Model) -> LatentShape {
    LatentShape::of(model.info())
}

/// Registers a new latent of model `model_id` and returns its handle.
pub(super) fn new_latent(model_id: u64, model: Arc<Model>, w: Vec<f32>) -> Result<eo_latent> {
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

fn from_seed(m: eo_model, seed: u64, class: Option<usize>, psi: f32, out: Out<'_, eo_latent>) -> Result<()> {
    let out = out.required()?;
    if !psi.is_finite() {
        return Err(Error::invalid("truncation_psi must be finite"));
    }
    let model = handles()?.model(m)?;
    let w = model.latent_from_seed(seed, class, psi)?;
    out.write(new_latent(m.id, model, w)?);
    Ok(())
}

/// The latent of `seed` as the official generate.py draws it (numpy
/// legacy RandomState, seeds 0..2^32-1), mapped with truncation psi
/// (1 = none). For unconditional models.
#[no_mangle]
pub unsafe extern "C" fn eo_latent_from_seed(m: eo_model, seed: u64, truncation_psi: f32, out: *mut eo_latent) -> eo_status {
    // SAFETY: `out` is NULL or an eo_latent (the header).
    let out = unsafe { Out::new(out, "out") };
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
    // SAFETY: `out` is NULL or an eo_latent (the header).
    let out = unsafe { Out::new(out, "out") };
    call(|| from_seed(m, seed, Some(class_index as usize), truncation_psi, out))
}

/// A latent from raw floats: len is w_dim (W, repeated to every row) or
/// num_ws * w_dim (W+). NaN or Inf is refused.
#[no_mangle]
pub unsafe extern "C" fn eo_latent_from_w(m: eo_model, w: *const f32, len: usize, out: *mut eo_latent) -> eo_status {
    // SAFETY: `w` is NULL or `len` floats, `out` NULL or an eo_latent (the header).
    let (w, out) = unsafe { (In::new(w, len, "w"), Out::new(out, "out")) };
    call(|| {
        let out = out.required()?;
        let model = handles()?.model(m)?;
        let w = shape_of(&model).to_wplus(w.get()?, "w")?;
        out.write(new_latent(m.id, model, w)?);
        Ok(())
    })
}

/// Copies the W+ latent (num_ws * w_dim floats, row-major) into buf of len
/// floats; `needed` (may be NULL) receives the count. With buf NULL only
/// `needed` is set (both NULL is EO_ERR_INVALID_ARGUMENT).
#[no_mangle]
pub unsafe extern "C" fn eo_latent_read(l: eo_latent, buf: *mut f32, len: usize, needed: *mut usize) -> eo_status {
    // SAFETY: `buf` is NULL or `len` writable floats, `needed` NULL or a
    // size_t (the header).
    let (buf, needed) = unsafe { (InOut::new(buf, len, "buf"), Out::new(needed, "needed")) };
    call(|| {
        let latent = handles()?.latent(l)?;
        copy_out(&latent.w, buf, needed, "the latent")
    })
}

/// Fills a host float buffer with `values` under the size-query rule
/// (args::size_query): len must be exactly the count.
pub(super) fn copy_out(values: &[f32], buf: InOut<'_, f32>, needed: Out<'_, usize>, what: &str) -> Result<()> {
    if !size_query(values.len(), &buf, needed, false)? {
        return Ok(());
    }
    let len = values.len();
    let buf = buf.get()?;
    if buf.len() != len {
        return Err(Error::invalid(format!("len is {}; {what} has {len} floats", buf.len())));
    }
    buf.copy_from_slice(values);
    Ok(())
}

/// Releases a latent.
#[no_mangle]
pub extern "C" fn eo_latent_release(l: eo_latent) -> eo_status {
    call(|| {
        let h = handles()?;
        h.release(&h.latents, l.id)
    })
}
