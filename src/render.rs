//! From generator output to pixels: the official float-to-uint8 rule,
//! resampling to the host's size, pixel formats, and image files.

use crate::error::{Error, ErrorKind, Result};
use crate::files::Existing;
use crate::model::Model;
use crate::progress::{report, Progress};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, RgbImage};
use std::borrow::Cow;
use std::path::Path;
use tch::{Kind, Tensor};

/// Most images per device batch when rendering many latents: large enough
/// for small models to gain from batching (tiny64 renders 266 images/s in
/// batches of 8, 321 in 32), small enough to bound memory; on the CPU a
/// large StyleGAN2 splits it further (see `stylegan2::MICRO_BATCH_BYTES`).
pub(crate) const BATCH: usize = 32;

/// Renders flattened W+ latents of `model` in device batches of [`BATCH`],
/// handing each output to `sink` with its index, as the raw [C, H, W]
/// tensor (still on the engine's device) and, when `pixels` names the
/// layout the host wants, as pixels (see [`HostPixels`]), and reporting
/// progress ("render", images done, images in all) after each batch.
pub fn render_in_batches(
    model: &Model,
    latents: &[&[f32]],
    pixels: Option<PixelFormat>,
    progress: Option<Progress<'_>>,
    sink: impl FnMut(usize, &Tensor, Option<HostImage<'_>>) -> Result<()>,
) -> Result<()> {
    // On CUDA the GPU renders the next batch while the host copies this
    // one's pixels: kernel launches return at once, and a batch's copy to
    // the host waits only for the work queued before it. On the CPU the
    // render itself is the host's work, so nothing would overlap.
    let ahead = pixels.is_some() && model.device().is_cuda();
    render_batches(model, latents, pixels, ahead, progress, sink)
}

/// [`render_in_batches`], queueing the next batch's render before handing
/// this one's pixels to `sink` when `ahead`. A failure of the queued render
/// is reported in its turn, after the batch before it has been delivered.
fn render_batches(
    model: &Model,
    latents: &[&[f32]],
    pixels: Option<PixelFormat>,
    ahead: bool,
    mut progress: Option<Progress<'_>>,
    mut sink: impl FnMut(usize, &Tensor, Option<HostImage<'_>>) -> Result<()>,
) -> Result<()> {
    let batches: Vec<&[&[f32]]> = latents.chunks(BATCH).collect();
    let mut queued: Option<Result<Tensor>> = None;
    for (b, chunk) in batches.iter().enumerate() {
        let images = queued.take().unwrap_or_else(|| model.render_on_device(chunk))?;
        let host = pixels.map(|format| HostPixels::of_batch(&images, format)).transpose()?;
        if ahead {
            queued = batches.get(b + 1).map(|next| model.render_on_device(next));
        }
        for i in 0..chunk.len() {
            sink(b * BATCH + i, &images.get(i as i64), host.as_ref().map(|h| h.image(i)))?;
        }
        report(&mut progress, "render", (b * BATCH + chunk.len()) as u64, latents.len() as u64)?;
    }
    Ok(())
}

/// A batch of generator outputs as bytes in host memory, [N, H, W, C]
/// uint8. Made on the batch's device, so that only bytes cross to the host,
/// and, for RGBA hosts, with the alpha channel already in place: an image
/// then reaches the host's buffer in one copy. At 1024x1024 the per-image
/// host work this saves (a copy into its own buffer, then a per-pixel
/// conversion to RGBA) took about 4 ms on the development machine; a whole
/// render, that host work included, took 9.7 ms per image on an H200.
pub struct HostPixels {
    bytes: Tensor,
}

impl HostPixels {
    /// Converts a batch [N, C, H, W] in [-1, 1] as the official
    /// generate.py does, clamp(x * 127.5 + 128, 0, 255) truncated, laid out
    /// for `format` where the device can do it cheaply: an RGB output gets
    /// an opaque alpha channel for RGBA hosts; other layouts are converted
    /// per image on the host (see [`HostImage::write`]).
    pub fn of_batch(batch: &Tensor, format: PixelFormat) -> Result<HostPixels> {
        let (n, c, h, w) = batch.size4().map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        if c != 1 && c != 3 {
            return Err(Error::invalid(format!("cannot turn a {c}-channel output into an image")));
        }
        let bytes = (batch.to_kind(Kind::Float) * 127.5 + 128.0).clamp(0.0, 255.0).to_kind(Kind::Uint8).permute([0, 2, 3, 1]);
        let alpha = c == 3 && format == PixelFormat::Rgba8;
        let nhwc = Tensor::empty([n, h, w, if alpha { 4 } else { c }], (Kind::Uint8, batch.device()));
        nhwc.narrow(3, 0, c).copy_(&bytes);
        if alpha {
            let _ = nhwc.narrow(3, 3, 1).fill_(255);
        }
        Ok(HostPixels { bytes: nhwc.to_device(tch::Device::Cpu) })
    }

    /// How many images the batch holds.
    pub fn len(&self) -> usize {
        self.bytes.size()[0] as usize
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Image `i` of the batch; panics unless `i < len()`.
    pub fn image(&self, i: usize) -> HostImage<'_> {
        let size = self.bytes.size();
        let per_image = (size[1] * size[2] * size[3]) as usize;
        // SAFETY: `bytes` is a contiguous uint8 CPU tensor made above and
        // never shared, so it holds numel bytes at data_ptr for as long as
        // `self`, which the slice borrows, and no one writes them.
        let all = unsafe { std::slice::from_raw_parts(self.bytes.data_ptr() as *const u8, self.bytes.numel()) };
        HostImage {
            bytes: &all[i * per_image..(i + 1) * per_image],
            width: size[2] as u32,
            height: size[1] as u32,
            channels: size[3] as usize,
        }
    }

    /// Every image of the batch as an image-crate image.
    pub fn to_images(&self) -> Result<Vec<DynamicImage>> {
        (0..self.len()).map(|i| self.image(i).to_image()).collect()
    }
}

/// One image of a [`HostPixels`] batch: gray, RGB or RGBA bytes, row by row.
#[derive(Clone, Copy)]
pub struct HostImage<'a> {
    bytes: &'a [u8],
    width: u32,
    height: u32,
    channels: usize,
}

impl HostImage<'_> {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The layout its bytes are in.
    fn format(&self) -> PixelFormat {
        match self.channels {
            1 => PixelFormat::Gray8,
            3 => PixelFormat::Rgb8,
            _ => PixelFormat::Rgba8,
        }
    }

    /// A copy as an image-crate image (for resampling, files).
    pub fn to_image(&self) -> Result<DynamicImage> {
        from_pixels(self.bytes, self.width, self.height, self.width as usize * self.channels, self.format())
    }

    /// Writes the image into a host buffer of `height` rows of `stride`
    /// bytes in `format`: row by row when it is already in that layout,
    /// else converted as [`write_pixels`] converts.
    pub fn write(&self, format: PixelFormat, dst: &mut [u8], stride: usize) -> Result<()> {
        if format != self.format() {
            return write_pixels(&self.to_image()?, format, dst, stride);
        }
        copy_rows(self.bytes, self.width as usize * self.channels, dst, stride)
    }
}

/// Copies packed rows of `row` bytes into a buffer of rows `stride` apart.
fn copy_rows(packed: &[u8], row: usize, dst: &mut [u8], stride: usize) -> Result<()> {
    if row == 0 || packed.is_empty() {
        return Ok(());
    }
    let rows = packed.len() / row;
    if stride < row || dst.len() < stride * (rows - 1) + row {
        return Err(Error::invalid("image buffer is too small for its width, height and stride"));
    }
    for (y, src) in packed.chunks_exact(row).enumerate() {
        dst[y * stride..y * stride + row].copy_from_slice(src);
    }
    Ok(())
}

/// Layouts a host can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// 4 bytes per pixel, alpha 255.
    Rgba8,
    /// 3 bytes per pixel.
    Rgb8,
    /// 1 byte per pixel (luma).
    Gray8,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgba8 => 4,
            PixelFormat::Rgb8 => 3,
            PixelFormat::Gray8 => 1,
        }
    }
}

/// One generator output [C, H, W] in [-1, 1] to an image (see
/// [`HostPixels::of_batch`]).
pub fn to_image(img: &Tensor) -> Result<DynamicImage> {
    Ok(to_images(&img.unsqueeze(0))?.remove(0))
}

/// [`to_image`] for a batch [N, C, H, W], converted in one pass on the
/// batch's device.
pub fn to_images(batch: &Tensor) -> Result<Vec<DynamicImage>> {
    HostPixels::of_batch(batch, PixelFormat::Rgb8)?.to_images()
}

/// The size a width x height picture takes when its longer side becomes
/// `side`, keeping its aspect (each side rounded, at least 1). The one rule
/// of every "fit to a size" in editone; hosts read it through
/// eo_render_size instead of re-deriving it.
pub fn fit_within(width: u32, height: u32, side: u32) -> (u32, u32) {
    let ratio = (side as f64 / width as f64).min(side as f64 / height as f64);
    let scaled = |n: u32| ((n as f64 * ratio).round() as u32).max(1);
    (scaled(width), scaled(height))
}

/// Resamples to width x height with a Lanczos filter when the size differs.
pub fn resize(image: DynamicImage, width: u32, height: u32) -> DynamicImage {
    if image.width() == width && image.height() == height {
        image
    } else {
        image.resize_exact(width, height, FilterType::Lanczos3)
    }
}

/// Copies an image into a host buffer of `height` rows of `stride` bytes.
pub fn write_pixels(image: &DynamicImage, format: PixelFormat, dst: &mut [u8], stride: usize) -> Result<()> {
    let w = image.width() as usize;
    // An image already in the host's layout is copied once, not converted.
    let packed: Cow<[u8]> = match (format, image) {
        (PixelFormat::Rgba8, DynamicImage::ImageRgba8(rgba)) => Cow::Borrowed(rgba.as_raw()),
        (PixelFormat::Rgb8, DynamicImage::ImageRgb8(rgb)) => Cow::Borrowed(rgb.as_raw()),
        (PixelFormat::Gray8, DynamicImage::ImageLuma8(gray)) => Cow::Borrowed(gray.as_raw()),
        (PixelFormat::Rgba8, _) => Cow::Owned(image.to_rgba8().into_raw()),
        (PixelFormat::Rgb8, _) => Cow::Owned(image.to_rgb8().into_raw()),
        (PixelFormat::Gray8, _) => Cow::Owned(image.to_luma8().into_raw()),
    };
    copy_rows(&packed, w * format.bytes_per_pixel(), dst, stride)
}

/// Longest side of an image editone reads or writes.
pub const MAX_IMAGE_SIDE: u32 = 16384;
/// Most pixels of an image editone reads or writes: 64 megapixels, more
/// than any camera photo of the faces a generator can edit needs, and
/// small enough that decoding stays within about 1 GiB (16-bit RGBA). The
/// decoder is held to it before it allocates, so a small file that claims
/// a huge picture (a 32 KB 1-bit PNG of 16384 x 16384) is refused at once.
pub const MAX_IMAGE_PIXELS: u64 = 64 << 20;
/// Largest image file read: a 64-megapixel PNG stored uncompressed is
/// about 256 MiB.
const MAX_IMAGE_FILE_BYTES: u64 = 512 << 20;

/// Reads an image file (PNG or JPEG). The file's bytes are capped, its
/// size is checked against [`MAX_IMAGE_SIDE`] and [`MAX_IMAGE_PIXELS`]
/// before anything is decoded, and a JPEG whose data stops before its end
/// marker is refused as truncated.
pub fn load(path: &Path) -> Result<DynamicImage> {
    let bytes = crate::files::read_capped(path, "image", MAX_IMAGE_FILE_BYTES)?;
    let (width, height, format) = probe_bytes(path, &bytes)?;
    check_image_size(width, height).map_err(|e| e.context(format!("'{}'", path.display())))?;
    if format == image::ImageFormat::Jpeg && !jpeg_reaches_its_end(&bytes) {
        return Err(Error::format(format!(
            "'{}' is truncated: its JPEG data stops before the end-of-image marker",
            path.display()
        )));
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(&bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_PIXELS * 16);
    reader.limits(limits);
    reader.decode().map_err(|e| unreadable(path, e))
}

/// The width and height of an image file, read from its header only
/// (nothing is decoded).
pub fn probe(path: &Path) -> Result<(u32, u32)> {
    let bytes = crate::files::read_capped(path, "image", MAX_IMAGE_FILE_BYTES)?;
    probe_bytes(path, &bytes).map(|(w, h, _)| (w, h))
}

fn probe_bytes(path: &Path, bytes: &[u8]) -> Result<(u32, u32, image::ImageFormat)> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| unreadable(path, e))?;
    let format = reader
        .format()
        .filter(|f| matches!(f, image::ImageFormat::Png | image::ImageFormat::Jpeg))
        .ok_or_else(|| Error::format(format!("'{}' is not a PNG or JPEG image", path.display())))?;
    let (width, height) = reader.into_dimensions().map_err(|e| unreadable(path, e))?;
    Ok((width, height, format))
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(format!("'{}' is not a readable PNG or JPEG image: {e}", path.display()))
}

/// Refuses a picture size that [`load`] would not read.
pub fn check_image_size(width: u32, height: u32) -> Result<()> {
    let pixels = width as u64 * height as u64;
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || pixels > MAX_IMAGE_PIXELS {
        return Err(Error::format(format!(
            "{width}x{height} ({:.0} megapixels) is larger than editone reads: at most {MAX_IMAGE_SIDE} pixels a side and {} megapixels",
            pixels as f64 / (1 << 20) as f64,
            MAX_IMAGE_PIXELS >> 20
        )));
    }
    Ok(())
}

/// Whether a JPEG's segments run on to its end-of-image marker: a file cut
/// short decodes without complaint (the missing rows come out grey), so
/// the structure is walked here. Segments with a length are skipped; the
/// entropy-coded data after a start-of-scan runs to the next marker that
/// is neither a stuffed 0xFF00 nor a restart marker.
fn jpeg_reaches_its_end(b: &[u8]) -> bool {
    let mut i = 2; // past SOI
    while i + 1 < b.len() {
        if b[i] != 0xFF {
            return false;
        }
        let marker = b[i + 1];
        match marker {
            0xD9 => return true,
            0xFF => i += 1,                        // fill byte
            0x01 | 0xD0..=0xD7 => i += 2,          // markers without a length
            _ if i + 3 < b.len() => {
                i += 2 + u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
                if marker == 0xDA {
                    i = end_of_scan(b, i);
                }
            }
            _ => return false,
        }
    }
    false
}

/// The index of the marker that ends the entropy-coded data at `i`.
fn end_of_scan(b: &[u8], mut i: usize) -> usize {
    while i + 1 < b.len() {
        if b[i] == 0xFF && !matches!(b[i + 1], 0x00 | 0xD0..=0xD7 | 0xFF) {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// An image from a host buffer of `height` rows of `stride` bytes.
pub fn from_pixels(bytes: &[u8], width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<DynamicImage> {
    let row = width as usize * format.bytes_per_pixel();
    let mut packed = Vec::with_capacity(row * height as usize);
    for y in 0..height as usize {
        let src = bytes.get(y * stride..y * stride + row);
        packed.extend_from_slice(src.ok_or_else(|| Error::invalid("image buffer is too small for its width, height and stride"))?);
    }
    let image = match format {
        PixelFormat::Rgba8 => image::RgbaImage::from_raw(width, height, packed).map(DynamicImage::ImageRgba8),
        PixelFormat::Rgb8 => RgbImage::from_raw(width, height, packed).map(DynamicImage::ImageRgb8),
        PixelFormat::Gray8 => GrayImage::from_raw(width, height, packed).map(DynamicImage::ImageLuma8),
    };
    image.ok_or_else(|| Error::invalid("image buffer does not match its width, height and format"))
}

/// Saves as PNG or JPEG, chosen by the file extension, atomically (see
/// [`crate::files::write_atomic`]); an existing file is replaced only with
/// [`Existing::Replace`]. A picture [`load`] would refuse is not written.
pub fn save(image: &DynamicImage, path: &Path, existing: Existing) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let format = match ext.as_deref() {
        Some("png") => image::ImageFormat::Png,
        Some("jpg") | Some("jpeg") => image::ImageFormat::Jpeg,
        _ => return Err(Error::invalid(format!("'{}': use a .png, .jpg or .jpeg file name", path.display()))),
    };
    check_image_size(image.width(), image.height()).map_err(|e| e.context(format!("cannot write '{}'", path.display())))?;
    let image = match (format, image) {
        (image::ImageFormat::Jpeg, DynamicImage::ImageRgba8(_)) => Cow::Owned(DynamicImage::ImageRgb8(image.to_rgb8())),
        _ => Cow::Borrowed(image),
    };
    crate::files::write_atomic(path, existing, |out| {
        image.write_to(out, format).map_err(|e| Error::new(ErrorKind::Io, format!("cannot write '{}': {e}", path.display())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;

    /// A [N, C, H, W] batch whose pixel values step through [-1.2, 1.2],
    /// past both ends of the official range.
    fn batch(n: i64, c: i64, h: i64, w: i64) -> Tensor {
        Tensor::linspace(-1.2, 1.2, n * c * h * w, (Kind::Float, tch::Device::Cpu)).reshape([n, c, h, w])
    }

    /// The official rule for one value, written out on its own.
    fn official(x: f32) -> u8 {
        (x * 127.5 + 128.0).clamp(0.0, 255.0) as u8
    }

    #[test]
    fn bytes_follow_the_official_rule_in_nhwc_order() {
        let b = batch(2, 3, 4, 5);
        let pixels = HostPixels::of_batch(&b, PixelFormat::Rgb8).unwrap();
        assert_eq!(pixels.len(), 2);
        let values = Vec::<f32>::try_from(b.flatten(0, -1)).unwrap();
        let (second, channels) = (1, 3);
        let image = pixels.image(second).to_image().unwrap().to_rgb8();
        for (x, y, p) in image.enumerate_pixels() {
            for c in 0..channels {
                let index = ((second * channels + c) * 4 + y as usize) * 5 + x as usize;
                assert_eq!(p[c], official(values[index]), "pixel ({x}, {y}) channel {c}");
            }
        }
    }

    #[test]
    fn rgba_views_get_the_same_colours_and_opaque_alpha_without_touching_the_padding() {
        let b = batch(2, 3, 4, 5);
        let (row, stride) = (5 * 4, 5 * 4 + 3);
        let mut direct = vec![7u8; stride * 3 + row];
        HostPixels::of_batch(&b, PixelFormat::Rgba8).unwrap().image(1).write(PixelFormat::Rgba8, &mut direct, stride).unwrap();
        let mut converted = vec![7u8; stride * 3 + row];
        let rgb = HostPixels::of_batch(&b, PixelFormat::Rgb8).unwrap();
        rgb.image(1).write(PixelFormat::Rgba8, &mut converted, stride).unwrap();
        assert_eq!(direct, converted);
        let expected = rgb.image(1).to_image().unwrap().to_rgba8();
        for y in 0..4 {
            assert_eq!(&direct[y * stride..y * stride + row], &expected.as_raw()[y * row..(y + 1) * row], "row {y}");
        }
        for y in 0..3 {
            assert!(direct[y * stride + row..(y + 1) * stride].iter().all(|&p| p == 7), "padding after row {y}");
        }
        assert!(direct.chunks_exact(4).take(5).all(|p| p[3] == 255));
    }

    #[test]
    fn other_layouts_are_converted_as_write_pixels_converts() {
        let gray = HostPixels::of_batch(&batch(1, 1, 3, 3), PixelFormat::Rgba8).unwrap();
        let rgb = HostPixels::of_batch(&batch(1, 3, 3, 3), PixelFormat::Rgb8).unwrap();
        for (pixels, format) in [(&gray, PixelFormat::Rgba8), (&gray, PixelFormat::Rgb8), (&rgb, PixelFormat::Gray8)] {
            let size = 9 * format.bytes_per_pixel();
            let (mut ours, mut reference) = (vec![0u8; size], vec![0u8; size]);
            pixels.image(0).write(format, &mut ours, size / 3).unwrap();
            write_pixels(&pixels.image(0).to_image().unwrap(), format, &mut reference, size / 3).unwrap();
            assert_eq!(ours, reference, "{format:?}");
        }
    }

    /// Everything `render_batches` hands out for 70 seeds of the default
    /// model (batches of 32, 32 and 6), cancelled after `cancel_after`
    /// progress reports if given: (index, raw output, pixels) per image,
    /// the progress reports, and the result.
    #[allow(clippy::type_complexity)]
    fn delivered(ahead: bool, cancel_after: Option<usize>) -> (Vec<(usize, Vec<f32>, Vec<u8>)>, Vec<(u64, u64)>, Result<()>) {
        let model = Model::load_default(Engine::get().unwrap().placement()).expect("the default model is installed (make setup)");
        let latents: Vec<Vec<f32>> = (0..70).map(|seed| model.latent_from_seed(seed, None, 1.0).unwrap()).collect();
        let refs: Vec<&[f32]> = latents.iter().map(|w| w.as_slice()).collect();
        let (mut images, mut reports) = (Vec::new(), Vec::new());
        let mut progress = |_: &str, done: u64, total: u64| {
            reports.push((done, total));
            cancel_after.is_none_or(|n| reports.len() < n)
        };
        let result = render_batches(&model, &refs, Some(PixelFormat::Rgba8), ahead, Some(&mut progress), |i, raw, pixels| {
            let pixels = pixels.expect("pixels were asked for");
            let mut bytes = vec![0u8; pixels.width() as usize * pixels.height() as usize * 4];
            pixels.write(PixelFormat::Rgba8, &mut bytes, pixels.width() as usize * 4)?;
            images.push((i, Vec::<f32>::try_from(raw.flatten(0, -1))?, bytes));
            Ok(())
        });
        (images, reports, result)
    }

    #[test]
    fn rendering_ahead_delivers_the_same_images_reports_and_cancellation() {
        let (plain, plain_reports, plain_result) = delivered(false, None);
        let (ahead, ahead_reports, ahead_result) = delivered(true, None);
        assert!(plain_result.is_ok() && ahead_result.is_ok());
        assert_eq!(plain.iter().map(|d| d.0).collect::<Vec<_>>(), (0..70).collect::<Vec<_>>());
        // CUDA is not bit for bit the same from run to run (about 3e-7), so
        // outputs may differ by that and pixels by one level; a wrong batch
        // would differ by far more.
        assert_eq!(ahead.iter().map(|d| d.0).collect::<Vec<_>>(), (0..70).collect::<Vec<_>>());
        for ((i, raw, bytes), (_, raw_ahead, bytes_ahead)) in plain.iter().zip(&ahead) {
            let raw_diff = raw.iter().zip(raw_ahead).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            let byte_diff = bytes.iter().zip(bytes_ahead).map(|(&a, &b)| a.abs_diff(b)).max();
            assert!(raw_diff <= 1e-5 && byte_diff <= Some(1), "image {i}: outputs {raw_diff}, pixels {byte_diff:?} apart");
        }
        assert_eq!(plain_reports, vec![(32, 70), (64, 70), (70, 70)]);
        assert_eq!(ahead_reports, plain_reports);
        for ahead in [false, true] {
            let (images, reports, result) = delivered(ahead, Some(1));
            assert_eq!(result.unwrap_err().kind, ErrorKind::Cancelled, "ahead {ahead}");
            assert_eq!((images.len(), reports.len()), (32, 1), "ahead {ahead}: only the first batch is delivered");
        }
    }

    #[test]
    fn a_failing_batch_rendered_ahead_fails_in_its_turn() {
        let model = Model::load_default(Engine::get().unwrap().placement()).expect("the default model is installed (make setup)");
        let mut latents: Vec<Vec<f32>> = (0..40).map(|seed| model.latent_from_seed(seed, None, 1.0).unwrap()).collect();
        latents[35].pop();
        let refs: Vec<&[f32]> = latents.iter().map(|w| w.as_slice()).collect();
        for ahead in [false, true] {
            let mut delivered = 0;
            let result = render_batches(&model, &refs, Some(PixelFormat::Rgb8), ahead, None, |_, _, _| {
                delivered += 1;
                Ok(())
            });
            assert!(result.unwrap_err().message.contains("a latent has 99 floats; this model's have 100"), "ahead {ahead}");
            assert_eq!(delivered, 32, "ahead {ahead}: the first batch is delivered before the second's error");
        }
    }

    /// A valid PNG of width x height grey pixels at 1 bit each, all black:
    /// a few kilobytes for any size.
    fn one_bit_png(width: u32, height: u32) -> Vec<u8> {
        use std::io::Write;
        let row = vec![0u8; 1 + width.div_ceil(8) as usize];
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..height {
            z.write_all(&row).unwrap();
        }
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(data);
            let crc = crc32(&c[4..]);
            c.extend_from_slice(&crc.to_be_bytes());
            c
        };
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &ihdr));
        png.extend(chunk(b"IDAT", &z.finish().unwrap()));
        png.extend(chunk(b"IEND", &[]));
        png
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn a_small_file_that_claims_a_huge_picture_is_refused_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.png");
        std::fs::write(&small, one_bit_png(300, 200)).unwrap();
        assert_eq!((load(&small).unwrap().width(), probe(&small).unwrap()), (300, (300, 200)));
        let bomb = dir.path().join("bomb.png");
        let bytes = one_bit_png(16384, 16384);
        assert!(bytes.len() < 100_000, "{} bytes", bytes.len());
        std::fs::write(&bomb, bytes).unwrap();
        let started = std::time::Instant::now();
        let err = load(&bomb).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Format);
        assert!(err.message.contains("16384x16384") && err.message.contains("megapixels"), "{err}");
        assert!(started.elapsed().as_millis() < 500, "refused from the header, not after decoding");
    }

    #[test]
    fn a_truncated_jpeg_is_refused_and_a_whole_one_reads() {
        let dir = tempfile::tempdir().unwrap();
        // Large and varied enough that a quarter of the file ends inside the
        // scan data, past the headers: the case the decoder lets through.
        let image = DynamicImage::ImageRgb8(RgbImage::from_fn(384, 256, |x, y| image::Rgb([(x * y % 251) as u8, (x ^ y) as u8, 90])));
        let whole = dir.path().join("whole.jpg");
        save(&image, &whole, Existing::Refuse).unwrap();
        assert_eq!(load(&whole).unwrap().width(), 384);
        let bytes = std::fs::read(&whole).unwrap();
        for fraction in [4, 2] {
            let cut = dir.path().join(format!("cut{fraction}.jpg"));
            std::fs::write(&cut, &bytes[..bytes.len() / fraction]).unwrap();
            let err = load(&cut).unwrap_err();
            assert!(err.message.contains("truncated"), "1/{fraction}: {err}");
        }
        // Bytes after the end marker (some cameras pad) do not matter.
        let padded = dir.path().join("padded.jpg");
        std::fs::write(&padded, [bytes.as_slice(), &[0u8; 64]].concat()).unwrap();
        assert_eq!(load(&padded).unwrap().height(), 256);
    }

    #[test]
    fn fitting_keeps_the_aspect_and_gives_the_longer_side() {
        assert_eq!(fit_within(64, 64, 96), (96, 96));
        assert_eq!(fit_within(90, 70, 45), (45, 35));
        assert_eq!(fit_within(70, 90, 100), (78, 100));
        assert_eq!(fit_within(1000, 3, 10), (10, 1));
        // The image crate's own fitting, which eo_render_to_file used, agrees.
        for (w, h, side) in [(90, 70, 45), (70, 90, 100), (1000, 3, 10), (333, 517, 64)] {
            let resized = DynamicImage::new_rgb8(w, h).resize(side, side, FilterType::Nearest);
            assert_eq!(fit_within(w, h, side), (resized.width(), resized.height()), "{w}x{h} to {side}");
        }
    }

    #[test]
    fn saving_keeps_existing_files_and_refuses_what_load_would_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        let grey = |v| DynamicImage::ImageLuma8(GrayImage::from_pixel(8, 8, image::Luma([v])));
        save(&grey(10), &path, Existing::Refuse).unwrap();
        assert_eq!(save(&grey(20), &path, Existing::Refuse).unwrap_err().kind, ErrorKind::Exists);
        assert_eq!(load(&path).unwrap().to_luma8()[(0, 0)].0, [10]);
        save(&grey(30), &path, Existing::Replace).unwrap();
        assert_eq!(load(&path).unwrap().to_luma8()[(0, 0)].0, [30]);
        let wide = DynamicImage::ImageLuma8(GrayImage::new(MAX_IMAGE_SIDE + 1, 1));
        let err = save(&wide, &dir.path().join("wide.png"), Existing::Refuse).unwrap_err();
        assert!(err.message.contains("larger than editone reads"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing else was written");
    }

    #[test]
    fn bad_channel_counts_and_small_buffers_are_refused() {
        let err = HostPixels::of_batch(&batch(1, 2, 3, 3), PixelFormat::Rgb8).err().expect("2 channels are refused");
        assert!(err.to_string().contains("2-channel"), "{err}");
        let pixels = HostPixels::of_batch(&batch(1, 3, 3, 3), PixelFormat::Rgb8).unwrap();
        let mut short = vec![0u8; 26];
        let err = pixels.image(0).write(PixelFormat::Rgb8, &mut short, 9).unwrap_err();
        assert!(err.to_string().contains("too small"), "{err}");
        let err = pixels.image(0).write(PixelFormat::Rgb8, &mut [0u8; 64], 8).unwrap_err();
        assert!(err.to_string().contains("too small"), "a stride under a row: {err}");
    }
}
