//! Rendering entry points.

use super::args::{size_query, In, InOut, Out, Str};
use super::handles::{handles, Latent};
use super::{call, eo_latent, eo_progress_fn, eo_status, eo_write_flags, existing_of, with_progress};
use crate::error::{Error, ErrorKind, Result};
use crate::invert::RenderMode;
use crate::render::{self, HostImage, PixelFormat};
use std::ffi::{c_char, c_void};
use std::path::Path;
use std::sync::Arc;

/// A pixel layout (one of the EO_PIXEL_* constants).
pub type eo_pixel_format = u32;
/// 4 bytes per pixel: R, G, B, A (A = 255).
pub const EO_PIXEL_RGBA8: eo_pixel_format = 0;
/// 3 bytes per pixel: R, G, B.
pub const EO_PIXEL_RGB8: eo_pixel_format = 1;
/// 1 byte per pixel: luma.
pub const EO_PIXEL_GRAY8: eo_pixel_format = 2;

/// Largest width or height a host view may have.
const MAX_SIDE: u32 = 16384;

/// A host-owned image buffer: `height` rows of `stride` bytes. Rendering
/// into a view of another size than the model's resamples (Lanczos).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct eo_image_view {
    /// First byte of the first row.
    pub data: *mut u8,
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Bytes from one row to the next (at least width * bytes per pixel).
    pub stride: u32,
    /// One of EO_PIXEL_*.
    pub format: eo_pixel_format,
}

fn pixel_format(f: eo_pixel_format) -> Result<PixelFormat> {
    match f {
        EO_PIXEL_RGBA8 => Ok(PixelFormat::Rgba8),
        EO_PIXEL_RGB8 => Ok(PixelFormat::Rgb8),
        EO_PIXEL_GRAY8 => Ok(PixelFormat::Gray8),
        other => Err(Error::invalid(format!("pixel format {other} is not one of EO_PIXEL_RGBA8/RGB8/GRAY8"))),
    }
}

/// A host image view, taken under the header's contract for views: its
/// `data` points to `height` rows of `stride` bytes that the call may
/// read and write.
pub(super) struct HostView<'a> {
    view: eo_image_view,
    what: String,
    _call: std::marker::PhantomData<&'a mut u8>,
}

impl<'a> HostView<'a> {
    /// # Safety
    /// `view.data` is NULL or points to `height` rows of `stride` bytes
    /// (the last row at least width * bytes per pixel) that nothing else
    /// accesses for `'a` (the call).
    pub unsafe fn new(view: eo_image_view, what: impl Into<String>) -> Self {
        HostView { view, what: what.into(), _call: std::marker::PhantomData }
    }

    /// Width and height.
    pub fn size(&self) -> (u32, u32) {
        (self.view.width, self.view.height)
    }

    /// Bytes from one row to the next.
    pub fn stride(&self) -> usize {
        self.view.stride as usize
    }

    /// The pixel format, checked.
    pub fn format(&self) -> Result<PixelFormat> {
        pixel_format(self.view.format)
    }

    /// The format and the bytes, after checking sides, stride and data.
    pub fn bytes(&mut self) -> Result<(PixelFormat, &'a mut [u8])> {
        let (view, what) = (&self.view, &self.what);
        let format = pixel_format(view.format)?;
        if view.width == 0 || view.height == 0 || view.width > MAX_SIDE || view.height > MAX_SIDE {
            return Err(Error::invalid(format!("{what} is {}x{}; sides must be 1..={MAX_SIDE}", view.width, view.height)));
        }
        let row = view.width as usize * format.bytes_per_pixel();
        if (view.stride as usize) < row {
            return Err(Error::invalid(format!("{what}.stride {} is less than a row ({row} bytes)", view.stride)));
        }
        let len = view.stride as usize * (view.height as usize - 1) + row;
        // SAFETY: `new`'s contract covers exactly these bytes.
        let data = unsafe { InOut::new(view.data, len, "data") };
        let bytes = data.get().map_err(|e| e.context(what))?;
        Ok((format, bytes))
    }

    /// The view's pixels, copied into an image.
    pub fn read_image(&mut self) -> Result<image::DynamicImage> {
        let (width, height, stride) = (self.view.width, self.view.height, self.stride());
        let (format, bytes) = self.bytes()?;
        render::from_pixels(bytes, width, height, stride, format)
    }
}

/// The one view `ptr` points to.
///
/// # Safety
/// `ptr` is NULL or points to an eo_image_view under [`HostView::new`]'s
/// contract.
pub(super) unsafe fn one_view<'a>(ptr: *const eo_image_view, what: &'static str) -> Result<HostView<'a>> {
    // SAFETY: the caller's contract.
    let view = unsafe { In::new(ptr, 1, what) }.get()?[0];
    // SAFETY: the caller's contract.
    Ok(unsafe { HostView::new(view, what) })
}

fn latents_of_one_model(ls: &[eo_latent]) -> Result<Vec<Arc<Latent>>> {
    let h = handles()?;
    let latents = ls.iter().map(|l| h.latent(*l)).collect::<Result<Vec<_>>>()?;
    if latents.iter().any(|l| l.model_id != latents[0].model_id) {
        return Err(Error::invalid("the latents belong to different models; render each model's latents separately"));
    }
    Ok(latents)
}

/// Renders latents (all of one model) through `sink`, in device batches,
/// with pixels laid out for `pixels` when given (see [`plain_needed`]).
fn render_each(
    latents: &[Arc<Latent>],
    pixels: Option<PixelFormat>,
    progress: Option<crate::progress::Progress<'_>>,
    sink: impl FnMut(usize, &tch::Tensor, Option<HostImage<'_>>) -> Result<()>,
) -> Result<()> {
    let ws: Vec<&[f32]> = latents.iter().map(|l| l.w.as_slice()).collect();
    render::render_in_batches(&latents[0].model, &ws, pixels, progress, sink)
}

/// Whether any of `latents` shows its plain render in `mode` (photos in
/// residual mode need only the raw output).
fn plain_needed(latents: &[Arc<Latent>], mode: RenderMode) -> bool {
    latents.iter().any(|l| matches!(mode.photo(l.photo.as_deref()), Ok(None)))
}

/// The core's render mode for an EO_RENDER_* value.
pub(super) fn render_mode(mode: eo_render_mode) -> Result<RenderMode> {
    match mode {
        EO_RENDER_AUTO => Ok(RenderMode::Auto),
        EO_RENDER_PLAIN => Ok(RenderMode::Plain),
        EO_RENDER_RESIDUAL => Ok(RenderMode::Residual),
        other => Err(Error::invalid(format!("render mode {other} is not an EO_RENDER_* value"))),
    }
}

/// How a latent becomes a picture (EO_RENDER_*).
pub type eo_render_mode = u32;
/// Residual for latents inverted from a photo (and their edits), plain otherwise.
pub const EO_RENDER_AUTO: eo_render_mode = 0;
/// The generator's output G(w'), at the model's resolution.
pub const EO_RENDER_PLAIN: eo_render_mode = 1;
/// The photo plus the edit's change, photo + (G(w') - G(w)) resampled onto
/// the projected square, at the photo's size: keeps the detail the
/// generator cannot reproduce, but carries the edit only as a change.
pub const EO_RENDER_RESIDUAL: eo_render_mode = 2;

/// What a latent shows: the pixels of its plain render, or the residual
/// render of the photo it was inverted from.
enum Picture<'a> {
    Plain(HostImage<'a>),
    Residual(image::DynamicImage),
}

impl Picture<'_> {
    fn into_image(self) -> Result<image::DynamicImage> {
        match self {
            Picture::Plain(pixels) => pixels.to_image(),
            Picture::Residual(image) => Ok(image),
        }
    }
}

/// The picture of latent `l` (whose raw output is `img`, as pixels
/// `plain` when [`plain_needed`]) in `mode`.
fn picture<'a>(latent: &Latent, img: &tch::Tensor, plain: Option<HostImage<'a>>, mode: RenderMode) -> Result<Picture<'a>> {
    match mode.photo(latent.photo.as_deref())? {
        Some(photo) => Ok(Picture::Residual(image::DynamicImage::ImageRgb8(photo.residual(&latent.model, img)?))),
        None => plain.map(Picture::Plain).ok_or_else(|| Error::new(ErrorKind::Internal, "the plain render was not converted")),
    }
}

fn into_view(latent: &Latent, (img, plain): (&tch::Tensor, Option<HostImage<'_>>), mode: RenderMode, view: &mut HostView<'_>) -> Result<()> {
    let ((width, height), stride) = (view.size(), view.stride());
    let (format, bytes) = view.bytes()?;
    match picture(latent, img, plain, mode)? {
        // The common case, the model's size: bytes straight into the view.
        Picture::Plain(pixels) if (pixels.width(), pixels.height()) == (width, height) => pixels.write(format, bytes, stride),
        picture => render::write_pixels(&render::resize(picture.into_image()?, width, height), format, bytes, stride),
    }
}

/// Renders a latent into a host image view (EO_RENDER_AUTO, noise 'const').
#[no_mangle]
pub unsafe extern "C" fn eo_render(l: eo_latent, dst: *mut eo_image_view) -> eo_status {
    // SAFETY: the same arguments under the same contract.
    unsafe { eo_render_ex(l, EO_RENDER_AUTO, dst) }
}

/// Renders a latent into a host view in `mode`; a view of another size
/// than the picture (model resolution, or the photo's size in residual
/// mode) is resampled (Lanczos).
#[no_mangle]
pub unsafe extern "C" fn eo_render_ex(l: eo_latent, mode: eo_render_mode, dst: *mut eo_image_view) -> eo_status {
    call(|| {
        // SAFETY: `dst` is NULL or a view the call may write (the header).
        let mut view = unsafe { one_view(dst, "dst") }?;
        view.bytes()?;
        let mode = render_mode(mode)?;
        let latents = latents_of_one_model(&[l])?;
        let pixels = plain_needed(&latents, mode).then(|| view.format()).transpose()?;
        render_each(&latents, pixels, None, |i, img, plain| into_view(&latents[i], (img, plain), mode, &mut view))
    })
}

/// The raw generator output, channels x height x width float32, nominally
/// in [-1, 1]; len must be exactly that many floats.
#[no_mangle]
pub unsafe extern "C" fn eo_render_f32(l: eo_latent, buf: *mut f32, len: usize) -> eo_status {
    // SAFETY: `buf` is NULL or `len` writable floats (the header).
    let buf = unsafe { InOut::new(buf, len, "buf") };
    call(|| {
        let latents = latents_of_one_model(&[l])?;
        let info = latents[0].model.info();
        let expected = info.channels * info.resolution * info.resolution;
        if len != expected {
            return Err(Error::invalid(format!(
                "len is {len}; the output has {expected} floats ({} x {} x {})",
                info.channels, info.resolution, info.resolution
            )));
        }
        let out = buf.get()?;
        render_each(&latents, None, None, |_, img, _| {
            out.copy_from_slice(&Vec::<f32>::try_from(img.to_device(tch::Device::Cpu).flatten(0, -1))?);
            Ok(())
        })
    })
}

/// Renders n latents of one model into n views, in device batches, with
/// progress ("render", images done, n). On cancellation the views rendered
/// so far hold their images.
#[no_mangle]
pub unsafe extern "C" fn eo_render_batch(
    ls: *const eo_latent,
    n: usize,
    dsts: *mut eo_image_view,
    progress: eo_progress_fn,
    user: *mut c_void,
) -> eo_status {
    // SAFETY: `ls` is NULL or n latents, `dsts` NULL or n views (the header).
    let (ls, dsts) = unsafe { (In::new(ls, n, "ls"), In::new(dsts as *const eo_image_view, n, "dsts")) };
    call(|| {
        let ls = ls.get()?;
        // SAFETY: each view is one the call may write (the header).
        let mut views: Vec<HostView<'_>> =
            dsts.get()?.iter().enumerate().map(|(i, v)| unsafe { HostView::new(*v, format!("dsts[{i}]")) }).collect();
        for view in &mut views {
            view.bytes()?;
        }
        let latents = latents_of_one_model(ls)?;
        // Laid out for the first view; views in other layouts are converted.
        let pixels = plain_needed(&latents, RenderMode::Auto).then(|| views[0].format()).transpose()?;
        with_progress(progress, user, |p| {
            render_each(&latents, pixels, p, |i, img, plain| into_view(&latents[i], (img, plain), RenderMode::Auto, &mut views[i]))
        })
    })
}

/// Reads a PNG or JPEG file into a host buffer of `format`: with buf NULL
/// only width and height (and `needed`, the bytes a tightly packed buffer
/// takes) are set, from the file's header without decoding it; otherwise
/// buf must hold exactly `needed` bytes. Images over 16384 pixels a side
/// or 64 megapixels, and JPEGs cut short, give EO_ERR_FORMAT.
#[no_mangle]
pub unsafe extern "C" fn eo_image_read(
    path: *const c_char,
    format: eo_pixel_format,
    buf: *mut u8,
    len: usize,
    width: *mut u32,
    height: *mut u32,
    needed: *mut usize,
) -> eo_status {
    // SAFETY: `path` is NULL or a C string, `buf` NULL or `len` writable
    // bytes, the others NULL or one value each (the header).
    let (path, buf, width, height, needed) = unsafe {
        (Str::new(path, "path"), InOut::new(buf, len, "buf"), Out::new(width, "width"), Out::new(height, "height"), Out::new(needed, "needed"))
    };
    call(|| {
        let path = Path::new(path.get()?);
        let format = pixel_format(format)?;
        let image = if buf.is_null() { None } else { Some(render::load(path)?) };
        let (w, h) = match &image {
            Some(image) => (image.width(), image.height()),
            None => render::probe(path)?,
        };
        let other_reports = !width.is_null() || !height.is_null();
        width.write(w);
        height.write(h);
        let size = w as usize * h as usize * format.bytes_per_pixel();
        if !size_query(size, &buf, needed, other_reports)? {
            return Ok(());
        }
        if len != size {
            return Err(Error::invalid(format!("len is {len}; the image needs {size} bytes")));
        }
        let image = image.ok_or_else(|| Error::new(ErrorKind::Internal, "the image was not read"))?;
        render::write_pixels(&image, format, buf.get()?, w as usize * format.bytes_per_pixel())
    })
}

/// eo_image_write_ex with flags 0: never replaces an existing file.
#[no_mangle]
pub unsafe extern "C" fn eo_image_write(img: *const eo_image_view, path: *const c_char) -> eo_status {
    // SAFETY: the same arguments under the same contract.
    unsafe { eo_image_write_ex(img, path, 0) }
}

/// Writes a host image view to a PNG or JPEG file (by extension),
/// atomically; an existing file is replaced only with EO_WRITE_REPLACE
/// (otherwise EO_ERR_EXISTS). A picture eo_image_read would refuse is not
/// written (EO_ERR_FORMAT).
#[no_mangle]
pub unsafe extern "C" fn eo_image_write_ex(img: *const eo_image_view, path: *const c_char, flags: eo_write_flags) -> eo_status {
    // SAFETY: `path` is NULL or a C string (the header).
    let path = unsafe { Str::new(path, "path") };
    call(|| {
        let existing = existing_of(flags)?;
        // SAFETY: `img` is NULL or a view the call may read (the header).
        let image = unsafe { one_view(img, "img") }?.read_image()?;
        render::save(&image, Path::new(path.get()?), existing)
    })
}

/// eo_render_to_file_ex with flags 0: never replaces an existing file.
#[no_mangle]
pub unsafe extern "C" fn eo_render_to_file(l: eo_latent, path: *const c_char, size: u32) -> eo_status {
    // SAFETY: the same arguments under the same contract.
    unsafe { eo_render_to_file_ex(l, path, size, 0) }
}

/// Renders a latent to a PNG or JPEG file (by extension, EO_RENDER_AUTO),
/// atomically; an existing file is replaced only with EO_WRITE_REPLACE
/// (otherwise EO_ERR_EXISTS). Size 0 keeps the picture's size (the model's
/// resolution, or the photo's for an inverted latent), otherwise its
/// longer side becomes `size`.
#[no_mangle]
pub unsafe extern "C" fn eo_render_to_file_ex(l: eo_latent, path: *const c_char, size: u32, flags: eo_write_flags) -> eo_status {
    // SAFETY: `path` is NULL or a C string (the header).
    let path = unsafe { Str::new(path, "path") };
    call(|| {
        let existing = existing_of(flags)?;
        let path = Path::new(path.get()?);
        if size > MAX_SIDE {
            return Err(Error::invalid(format!("size {size} is larger than {MAX_SIDE}")));
        }
        let latents = latents_of_one_model(&[l])?;
        let pixels = plain_needed(&latents, RenderMode::Auto).then_some(PixelFormat::Rgb8);
        render_each(&latents, pixels, None, |_, img, plain| {
            let image = picture(&latents[0], img, plain, RenderMode::Auto)?.into_image()?;
            let (width, height) = picture_size(&latents[0], size);
            render::save(&render::resize(image, width, height), path, existing)
        })
    })
}

/// The size of a latent's picture as eo_render_to_file saves it: the
/// photo's size for a latent that carries one (residual), else the model's
/// resolution, fitted to `size` when it is not 0.
fn picture_size(latent: &Latent, size: u32) -> (u32, u32) {
    let (width, height) = match &latent.photo {
        Some(photo) => photo.image.dimensions(),
        None => {
            let r = latent.model.info().resolution as u32;
            (r, r)
        }
    };
    if size == 0 {
        (width, height)
    } else {
        render::fit_within(width, height, size)
    }
}

/// The width and height of the picture eo_render_to_file(l, path, size)
/// writes (size 0: the picture's own size; otherwise its longer side
/// becomes `size`), so that a host can lay out or name files before
/// rendering without re-deriving the rule.
#[no_mangle]
pub unsafe extern "C" fn eo_render_size(l: eo_latent, size: u32, width: *mut u32, height: *mut u32) -> eo_status {
    // SAFETY: `width` and `height` are NULL or a uint32_t each (the header).
    let (width, height) = unsafe { (Out::new(width, "width"), Out::new(height, "height")) };
    call(|| {
        let (width, height) = (width.required()?, height.required()?);
        if size > MAX_SIDE {
            return Err(Error::invalid(format!("size {size} is larger than {MAX_SIDE}")));
        }
        let (w, h) = picture_size(&*handles()?.latent(l)?, size);
        width.write(w);
        height.write(h);
        Ok(())
    })
}
