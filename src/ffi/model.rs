//! Model entry points.

use super::args::{InOut, Out, Str};
use super::handles::handles;
use super::{call, eo_latent, eo_model, eo_status, eo_write_flags, existing_of};
use crate::error::{Error, Result};
use crate::engine::Engine;
use crate::model::Model;
use std::ffi::c_char;
use std::path::Path;

/// Shape facts about a model. Set struct_size to sizeof(eo_model_desc)
/// before calling eo_model_info. (Named _desc because C gives a struct
/// typedef and a function one namespace.)
#[repr(C)]
#[derive(Clone, Copy)]
pub struct eo_model_desc {
    /// sizeof(eo_model_desc), set by the caller.
    pub struct_size: u32,
    /// Output width and height in pixels.
    pub resolution: u32,
    /// Output channels (3 for RGB).
    pub channels: u32,
    /// Size of the input noise z.
    pub z_dim: u32,
    /// Size of a class label vector (0 when unconditional).
    pub c_dim: u32,
    /// Size of one W row.
    pub w_dim: u32,
    /// Rows of a W+ latent; a latent has num_ws * w_dim floats.
    pub num_ws: u32,
    /// "stylegan2" or "dcgan", NUL-terminated.
    pub architecture: [c_char; 16],
}

/// Loads a model: the native format (.safetensors with its config in the
/// metadata, or a folder with config.json + weights.safetensors), an
/// NVlabs StyleGAN2(-ADA) network pickle (.pkl; its G_ema), or a
/// rosinality/stylegan2-pytorch checkpoint (.pt; its g_ema, computed with
/// rosinality's numerics). The kind is told by the content. Never executes
/// code from the file: pickles are read by a restricted reader, and a
/// file naming anything but tensors, containers and network records gets
/// EO_ERR_FORMAT with the name in the message.
#[no_mangle]
pub unsafe extern "C" fn eo_model_load(path: *const c_char, out: *mut eo_model) -> eo_status {
    // SAFETY: `path` is NULL or a C string, `out` NULL or an eo_model (the header).
    let (path, out) = unsafe { (Str::new(path, "path"), Out::new(out, "out")) };
    call(|| {
        let out = out.required()?;
        let model = Model::load(Path::new(path.get()?), Engine::get()?.placement())?;
        out.write(eo_model { id: handles()?.models.insert(model) });
        Ok(())
    })
}

/// eo_model_convert_ex with flags 0: never replaces an existing file.
#[no_mangle]
pub unsafe extern "C" fn eo_model_convert(in_path: *const c_char, out_path: *const c_char) -> eo_status {
    // SAFETY: the same arguments under the same contract.
    unsafe { eo_model_convert_ex(in_path, out_path, 0) }
}

/// Converts any model eo_model_load accepts into the native format: one
/// .safetensors file at `out_path` (float32, config, source fingerprint
/// and a content hash checked at every load in its metadata) that loads
/// fast and keeps the source's fingerprint, so presets made on the
/// original apply to it. The model is built on the CPU first, so a file
/// that would not load is refused before anything is written. The file is
/// written atomically; an existing one is replaced only with
/// EO_WRITE_REPLACE (otherwise EO_ERR_EXISTS).
#[no_mangle]
pub unsafe extern "C" fn eo_model_convert_ex(in_path: *const c_char, out_path: *const c_char, flags: eo_write_flags) -> eo_status {
    // SAFETY: both paths are NULL or C strings (the header).
    let (input, out) = unsafe { (Str::new(in_path, "in_path"), Str::new(out_path, "out_path")) };
    call(|| {
        let existing = existing_of(flags)?;
        crate::model::convert(Path::new(input.get()?), Path::new(out.get()?), existing, None).map(|_| ())
    })
}

/// Loads the default model (a DCGAN face generator, 64x64, installed by the
/// project's setup). If it is missing the message says how to install it.
#[no_mangle]
pub unsafe extern "C" fn eo_model_load_default(out: *mut eo_model) -> eo_status {
    // SAFETY: `out` is NULL or an eo_model (the header).
    let out = unsafe { Out::new(out, "out") };
    call(|| {
        let out = out.required()?;
        let model = Model::load_default(Engine::get()?.placement())?;
        out.write(eo_model { id: handles()?.models.insert(model) });
        Ok(())
    })
}

/// The C description of a model.
fn describe(model: &Model) -> eo_model_desc {
    let info = model.info();
    let mut architecture = [0 as c_char; 16];
    for (dst, src) in architecture.iter_mut().zip(info.architecture.bytes().take(15)) {
        *dst = src as c_char;
    }
    eo_model_desc {
        struct_size: std::mem::size_of::<eo_model_desc>() as u32,
        resolution: info.resolution as u32,
        channels: info.channels as u32,
        z_dim: info.z_dim as u32,
        c_dim: info.c_dim as u32,
        w_dim: info.w_dim as u32,
        num_ws: info.num_ws as u32,
        architecture,
    }
}

/// Fills `out` (whose struct_size the caller set) with the model's shape.
#[no_mangle]
pub unsafe extern "C" fn eo_model_info(m: eo_model, out: *mut eo_model_desc) -> eo_status {
    // SAFETY: `out` is NULL or an eo_model_desc whose struct_size the host set (the header).
    let out = unsafe { Out::new(out, "out") };
    call(|| out.write_sized(describe(&*handles()?.model(m)?)))
}

/// Fills `out` (whose struct_size the caller set) with the shape of the
/// model a latent belongs to, even after that model's handle is released:
/// e.g. the float count eo_render_f32 needs.
#[no_mangle]
pub unsafe extern "C" fn eo_latent_info(l: eo_latent, out: *mut eo_model_desc) -> eo_status {
    // SAFETY: `out` is NULL or an eo_model_desc whose struct_size the host set (the header).
    let out = unsafe { Out::new(out, "out") };
    call(|| out.write_sized(describe(&handles()?.latent(l)?.model)))
}

fn directions(m: eo_model, rows: Option<std::ops::Range<usize>>, k: u32, out: InOut<'_, f32>, len: usize) -> Result<()> {
    let model = handles()?.model(m)?;
    let w_dim = model.info().w_dim;
    if (k as usize).checked_mul(w_dim) != Some(len) {
        return Err(Error::invalid(format!("len is {len}; k = {k} directions need k * w_dim = {} floats", k as usize * w_dim)));
    }
    let out = out.get()?;
    let found = crate::edit::sefa::directions(&model, k as usize, rows)?;
    for (chunk, d) in out.chunks_mut(w_dim).zip(found) {
        chunk.copy_from_slice(&d.vector);
    }
    Ok(())
}

/// The top-k unsupervised semantic directions (SeFa), strongest first, as
/// k unit vectors of w_dim floats in `out` (len = k * w_dim). Use one with
/// eo_edit_from_direction. Deterministic for a given model.
#[no_mangle]
pub unsafe extern "C" fn eo_model_directions(m: eo_model, k: u32, out: *mut f32, len: usize) -> eo_status {
    // SAFETY: `out` is NULL or `len` writable floats (the header).
    let out = unsafe { InOut::new(out, len, "out") };
    call(|| directions(m, None, k, out, len))
}

/// Like eo_model_directions, from the layers fed by W+ rows
/// first_row .. first_row + row_count only (StyleGAN2: low rows steer pose
/// and shape, high rows colour and texture).
#[no_mangle]
pub unsafe extern "C" fn eo_model_directions_rows(
    m: eo_model,
    first_row: u32,
    row_count: u32,
    k: u32,
    out: *mut f32,
    len: usize,
) -> eo_status {
    // SAFETY: `out` is NULL or `len` writable floats (the header).
    let out = unsafe { InOut::new(out, len, "out") };
    let rows = first_row as usize..first_row as usize + row_count as usize;
    call(|| directions(m, Some(rows), k, out, len))
}

/// Releases a model. Latents and edits made with it stay usable.
#[no_mangle]
pub extern "C" fn eo_model_release(m: eo_model) -> eo_status {
    call(|| {
        let h = handles()?;
        h.release(&h.models, m.id)
    })
}
