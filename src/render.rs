//! From generator output to pixels: the official float-to-uint8 rule,
//! resampling to the host's size, pixel formats, and image files.

use crate::error::{Error, ErrorKind, Result};
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
/// tensor (still on the engine's device) and, when `pixels` is asked for,
/// as pixels (converted a batch at a time on the device, so only bytes
/// cross to the host), and reporting progress ("render", images done,
/// images in all) after each batch.
pub fn render_in_batches(
    model: &Model,
    latents: &[&[f32]],
    pixels: bool,
    mut progress: Option<Progress<'_>>,
    mut sink: impl FnMut(usize, &Tensor, Option<DynamicImage>) -> Result<()>,
) -> Result<()> {
    for (b, chunk) in latents.chunks(BATCH).enumerate() {
        let images = model.render_on_device(chunk)?;
        let converted = if pixels { to_images(&images)?.into_iter().map(Some).collect() } else { vec![None; chunk.len()] };
        for (i, image) in converted.into_iter().enumerate() {
            sink(b * BATCH + i, &images.get(i as i64), image)?;
        }
        report(&mut progress, "render", (b * BATCH + chunk.len()) as u64, latents.len() as u64)?;
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

/// One generator output [C, H, W] in [-1, 1] to an image, converted as the
/// official generate.py does: clamp(x * 127.5 + 128, 0, 255), truncated.
pub fn to_image(img: &Tensor) -> Result<DynamicImage> {
    Ok(to_images(&img.unsqueeze(0))?.remove(0))
}

/// [`to_image`] for a batch [N, C, H, W], converted in one pass on the
/// batch's device.
pub fn to_images(batch: &Tensor) -> Result<Vec<DynamicImage>> {
    let (n, c, h, w) = batch.size4().map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
    let bytes = (batch.to_kind(Kind::Float) * 127.5 + 128.0).clamp(0.0, 255.0).to_kind(Kind::Uint8);
    let nhwc = bytes.permute([0, 2, 3, 1]).contiguous().to_device(tch::Device::Cpu);
    let (w, h) = (w as u32, h as u32);
    (0..n)
        .map(|i| {
            let pixels = Vec::<u8>::try_from(nhwc.get(i).flatten(0, -1))?;
            let image = match c {
                3 => RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
                1 => GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
                _ => None,
            };
            image.ok_or_else(|| Error::invalid(format!("cannot turn a {c}-channel output into an image")))
        })
        .collect()
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
    let (w, h) = (image.width() as usize, image.height() as usize);
    // Rendered images are RGB or gray already: copied once, not converted.
    let packed: Cow<[u8]> = match (format, image) {
        (PixelFormat::Rgb8, DynamicImage::ImageRgb8(rgb)) => Cow::Borrowed(rgb.as_raw()),
        (PixelFormat::Gray8, DynamicImage::ImageLuma8(gray)) => Cow::Borrowed(gray.as_raw()),
        (PixelFormat::Rgba8, _) => Cow::Owned(image.to_rgba8().into_raw()),
        (PixelFormat::Rgb8, _) => Cow::Owned(image.to_rgb8().into_raw()),
        (PixelFormat::Gray8, _) => Cow::Owned(image.to_luma8().into_raw()),
    };
    let row = w * format.bytes_per_pixel();
    if stride < row || dst.len() < stride * (h - 1) + row {
        return Err(Error::invalid("image buffer is too small for its width, height and stride"));
    }
    for (y, src) in packed.chunks_exact(row).enumerate() {
        dst[y * stride..y * stride + row].copy_from_slice(src);
    }
    Ok(())
}

/// Reads an image file (PNG or JPEG); the decoder checks the data and
/// refuses images over 16384 pixels a side.
pub fn load(path: &Path) -> Result<DynamicImage> {
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read '{}': {e}", path.display())))?
        .with_guessed_format()
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read '{}': {e}", path.display())))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16384);
    limits.max_image_height = Some(16384);
    reader.limits(limits);
    reader.decode().map_err(|e| Error::format(format!("'{}' is not a readable PNG or JPEG image: {e}", path.display())))
}

/// An image from a host buffer of `height` rows of `stride` bytes.
pub fn from_pixels(bytes: &[u8], width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<DynamicImage> {
    let row = width as usize * format.bytes_per_pixel();
    let packed: Vec<u8> = (0..height as usize).flat_map(|y| bytes[y * stride..y * stride + row].iter().copied()).collect();
    let image = match format {
        PixelFormat::Rgba8 => image::RgbaImage::from_raw(width, height, packed).map(DynamicImage::ImageRgba8),
        PixelFormat::Rgb8 => RgbImage::from_raw(width, height, packed).map(DynamicImage::ImageRgb8),
        PixelFormat::Gray8 => GrayImage::from_raw(width, height, packed).map(DynamicImage::ImageLuma8),
    };
    image.ok_or_else(|| Error::invalid("image buffer does not match its width, height and format"))
}

/// Saves as PNG or JPEG, chosen by the file extension.
pub fn save(image: &DynamicImage, path: &Path) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let format = match ext.as_deref() {
        Some("png") => image::ImageFormat::Png,
        Some("jpg") | Some("jpeg") => image::ImageFormat::Jpeg,
        _ => return Err(Error::invalid(format!("'{}': use a .png, .jpg or .jpeg file name", path.display()))),
    };
    let image = match (format, image) {
        (image::ImageFormat::Jpeg, DynamicImage::ImageRgba8(_)) => DynamicImage::ImageRgb8(image.to_rgb8()),
        _ => image.clone(),
    };
    image
        .save_with_format(path, format)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot write '{}': {e}", path.display())))
}
