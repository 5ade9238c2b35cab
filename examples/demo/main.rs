//! `make demo`: the main job on the default model, from nothing to two
//! pictures. One example face is turned along a SeFa direction, d* is
//! optimised, and the edit is transferred to 12 other faces.
//!
//! demo/contact-sheet.png: one row per face: original, naive offset
//! (w_i + dw) and editone (w_i + alpha_i n), with alpha under each editone
//! face and the example's row framed in red.
//! demo/strength-sweep.png: the example's strength swept around the
//! user's edit; every face follows.
//! demo/faces-astronaut.png and demo/faces-group.png: the same edit on
//! real and synthetic group photos (faces.rs).

mod faces;

use editone::edit::{sefa, Edit, LatentShape, OptimizeOptions};
use editone::{render, Model};
use font8x8::UnicodeFonts;
use image::imageops::FilterType;
use image::{Rgb, RgbImage};
use std::path::Path;
use std::time::Instant;

const EXAMPLE_SEED: u64 = 1;
/// The 12 other faces are picked from these seeds to span a range of head
/// poses, so that the sheet shows faces that need more and less turning.
const CANDIDATE_SEEDS: std::ops::RangeInclusive<u64> = 2..=121;
const OTHERS: usize = 12;
/// SeFa's first direction turns the head left/right on this model.
const DIRECTION: usize = 0;
const STRENGTH: f32 = 4.0;
pub const CELL: u32 = 128;
const LABEL: u32 = 14;
const MARGIN: u32 = 6;
const TITLE: u32 = 20;

pub fn step<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    println!("{:>7.2} s  {what}", t.elapsed().as_secs_f64());
    out
}

/// Draws ASCII text with the 8x8 bitmap font, centred on `cx`.
pub fn text(img: &mut RgbImage, s: &str, cx: u32, y: u32, color: Rgb<u8>) {
    let x0 = cx.saturating_sub(4 * s.len() as u32);
    for (i, ch) in s.chars().enumerate() {
        let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else { continue };
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                let (x, yy) = (x0 + 8 * i as u32 + col, y + row as u32);
                if bits & (1 << col) != 0 && x < img.width() && yy < img.height() {
                    img.put_pixel(x, yy, color);
                }
            }
        }
    }
}

fn frame(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, color: Rgb<u8>) {
    for t in 0..3 {
        for i in 0..w {
            img.put_pixel(x + i, y + t, color);
            img.put_pixel(x + i, y + h - 1 - t, color);
        }
        for j in 0..h {
            img.put_pixel(x + t, y + j, color);
            img.put_pixel(x + w - 1 - t, y + j, color);
        }
    }
}

/// Renders latents and scales each face up to CELL x CELL.
fn faces(model: &Model, latents: &[Vec<f32>]) -> Vec<RgbImage> {
    let refs: Vec<&[f32]> = latents.iter().map(|w| w.as_slice()).collect();
    let mut out = Vec::new();
    render::render_in_batches(model, &refs, Some(render::PixelFormat::Rgb8), None, |_, _, pixels| {
        let face = pixels.expect("pixels were asked for").to_image()?.to_rgb8();
        out.push(image::imageops::resize(&face, CELL, CELL, FilterType::Lanczos3));
        Ok(())
    })
    .expect("render");
    out
}

/// A grid of faces with column titles and optional labels under each cell.
pub struct Sheet {
    /// The sheet so far.
    pub img: RgbImage,
    cols: u32,
}

impl Sheet {
    pub fn new(cols: u32, rows: u32, titles: &[String]) -> Sheet {
        let w = cols * (CELL + MARGIN) + MARGIN;
        let h = TITLE + rows * (CELL + LABEL + MARGIN) + MARGIN;
        let mut img = RgbImage::from_pixel(w, h, Rgb([24, 24, 28]));
        for (c, t) in titles.iter().enumerate() {
            text(&mut img, t, MARGIN + c as u32 * (CELL + MARGIN) + CELL / 2, 6, Rgb([235, 235, 235]));
        }
        Sheet { img, cols }
    }

    fn cell(&self, col: u32, row: u32) -> (u32, u32) {
        (MARGIN + col * (CELL + MARGIN), TITLE + row * (CELL + LABEL + MARGIN))
    }

    pub fn put(&mut self, col: u32, row: u32, face: &RgbImage, label: &str) {
        let (x, y) = self.cell(col, row);
        image::imageops::replace(&mut self.img, face, x as i64, y as i64);
        text(&mut self.img, label, x + CELL / 2, y + CELL + 3, Rgb([200, 200, 120]));
    }

    fn mark_row(&mut self, row: u32) {
        let (x, y) = self.cell(0, row);
        let w = self.cols * (CELL + MARGIN) - MARGIN;
        frame(&mut self.img, x - 3, y - 3, w + 6, CELL + LABEL + 4, Rgb([220, 40, 40]));
    }
}

/// Seeds and latents of OTHERS faces whose positions along the direction
/// are evenly spread over the candidates' range.
fn spread_by_pose(model: &Model, direction: &[f32]) -> (Vec<u64>, Vec<Vec<f32>>) {
    let mut candidates: Vec<(f64, u64, Vec<f32>)> = CANDIDATE_SEEDS
        .map(|s| {
            let w = model.latent_from_seed(s, None, 1.0).unwrap();
            (editone::edit::method::dot(&w, direction), s, w)
        })
        .collect();
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let last = candidates.len() - 1;
    (0..OTHERS)
        .map(|i| {
            let (_, seed, w) = &candidates[i * last / (OTHERS - 1)];
            (*seed, w.clone())
        })
        .unzip()
}

fn main() {
    let total = Instant::now();
    let model = step("load the default model (DCGAN, DigiFace-1M)", || Model::load_default(editone::Engine::get().unwrap().placement()).expect("make setup"));
    let shape = LatentShape::of(model.info());
    let direction = step("SeFa directions", || sefa::directions(&model, DIRECTION + 1, None).unwrap())[DIRECTION].clone();
    let example = model.latent_from_seed(EXAMPLE_SEED, None, 1.0).unwrap();
    let (seeds, others) = spread_by_pose(&model, &direction.vector);

    let mut edit = Edit::from_direction(shape, &example, &direction.vector, STRENGTH).unwrap();
    println!("          example: seed {EXAMPLE_SEED}, turned by {STRENGTH} along SeFa direction {DIRECTION}");
    let options = OptimizeOptions::fast();
    let report = step("optimise d* (fast preset)", || edit.optimize(&model, &options, None).unwrap());
    println!(
        "          {} iterations{}, loss {:.4} -> {:.4}",
        report.iterations,
        if report.stopped_early { " (stopped early)" } else { "" },
        report.initial_loss,
        report.best_loss
    );

    println!("          12 other faces, chosen from seeds 2-121 to span head poses: {seeds:?}");
    let all: Vec<Vec<f32>> = std::iter::once(example.clone()).chain(others.iter().cloned()).collect();
    let (naive, ours, alphas) = step("transfer to 12 faces", || {
        let naive: Vec<Vec<f32>> = all.iter().map(|w| edit.apply_naive(w).unwrap()).collect();
        let (ours, alphas): (Vec<Vec<f32>>, Vec<f64>) = all.iter().map(|w| edit.apply(w).unwrap()).unzip();
        (naive, ours, alphas)
    });

    std::fs::create_dir_all("demo").unwrap();
    step("contact sheet", || {
        let (orig, naive, ours) = (faces(&model, &all), faces(&model, &naive), faces(&model, &ours));
        let titles = ["original", "naive w+dw", "editone"].map(String::from);
        let mut sheet = Sheet::new(3, all.len() as u32, &titles);
        for (r, ((o, n), e)) in orig.iter().zip(&naive).zip(&ours).enumerate() {
            let tag = if r == 0 { "example".to_string() } else { format!("seed {}", seeds[r - 1]) };
            sheet.put(0, r as u32, o, &tag);
            sheet.put(1, r as u32, n, &format!("+{STRENGTH}"));
            sheet.put(2, r as u32, e, &format!("alpha {:+.2}", alphas[r]));
        }
        sheet.mark_row(0);
        sheet.img.save(Path::new("demo/contact-sheet.png")).unwrap();
    });

    step("strength sweep", || {
        let a0 = edit.strength();
        let offsets = [-2.0, -1.0, 0.0, 1.0, 2.0];
        let rows: Vec<&Vec<f32>> = all.iter().take(7).collect();
        let titles: Vec<String> = offsets.iter().map(|t| format!("a = {:.1}", a0 + t)).collect();
        let mut sheet = Sheet::new(offsets.len() as u32, rows.len() as u32, &titles);
        for (c, t) in offsets.iter().enumerate() {
            edit.set_strength(a0 + t).unwrap();
            let (moved, alphas): (Vec<Vec<f32>>, Vec<f64>) = rows.iter().map(|w| edit.apply(w).unwrap()).unzip();
            for (r, face) in faces(&model, &moved).iter().enumerate() {
                sheet.put(c as u32, r as u32, face, &format!("alpha {:+.2}", alphas[r]));
            }
        }
        edit.set_strength(a0).unwrap();
        sheet.mark_row(0);
        sheet.img.save(Path::new("demo/strength-sweep.png")).unwrap();
    });
    faces::run(&model, &edit);
    println!(
        "{:>7.2} s  in all; wrote demo/contact-sheet.png, demo/strength-sweep.png, demo/faces-astronaut.png and demo/faces-group.png",
        total.elapsed().as_secs_f64()
    );
}
