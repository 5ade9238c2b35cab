//! Faces in real photos: detection, inversion of aligned faces, and the
//! photo rendered with every face's edit pasted back.

use super::args::{In, InOut, Options, Out, Str};
use super::drag::eo_point;
use super::handles::{handles, Latent};
use super::invert::{core_options, eo_invert_options};
use super::latent::{register, shape_of};
use super::render::{eo_image_view, eo_render_mode, one_view, render_mode};
use super::{call, eo_detector, eo_latent, eo_model, eo_progress_fn, eo_status, eo_write_flags, existing_of, with_progress};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::faces::align::{Alignment, Similarity};
use crate::faces::mtcnn::{DetectOptions, Detector};
use crate::faces::{self, Face, PasteMode};
use crate::invert::{Photo, PhotoFace, RenderMode};
use crate::model::Model;
use std::ffi::{c_char, c_void};
use std::path::Path;
use std::sync::Arc;

/// A face found in a photo, in the photo's pixels (pixel centres on
/// integers).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct eo_face {
    /// left, top, right, bottom of the detector's box.
    pub bbox: [f32; 4],
    /// The detector's probability that the box holds a face, 0..1.
    pub score: f32,
    /// Left eye, right eye, nose tip, left and right mouth corners, as seen
    /// in the picture.
    pub landmarks: [eo_point; 5],
}

impl From<Face> for eo_face {
    fn from(f: Face) -> Self {
        eo_face { bbox: f.bbox, score: f.score, landmarks: f.landmarks.map(|[x, y]| eo_point { x, y }) }
    }
}

impl From<eo_face> for Face {
    fn from(f: eo_face) -> Self {
        Face { bbox: f.bbox, score: f.score, landmarks: f.landmarks.map(|p| [p.x, p.y]) }
    }
}

/// How faces are aligned to the model's crop (EO_ALIGN_*).
pub type eo_align = u32;
/// The model's own (its config's `align`; the default model: template).
pub const EO_ALIGN_MODEL: eo_align = 0;
/// The five landmarks fitted to the model's face template (least squares).
pub const EO_ALIGN_TEMPLATE: eo_align = 1;
/// NVlabs' FFHQ crop from the eyes and mouth (StyleGAN2 face models).
pub const EO_ALIGN_FFHQ: eo_align = 2;
/// No alignment: the detector's box made square, upright.
pub const EO_ALIGN_NONE: eo_align = 3;

/// The alignment `align` asks for; None for EO_ALIGN_MODEL.
fn requested(align: eo_align) -> Result<Option<Alignment>> {
    match align {
        EO_ALIGN_MODEL => Ok(None),
        EO_ALIGN_TEMPLATE => Ok(Some(Alignment::Template)),
        EO_ALIGN_FFHQ => Ok(Some(Alignment::Ffhq)),
        EO_ALIGN_NONE => Ok(Some(Alignment::Unaligned)),
        other => Err(Error::invalid(format!("align is {other}: not an EO_ALIGN_* value"))),
    }
}

fn alignment(align: eo_align, model: &Model) -> Result<Alignment> {
    Ok(requested(align)?.unwrap_or_else(|| model.face_alignment()))
}

fn align_code(alignment: Alignment) -> eo_align {
    match alignment {
        Alignment::Template => EO_ALIGN_TEMPLATE,
        Alignment::Ffhq => EO_ALIGN_FFHQ,
        Alignment::Unaligned => EO_ALIGN_NONE,
    }
}

/// Options of eo_faces_detect; fill with eo_detect_options_init.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct eo_detect_options {
    /// sizeof(eo_detect_options), set by the init function.
    pub struct_size: u32,
    /// The smallest face searched for, in photo pixels (default 20).
    pub min_face_size: f32,
    /// Faces scored below this are dropped (see the default's reasons in
    /// docs/faces.md).
    pub score_threshold: f32,
    /// A photo longer than this on its longer side is searched on a copy
    /// shrunk to it; results are in the photo's own pixels.
    pub max_side: u32,
}

impl Default for eo_detect_options {
    fn default() -> Self {
        let d = DetectOptions::default();
        eo_detect_options {
            struct_size: std::mem::size_of::<Self>() as u32,
            min_face_size: d.min_face_size,
            score_threshold: d.score_threshold,
            max_side: d.max_side,
        }
    }
}

/// Fills `opts` with the defaults.
#[no_mangle]
pub unsafe extern "C" fn eo_detect_options_init(opts: *mut eo_detect_options) -> eo_status {
    // SAFETY: `opts` is NULL or an eo_detect_options (the header).
    let opts = unsafe { Out::new(opts, "opts") };
    call(|| opts.put(eo_detect_options::default()))
}

/// Loads the face detector (MTCNN): `path` is a converted detector file,
/// or NULL for the one the project's setup installs. A missing or damaged
/// file is refused with a message that says how to install it.
#[no_mangle]
pub unsafe extern "C" fn eo_detector_load(path: *const c_char, out: *mut eo_detector) -> eo_status {
    // SAFETY: `path` is NULL or a C string, `out` NULL or an eo_detector (the header).
    let (path, out) = unsafe { (Str::new(path, "path"), Out::new(out, "out")) };
    call(|| {
        let out = out.required()?;
        let device = Engine::get()?.placement().device;
        let detector = match path.optional()? {
            Some(path) => Detector::load(Path::new(path), device)?,
            None => Detector::load_default(device)?,
        };
        out.write(eo_detector { id: handles()?.detectors.insert(std::sync::Mutex::new(detector)) });
        Ok(())
    })
}

/// Releases a detector.
#[no_mangle]
pub extern "C" fn eo_detector_release(d: eo_detector) -> eo_status {
    call(|| {
        let h = handles()?;
        h.release(&h.detectors, d.id)
    })
}

/// Finds the faces of a photo, largest first. `count` receives how many
/// were found; the first min(count, cap) are written to `faces` (which may
/// be NULL when cap is 0). No face found is EO_OK with count 0. A photo
/// under 12 pixels on a side is EO_ERR_INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn eo_faces_detect(
    d: eo_detector,
    img: *const eo_image_view,
    opts: *const eo_detect_options,
    faces: *mut eo_face,
    cap: usize,
    count: *mut usize,
) -> eo_status {
    // SAFETY: `opts` is NULL or an initialised eo_detect_options, `faces`
    // NULL or `cap` writable eo_face, `count` NULL or a size_t (the header).
    let (opts, faces, count) =
        unsafe { (Options::new(opts, "opts"), InOut::new(faces, cap, "faces"), Out::new(count, "count")) };
    call(|| {
        let count = count.required()?;
        // Checked before the (slow) detection: a bad buffer fails at once.
        let faces = if cap > 0 { Some(faces.get()?) } else { None };
        let o = opts.read(eo_detect_options::default())?;
        let options = DetectOptions {
            min_face_size: o.min_face_size,
            score_threshold: o.score_threshold,
            max_side: o.max_side,
            ..DetectOptions::default()
        };
        let detector = handles()?.detector(d)?;
        // SAFETY: `img` is NULL or a view the call may read (the header).
        let image = unsafe { one_view(img, "img") }?.read_image()?.to_rgb8();
        let found = detector.lock().unwrap_or_else(|p| p.into_inner()).detect(&image, &options)?;
        for (dst, face) in faces.into_iter().flatten().zip(&found) {
            *dst = (*face).into();
        }
        count.write(found.len());
        Ok(())
    })
}

/// The faces a host passes, checked.
fn faces_in(faces: &In<'_, eo_face>) -> Result<Vec<Face>> {
    let faces = faces.get()?;
    if faces.is_empty() {
        return Err(Error::invalid("n is 0: give at least one face"));
    }
    Ok(faces.iter().map(|f| Face::from(*f)).collect())
}

/// Registers one latent per face photo of `model`.
fn register_faces(m: eo_model, model: &Arc<Model>, photos: Vec<Photo>, out: &mut [eo_latent]) -> Result<()> {
    let mut made = Vec::with_capacity(photos.len());
    for photo in photos {
        let w = photo.base().to_vec();
        match register(Latent { model_id: m.id, model: model.clone(), w, photo: Some(Arc::new(photo)) }) {
            Ok(latent) => made.push(latent),
            Err(e) => {
                // All or nothing: the host gets no handle it was not told of.
                let h = handles()?;
                made.iter().for_each(|l| drop(h.release(&h.latents, l.id)));
                return Err(e);
            }
        }
    }
    out.copy_from_slice(&made);
    Ok(())
}

/// Inverts `n` faces of a photo (from eo_faces_detect, or saved from an
/// earlier run): each is aligned to the model's crop as `align` says, and
/// projected as eo_latent_invert projects a photo. `out` receives n
/// latents, each remembering the photo (one shared copy), its face and its
/// transform, so eo_render_photo composites their edits into the photo.
/// In `opts`, `psnr` (if set) receives n values, one per face, and `crop`
/// (if set) 4 * n: the bounds of each face's crop in the photo. Progress:
/// ("invert", step, total) over all faces. Nothing is created unless all
/// succeed.
#[no_mangle]
pub unsafe extern "C" fn eo_faces_invert(
    m: eo_model,
    img: *const eo_image_view,
    faces: *const eo_face,
    n: usize,
    align: eo_align,
    opts: *const eo_invert_options,
    progress: eo_progress_fn,
    user: *mut c_void,
    out: *mut eo_latent,
) -> eo_status {
    // SAFETY: `faces` is NULL or n eo_face, `opts` NULL or an initialised
    // eo_invert_options, `out` NULL or n writable eo_latent (the header).
    let (faces, opts, out) = unsafe { (In::new(faces, n, "faces"), Options::new(opts, "opts"), InOut::new(out, n, "out")) };
    call(|| {
        let faces = faces_in(&faces)?;
        let out = out.get()?;
        let o = opts.read(eo_invert_options::default())?;
        // SAFETY: the options' pointers are NULL or as the header describes
        // each field (a C string, n floats, 4 n uint32_t).
        let (vgg16, psnr, crop) =
            unsafe { (Str::new(o.vgg16_path, "opts.vgg16_path"), InOut::new(o.psnr, n, "opts.psnr"), InOut::new(o.crop, 4 * n, "opts.crop")) };
        let options = core_options(&o, &vgg16)?;
        let model = handles()?.model(m)?;
        // SAFETY: `img` is NULL or a view the call may read (the header).
        let image = Arc::new(unsafe { one_view(img, "img") }?.read_image()?.to_rgb8());
        let placed = faces::place(&model, &faces, alignment(align, &model)?)?;
        let photos = with_progress(progress, user, |p| faces::invert_faces(&model, image.clone(), &placed, &options, p))?;
        if !psnr.is_null() {
            let targets = faces::targets(&image, &placed, model.info().resolution as u32);
            for (k, (dst, photo)) in psnr.get()?.iter_mut().zip(&photos).enumerate() {
                *dst = crate::invert::psnr(&model.render(&[photo.base()])?, &targets.get(k as i64).unsqueeze(0)) as f32;
            }
        }
        if !crop.is_null() {
            for (dst, photo) in crop.get()?.chunks_mut(4).zip(&photos) {
                dst.copy_from_slice(&photo.crop);
            }
        }
        register_faces(m, &model, photos, out)
    })
}

/// Latents of faces of a photo from their saved W+ floats (as `editone
/// invert --faces` writes them): `w` holds n latents of num_ws * w_dim
/// floats each; `transforms` holds each face's photo-to-crop transform
/// as 6 floats (eo_latent_face gives them), or is NULL to align each face
/// again as `align` says. They share one copy of the photo, as
/// eo_faces_invert's do.
#[no_mangle]
pub unsafe extern "C" fn eo_latents_from_faces(
    m: eo_model,
    img: *const eo_image_view,
    faces: *const eo_face,
    transforms: *const f64,
    n: usize,
    align: eo_align,
    w: *const f32,
    len: usize,
    out: *mut eo_latent,
) -> eo_status {
    // SAFETY: `faces` is NULL or n eo_face, `transforms` NULL or 6 n
    // doubles, `w` NULL or `len` floats, `out` NULL or n eo_latent (the header).
    let (faces, transforms, w, out) = unsafe {
        (In::new(faces, n, "faces"), In::new(transforms, 6 * n, "transforms"), In::new(w, len, "w"), InOut::new(out, n, "out"))
    };
    call(|| {
        let faces = faces_in(&faces)?;
        let out = out.get()?;
        let model = handles()?.model(m)?;
        let shape = shape_of(&model);
        let w = w.get()?;
        if w.len() != n * shape.len() {
            return Err(Error::invalid(format!("len is {}; {n} latents take {} floats", w.len(), n * shape.len())));
        }
        let placed = if transforms.is_null() {
            faces::place(&model, &faces, alignment(align, &model)?)?
        } else {
            let t = transforms.get()?;
            let transform = |k: usize| Similarity::from_affine(t[6 * k..6 * k + 6].try_into().expect("6 values"));
            faces.iter().enumerate().map(|(k, face)| Ok(PhotoFace { face: *face, to_crop: transform(k)? })).collect::<Result<Vec<_>>>()?
        };
        // SAFETY: `img` is NULL or a view the call may read (the header).
        let image = Arc::new(unsafe { one_view(img, "img") }?.read_image()?.to_rgb8());
        let resolution = model.info().resolution as u32;
        let mut photos = Vec::with_capacity(n);
        for (k, face) in placed.into_iter().enumerate() {
            let latent = shape.to_wplus(&w[k * shape.len()..(k + 1) * shape.len()], "w")?;
            photos.push(Photo::of_face(image.clone(), face, resolution, latent));
        }
        register_faces(m, &model, photos, out)
    })
}

/// The face a latent was inverted from (and its edits inherit): `has_face`
/// is 1 and `face` (may be NULL) and `transform` (may be NULL; 6 doubles:
/// the photo-to-crop map x' = t0 x + t1 y + t2, y' = t3 x + t4 y + t5)
/// are filled, or `has_face` is 0 for a latent of no face.
#[no_mangle]
pub unsafe extern "C" fn eo_latent_face(l: eo_latent, has_face: *mut u32, face: *mut eo_face, transform: *mut f64) -> eo_status {
    // SAFETY: `has_face` is NULL or a uint32_t, `face` NULL or an eo_face,
    // `transform` NULL or 6 doubles (the header).
    let (has_face, face, transform) =
        unsafe { (Out::new(has_face, "has_face"), Out::new(face, "face"), InOut::new(transform, 6, "transform")) };
    call(|| {
        let has_face = has_face.required()?;
        let latent = handles()?.latent(l)?;
        let Some(placed) = latent.photo.as_ref().and_then(|p| p.face) else {
            has_face.write(0);
            return Ok(());
        };
        has_face.write(1);
        face.write(placed.face.into());
        if !transform.is_null() {
            transform.get()?.copy_from_slice(&placed.to_crop.to_affine());
        }
        Ok(())
    })
}

/// Renders a photo with the edits of its faces: `latents` are n latents of
/// faces of one photo (from eo_faces_invert or eo_latents_from_faces, or
/// edits of them), each face at most once; faces not listed stay as in
/// the photo. EO_RENDER_AUTO and EO_RENDER_RESIDUAL add each edit's change
/// (an identity edit gives the photo exactly); EO_RENDER_PLAIN blends the
/// generator's faces in. Either way only the feathered masks of the faces
/// change; every other pixel is the photo's. `dst` must be the photo's
/// size (eo_latent_photo).
#[no_mangle]
pub unsafe extern "C" fn eo_render_photo(latents: *const eo_latent, n: usize, mode: eo_render_mode, dst: *mut eo_image_view) -> eo_status {
    // SAFETY: `latents` is NULL or n handles (the header).
    let ls = unsafe { In::new(latents, n, "latents") };
    call(|| {
        let mode = match render_mode(mode)? {
            RenderMode::Auto | RenderMode::Residual => PasteMode::Residual,
            RenderMode::Plain => PasteMode::Plain,
        };
        let h = handles()?;
        let latents = ls.get()?.iter().map(|l| h.latent(*l)).collect::<Result<Vec<_>>>()?;
        let Some(first) = latents.first() else {
            return Err(Error::invalid("n is 0: give the latents of the photo's faces"));
        };
        if latents.iter().any(|l| l.model_id != first.model_id) {
            return Err(Error::invalid("the latents belong to different models"));
        }
        let mut pairs = Vec::with_capacity(latents.len());
        for (k, latent) in latents.iter().enumerate() {
            let photo = latent.photo.as_deref().filter(|p| p.face.is_some()).ok_or_else(|| {
                Error::invalid(format!("latents[{k}] is not a face of a photo (eo_faces_invert makes those)"))
            })?;
            pairs.push((photo, latent.w.as_slice()));
        }
        for (k, (photo, _)) in pairs.iter().enumerate() {
            if pairs[..k].iter().any(|(other, _)| other.face == photo.face) {
                return Err(Error::invalid(format!("latents[{k}] is a face already listed: give each face once")));
            }
        }
        // SAFETY: `dst` is NULL or a view the call may write (the header).
        let mut view = unsafe { one_view(dst, "dst") }?;
        let (width, height) = (pairs[0].0.image.width(), pairs[0].0.image.height());
        if view.size() != (width, height) {
            let (w, h) = view.size();
            return Err(Error::invalid(format!("dst is {w}x{h}; the photo is {width}x{height}")));
        }
        let image = faces::render_photo(&first.model, &pairs, mode)?;
        let stride = view.stride();
        let (format, bytes) = view.bytes()?;
        crate::render::write_pixels(&image::DynamicImage::ImageRgb8(image), format, bytes, stride)
    })
}

/// How a model's training faces were cropped, as eo_faces_invert's
/// EO_ALIGN_MODEL takes it (EO_ALIGN_TEMPLATE, EO_ALIGN_FFHQ or
/// EO_ALIGN_NONE).
#[no_mangle]
pub unsafe extern "C" fn eo_model_alignment(m: eo_model, out: *mut eo_align) -> eo_status {
    // SAFETY: `out` is NULL or an eo_align (the header).
    let out = unsafe { Out::new(out, "out") };
    call(|| {
        let out = out.required()?;
        out.write(align_code(handles()?.model(m)?.face_alignment()));
        Ok(())
    })
}

/// eo_model_convert_ex that also records how the model's training faces
/// were cropped (`align`: EO_ALIGN_TEMPLATE, EO_ALIGN_FFHQ or
/// EO_ALIGN_NONE; EO_ALIGN_MODEL keeps the source's), which a network
/// pickle cannot say.
#[no_mangle]
pub unsafe extern "C" fn eo_model_convert_align(
    in_path: *const c_char,
    out_path: *const c_char,
    align: eo_align,
    flags: eo_write_flags,
) -> eo_status {
    // SAFETY: both paths are NULL or C strings (the header).
    let (input, out) = unsafe { (Str::new(in_path, "in_path"), Str::new(out_path, "out_path")) };
    call(|| {
        let existing = existing_of(flags)?;
        crate::model::convert(Path::new(input.get()?), Path::new(out.get()?), existing, requested(align)?).map(|_| ())
    })
}
