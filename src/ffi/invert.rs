//! eo_latent_invert: real photos into the latent space, and the photo a
//! latent carries for residual rendering.

use super::latent::{register, shape_of};
use super::render::{eo_image_view, view_arg};
use super::{call, eo_latent, eo_model, eo_progress_fn, eo_status, handles, read_options, require_out, slice_arg, str_arg, with_progress, write_out};
use crate::engine::Latent;
use crate::error::{Error, Result};
use crate::invert::{self, InvertOptions};
use crate::render;
use std::ffi::{c_char, c_void};
use std::path::PathBuf;
use std::sync::Arc;

/// Options of eo_latent_invert; fill with eo_invert_options_init.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct eo_invert_options {
    /// sizeof(eo_invert_options), set by the init function.
    pub struct_size: u32,
    /// Optimisation steps; 0 = the model's default (StyleGAN2 1000, DCGAN 600).
    pub steps: u32,
    /// 1: optimise a W+ latent (one row per layer); 0: one W row (default).
    pub wplus: u32,
    /// Peak learning rate (default 0.1).
    pub learning_rate: f32,
    /// Weight of the noise-map regulariser (StyleGAN2; default 1e5).
    pub noise_regularize: f32,
    /// Seed of the random draws (default 303, as the official projector).
    pub seed: u64,
    /// A TorchScript VGG16 file (the official projector's vgg16.pt) for
    /// the perceptual loss, or NULL for a pixel loss over three scales.
    pub vgg16_path: *const c_char,
    /// Out, optional: 4 values, the projected square (left, top, width,
    /// height) in the photo's pixels.
    pub crop: *mut u32,
    /// Out, optional: PSNR in dB of the reconstruction against the photo's
    /// square at the model's resolution.
    pub psnr: *mut f32,
}

impl Default for eo_invert_options {
    fn default() -> Self {
        let d = InvertOptions::default();
        eo_invert_options {
            struct_size: std::mem::size_of::<Self>() as u32,
            steps: 0,
            wplus: 0,
            learning_rate: d.learning_rate as f32,
            noise_regularize: d.noise_regularize as f32,
            seed: d.seed,
            vgg16_path: std::ptr::null(),
            crop: std::ptr::null_mut(),
            psnr: std::ptr::null_mut(),
        }
    }
}

/// Fills `opts` with the defaults.
#[no_mangle]
pub unsafe extern "C" fn eo_invert_options_init(opts: *mut eo_invert_options) -> eo_status {
    call(|| write_out(opts, "opts", eo_invert_options::default()))
}

/// A photo from a host view, alpha dropped.
unsafe fn photo_of(img: *const eo_image_view, base: Vec<f32>) -> Result<invert::Photo> {
    let view = *slice_arg(img, 1, "img")?.first().expect("one view");
    let (format, bytes) = view_arg(&view, "img")?;
    let picture = render::from_pixels(bytes, view.width, view.height, view.stride as usize, format)?;
    invert::photo(&picture, base)
}

/// Projects a photo (any size and aspect; its centred square is resampled
/// to the model's resolution, alpha ignored) into the model's latent space,
/// as the StyleGAN2-ADA projector does. Progress: ("invert", step, steps).
/// The latent is created only on success; it remembers the photo, so its
/// edits render in residual mode (see eo_render_ex).
#[no_mangle]
pub unsafe extern "C" fn eo_latent_invert(
    m: eo_model,
    img: *const eo_image_view,
    opts: *const eo_invert_options,
    progress: eo_progress_fn,
    user: *mut c_void,
    out: *mut eo_latent,
) -> eo_status {
    call(|| {
        require_out(out, "out")?;
        let o = read_options(opts, eo_invert_options::default(), "opts")?;
        let model = handles()?.model(m.id)?;
        let mut photo = photo_of(img, Vec::new())?;
        let options = InvertOptions {
            steps: (o.steps != 0).then_some(o.steps),
            wplus: o.wplus != 0,
            seed: o.seed,
            vgg16: if o.vgg16_path.is_null() { None } else { Some(PathBuf::from(str_arg(o.vgg16_path, "opts.vgg16_path")?)) },
            learning_rate: o.learning_rate as f64,
            noise_regularize: o.noise_regularize as f64,
        };
        if !(options.noise_regularize.is_finite() && options.noise_regularize >= 0.0) {
            return Err(Error::invalid("opts.noise_regularize must be finite and non-negative"));
        }
        let target = invert::target_tensor(&photo.image, photo.crop, model.info().resolution as u32)?;
        let w = with_progress(progress, user, |p| invert::invert(&model, &target, &options, p))?.remove(0);
        if !o.psnr.is_null() {
            o.psnr.write(invert::psnr(&model.render(&[&w])?, &target) as f32);
        }
        if !o.crop.is_null() {
            std::slice::from_raw_parts_mut(o.crop, 4).copy_from_slice(&photo.crop);
        }
        photo.base = w.clone();
        let latent = register(Latent { model_id: m.id, model, w, photo: Some(Arc::new(photo)) })?;
        write_out(out, "out", latent)
    })
}

/// A latent from raw floats (as eo_latent_from_w) that remembers the photo
/// it was inverted from, e.g. one saved by `editone invert` in an earlier
/// session: its edits then render in residual mode on that photo.
#[no_mangle]
pub unsafe extern "C" fn eo_latent_from_w_photo(
    m: eo_model,
    w: *const f32,
    len: usize,
    photo: *const eo_image_view,
    out: *mut eo_latent,
) -> eo_status {
    call(|| {
        require_out(out, "out")?;
        let model = handles()?.model(m.id)?;
        let w = shape_of(&model).to_wplus(slice_arg(w, len, "w")?, "w")?;
        let photo = photo_of(photo, w.clone())?;
        let latent = register(Latent { model_id: m.id, model, w, photo: Some(Arc::new(photo)) })?;
        write_out(out, "out", latent)
    })
}

/// The photo a latent carries: its size and the projected square (left,
/// top, width, height; `crop` may be NULL). Width and height are 0 when
/// the latent has no photo.
#[no_mangle]
pub unsafe extern "C" fn eo_latent_photo(l: eo_latent, width: *mut u32, height: *mut u32, crop: *mut u32) -> eo_status {
    call(|| {
        require_out(width, "width")?;
        require_out(height, "height")?;
        let latent = handles()?.latent(l.id)?;
        let (w, h, c) = match &latent.photo {
            Some(p) => (p.image.width(), p.image.height(), p.crop),
            None => (0, 0, [0; 4]),
        };
        width.write(w);
        height.write(h);
        if !crop.is_null() {
            std::slice::from_raw_parts_mut(crop, 4).copy_from_slice(&c);
        }
        Ok(())
    })
}
