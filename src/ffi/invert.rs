//! eo_latent_invert: real photos into the latent space, and the photo a
//! latent carries for residual rendering.

use super::args::{In, InOut, Options, Out, Str};
use super::handles::{handles, Latent};
use super::latent::{register, shape_of};
use super::render::{eo_image_view, one_view};
use super::{call, eo_latent, eo_model, eo_progress_fn, eo_status, with_progress};
use crate::invert::{self, InvertOptions};
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

/// The projector's settings from the host's options (`vgg16`: its path).
pub(super) fn core_options(o: &eo_invert_options, vgg16: &Str<'_>) -> crate::error::Result<InvertOptions> {
    Ok(InvertOptions {
        steps: (o.steps != 0).then_some(o.steps),
        wplus: o.wplus != 0,
        seed: o.seed,
        vgg16: vgg16.optional()?.map(PathBuf::from),
        learning_rate: o.learning_rate as f64,
        noise_regularize: o.noise_regularize as f64,
    })
}

/// Fills `opts` with the defaults.
#[no_mangle]
pub unsafe extern "C" fn eo_invert_options_init(opts: *mut eo_invert_options) -> eo_status {
    // SAFETY: `opts` is NULL or an eo_invert_options (the header).
    let opts = unsafe { Out::new(opts, "opts") };
    call(|| opts.put(eo_invert_options::default()))
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
    // SAFETY: `opts` is NULL or an initialised eo_invert_options, `out`
    // NULL or an eo_latent (the header).
    let (opts, out) = unsafe { (Options::new(opts, "opts"), Out::new(out, "out")) };
    call(|| {
        let out = out.required()?;
        let o = opts.read(eo_invert_options::default())?;
        // SAFETY: the options' pointers are NULL or as the header describes
        // each field (a C string, a float, 4 uint32_t).
        let (vgg16, psnr, crop) =
            unsafe { (Str::new(o.vgg16_path, "opts.vgg16_path"), Out::new(o.psnr, "opts.psnr"), InOut::new(o.crop, 4, "opts.crop")) };
        let model = handles()?.model(m)?;
        // SAFETY: `img` is NULL or a view the call may read (the header).
        let photo = invert::photo(&unsafe { one_view(img, "img") }?.read_image()?, Vec::new())?;
        let options = core_options(&o, &vgg16)?;
        let target = invert::target_tensor(&photo.image, photo.crop, model.info().resolution as u32)?;
        let w = with_progress(progress, user, |p| invert::invert(&model, &target, &options, p))?.remove(0);
        if !psnr.is_null() {
            psnr.write(invert::psnr(&model.render(&[&w])?, &target) as f32);
        }
        if !crop.is_null() {
            crop.get()?.copy_from_slice(&photo.crop);
        }
        let photo = photo.with_base(w.clone());
        out.put(register(Latent { model_id: m.id, model, w, photo: Some(Arc::new(photo)) })?)
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
    // SAFETY: `w` is NULL or `len` floats, `out` NULL or an eo_latent (the header).
    let (w, out) = unsafe { (In::new(w, len, "w"), Out::new(out, "out")) };
    call(|| {
        let out = out.required()?;
        let model = handles()?.model(m)?;
        let w = shape_of(&model).to_wplus(w.get()?, "w")?;
        // SAFETY: `photo` is NULL or a view the call may read (the header).
        let photo = invert::photo(&unsafe { one_view(photo, "photo") }?.read_image()?, w.clone())?;
        out.put(register(Latent { model_id: m.id, model, w, photo: Some(Arc::new(photo)) })?)
    })
}

/// The photo a latent carries: its size and the projected square (left,
/// top, width, height; `crop` may be NULL). Width and height are 0 when
/// the latent has no photo.
#[no_mangle]
pub unsafe extern "C" fn eo_latent_photo(l: eo_latent, width: *mut u32, height: *mut u32, crop: *mut u32) -> eo_status {
    // SAFETY: `width` and `height` are NULL or a uint32_t each, `crop` NULL
    // or 4 of them (the header).
    let (width, height, crop) = unsafe { (Out::new(width, "width"), Out::new(height, "height"), InOut::new(crop, 4, "crop")) };
    call(|| {
        let (width, height) = (width.required()?, height.required()?);
        let latent = handles()?.latent(l)?;
        let (w, h, c) = match &latent.photo {
            Some(p) => (p.image.width(), p.image.height(), p.crop),
            None => (0, 0, [0; 4]),
        };
        width.write(w);
        height.write(h);
        if !crop.is_null() {
            crop.get()?.copy_from_slice(&c);
        }
        Ok(())
    })
}
