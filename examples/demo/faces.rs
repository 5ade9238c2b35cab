//! The real-photo half of `make demo` (docs/faces.md): the main demo's
//! edit, made on generated faces, applied to the astronaut's face and to
//! every face of a synthetic group photo, each face with its own alpha.
//!
//! demo/faces-astronaut.png: the photo around her face, the aligned crop,
//! its inversion, and the edit pasted back in residual and plain modes.
//! demo/faces-group.png: a synthetic group photo with the faces found
//! (boxes and landmarks), and the same photo with every face edited.

// Only the photo of a group is needed here, not its truth.
#[allow(dead_code)]
#[path = "../../tests/common/groups.rs"]
mod groups;

use super::{step, text, Sheet, CELL};
use editone::edit::Edit;
use editone::faces::align::Alignment;
use editone::faces::mtcnn::{DetectOptions, Detector};
use editone::faces::{self, Face, PasteMode};
use editone::invert::{InvertOptions, Photo};
use editone::{render, Model};
use image::imageops::FilterType;
use image::{Rgb, RgbImage};
use std::path::Path;
use std::sync::Arc;

/// The astronaut photo from scikit-image's wheel (make setup).
const ASTRONAUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/test-data/astronaut.png");

/// Finds, aligns and inverts every face of `photo`.
fn invert_all(model: &Model, detector: &Detector, photo: &RgbImage) -> (Vec<Face>, Vec<Photo>) {
    let found = detector.detect(photo, &DetectOptions::default()).expect("detection");
    let placed = faces::place(model, &found, model.face_alignment()).expect("alignment");
    let photos = faces::invert_faces(model, Arc::new(photo.clone()), &placed, &InvertOptions::default(), None).expect("inversion");
    (found, photos)
}

/// Every face's latent moved by the edit (its own alpha).
fn edited(edit: &Edit, photos: &[Photo]) -> Vec<Vec<f32>> {
    photos.iter().map(|p| edit.apply(p.base()).expect("apply").0).collect()
}

fn composite(model: &Model, photos: &[Photo], latents: &[Vec<f32>], mode: PasteMode) -> RgbImage {
    let pairs: Vec<(&Photo, &[f32])> = photos.iter().zip(latents).map(|(p, w)| (p, w.as_slice())).collect();
    faces::render_photo(model, &pairs, mode).expect("render")
}

/// The square of `image` around a face, twice its box, as a sheet cell.
fn around(image: &RgbImage, face: &Face) -> RgbImage {
    let [l, t, r, b] = face.bbox;
    let side = ((r - l).max(b - t) * 2.0) as u32;
    let (cx, cy) = (((l + r) / 2.0) as u32, ((t + b) / 2.0) as u32);
    let (x, y) = (cx.saturating_sub(side / 2), cy.saturating_sub(side / 2));
    let square = image::imageops::crop_imm(image, x, y, side.min(image.width() - x), side.min(image.height() - y)).to_image();
    image::imageops::resize(&square, CELL, CELL, FilterType::Lanczos3)
}

fn cell_of(model: &Model, latent: &[f32]) -> RgbImage {
    let face = render::to_image(&model.render(&[latent]).expect("render").get(0)).expect("picture").to_rgb8();
    image::imageops::resize(&face, CELL, CELL, FilterType::Lanczos3)
}

fn astronaut(model: &Model, detector: &Detector, edit: &Edit) {
    let photo = image::open(ASTRONAUT).expect("the astronaut photo (make setup)").to_rgb8();
    let (found, photos) = invert_all(model, detector, &photo);
    let moved = edited(edit, &photos);
    let target = faces::targets(&photo, &[photos[0].face.expect("a face")], 64);
    let psnr = editone::invert::psnr(&model.render(&[photos[0].base()]).expect("render"), &target);
    let aligned = render::to_image(&target.get(0)).expect("picture").to_rgb8();
    let titles = ["photo", "aligned", "inverted", "residual", "plain"].map(String::from);
    let mut sheet = Sheet::new(5, 1, &titles);
    sheet.put(0, 0, &around(&photo, &found[0]), "1 face found");
    sheet.put(1, 0, &image::imageops::resize(&aligned, CELL, CELL, FilterType::Lanczos3), Alignment::Template.name());
    sheet.put(2, 0, &cell_of(model, photos[0].base()), &format!("{psnr:.1} dB"));
    let alpha = edit.alpha(photos[0].base()).expect("alpha");
    sheet.put(3, 0, &around(&composite(model, &photos, &moved, PasteMode::Residual), &found[0]), &format!("alpha {alpha:+.2}"));
    sheet.put(4, 0, &around(&composite(model, &photos, &moved, PasteMode::Plain), &found[0]), "");
    sheet.img.save(Path::new("demo/faces-astronaut.png")).expect("write");
}

/// Boxes and landmarks drawn on a copy.
fn marked(image: &RgbImage, found: &[Face]) -> RgbImage {
    let mut out = image.clone();
    let mut dot = |x: f32, y: f32, colour: Rgb<u8>| {
        if x >= 0.0 && y >= 0.0 && (x as u32) < out.width() && (y as u32) < out.height() {
            out.put_pixel(x as u32, y as u32, colour);
        }
    };
    for face in found {
        let [l, t, r, b] = face.bbox;
        for k in 0..=200 {
            let f = k as f32 / 200.0;
            for (x, y) in [(l + f * (r - l), t), (l + f * (r - l), b), (l, t + f * (b - t)), (r, t + f * (b - t))] {
                dot(x, y, Rgb([255, 230, 0]));
            }
        }
        for [x, y] in face.landmarks {
            for d in -2..=2 {
                dot(x + d as f32, y, Rgb([255, 40, 40]));
                dot(x, y + d as f32, Rgb([255, 40, 40]));
            }
        }
    }
    out
}

fn group(model: &Model, detector: &Detector, edit: &Edit) {
    let photo = groups::synthetic_group(model, 4, 6, (960, 540)).image;
    let (found, photos) = invert_all(model, detector, &photo);
    let moved = edited(edit, &photos);
    let after = composite(model, &photos, &moved, PasteMode::Residual);
    let (w, h) = photo.dimensions();
    let mut sheet = RgbImage::from_pixel(w, 2 * h + 40, Rgb([24, 24, 28]));
    text(&mut sheet, &format!("{} faces found", found.len()), w / 2, 6, Rgb([235, 235, 235]));
    image::imageops::replace(&mut sheet, &marked(&photo, &found), 0, 20);
    text(&mut sheet, "every face edited, each by its own alpha", w / 2, h + 26, Rgb([235, 235, 235]));
    image::imageops::replace(&mut sheet, &after, 0, (h + 40) as i64);
    sheet.save(Path::new("demo/faces-group.png")).expect("write");
}

/// Runs the real-photo demo with the main demo's `edit`.
pub fn run(model: &Model, edit: &Edit) {
    let detector = Detector::load_default(model.device()).expect("the face detector (make setup)");
    step("astronaut: find, align, invert, edit, paste back", || astronaut(model, &detector, edit));
    step("group photo: every face", || group(model, &detector, edit));
}
