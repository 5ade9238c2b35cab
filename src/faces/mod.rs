//! Real photos: faces found with their five landmarks ([`mtcnn`]), each
//! aligned to the crop the model was trained on ([`align`]), and the
//! edited faces warped back into the photo through a feathered mask
//! ([`paste`]).

pub mod align;
pub mod mtcnn;
pub mod paste;

/// A face found in a photo, in photo pixel coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Face {
    /// left, top, right, bottom of the detector's box.
    pub bbox: [f32; 4],
    /// The detector's probability that the box holds a face, 0..1.
    pub score: f32,
    /// Left eye, right eye, nose tip, left and right mouth corners, as
    /// seen in the picture ("left" is the smaller x), each (x, y).
    pub landmarks: [[f32; 2]; 5],
}

use crate::error::{Error, Result};
use crate::invert::{self, InvertOptions, Photo, PhotoFace};
use crate::model::Model;
use crate::progress::{report, Progress};
use align::Alignment;
use image::RgbImage;
use paste::Patch;
use std::sync::Arc;
use tch::{Kind, Tensor};

/// Each face aligned to `model`'s crop: where it sits in the photo.
pub fn place(model: &Model, faces: &[Face], alignment: Alignment) -> Result<Vec<PhotoFace>> {
    let resolution = model.info().resolution as u32;
    faces.iter().map(|face| Ok(PhotoFace { face: *face, to_crop: alignment.transform(face, resolution)? })).collect()
}

/// The aligned crops of `faces` as the projector's targets: [N, 3, R, R]
/// in [-1, 1].
pub fn targets(image: &RgbImage, faces: &[PhotoFace], resolution: u32) -> Tensor {
    let crops: Vec<Tensor> = faces.iter().map(|f| align::extract(image, &f.to_crop, resolution)).collect();
    Tensor::cat(&crops, 0).clamp(0.0, 255.0) / 127.5 - 1.0
}

/// Inverts `faces` of one photo: one latent per face, each remembering the
/// photo (shared), its face and its transform. Models without noise
/// inputs project all faces in one batch; the others one face at a time,
/// reported as one run. Progress: ("invert", step, total steps).
pub fn invert_faces(
    model: &Model,
    image: Arc<RgbImage>,
    faces: &[PhotoFace],
    options: &InvertOptions,
    mut progress: Option<Progress<'_>>,
) -> Result<Vec<Photo>> {
    if faces.is_empty() {
        return Err(Error::invalid("no face to invert"));
    }
    let resolution = model.info().resolution as u32;
    let all = targets(&image, faces, resolution);
    let batch = if model.noise_maps()?.is_empty() { faces.len() } else { 1 };
    let steps = options.steps.unwrap_or_else(|| invert::default_steps(model)) as u64;
    let total = steps * faces.len().div_ceil(batch) as u64;
    let mut latents = Vec::with_capacity(faces.len());
    for (k, start) in (0..faces.len()).step_by(batch).enumerate() {
        let n = batch.min(faces.len() - start);
        let offset = k as u64 * steps;
        let mut relay = |stage: &str, done: u64, _: u64| report(&mut progress, stage, offset + done, total).is_ok();
        latents.extend(invert::invert(model, &all.narrow(0, start as i64, n as i64), options, Some(&mut relay))?);
    }
    Ok(faces.iter().zip(latents).map(|(face, w)| Photo::of_face(image.clone(), *face, resolution, w)).collect())
}

/// How a photo's faces are drawn back into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasteMode {
    /// The edit's change added to the photo: an identity edit returns the
    /// photo exactly, and the photo's own detail stays.
    Residual,
    /// The generator's face itself, blended in.
    Plain,
}

/// The photo with every face's edit: `faces` pairs each face's photo
/// (from [`invert_faces`] or [`Photo::of_face`]) with its edited latent.
/// All must be faces of the same picture; one call composites them all.
pub fn render_photo(model: &Model, faces: &[(&Photo, &[f32])], mode: PasteMode) -> Result<RgbImage> {
    let Some((first, _)) = faces.first() else {
        return Err(Error::invalid("no face to render"));
    };
    let mut placed = Vec::with_capacity(faces.len());
    for (photo, _) in faces {
        placed.push(photo.face.ok_or_else(|| Error::invalid("a latent without a face in a photo cannot be composited"))?);
        if !same_picture(&photo.image, &first.image) {
            return Err(Error::invalid("the faces come from different photos: render each photo on its own"));
        }
    }
    let edited: Vec<&[f32]> = faces.iter().map(|(_, w)| *w).collect();
    // The faces' edits in batches of 8, not one generator run per face
    // (and not all at once: a large model's batch costs memory).
    let batches = edited.chunks(8).map(|chunk| model.render(chunk)).collect::<Result<Vec<_>>>()?;
    let renders = Tensor::cat(&batches, 0).to_kind(Kind::Float);
    let mut patches = Vec::with_capacity(faces.len());
    for (k, ((photo, _), face)) in faces.iter().zip(placed).enumerate() {
        let render = renders.get(k as i64);
        let patch = match mode {
            PasteMode::Residual => Patch::Change((render - photo.base_render(model)?.to_device(tch::Device::Cpu)) * 127.5),
            PasteMode::Plain => Patch::Face((render + 1.0) * 127.5),
        };
        patches.push((face.to_crop, patch));
    }
    paste::composite(&first.image, &patches)
}

/// The same picture: the same shared copy, or equal pixels.
fn same_picture(a: &Arc<RgbImage>, b: &Arc<RgbImage>) -> bool {
    Arc::ptr_eq(a, b) || a.as_ref() == b.as_ref()
}
