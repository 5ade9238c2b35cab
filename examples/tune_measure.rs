//! Measures pivotal tuning (src/tune.rs) on the default model: face PSNR
//! before and after on synthetic group photos and the astronaut, the time
//! to tune 6 faces, and the locality (base against tuned output on 64
//! random seeds). The README's defaults were chosen with it.
//!
//! Also, on the first group: the two paste modes through the tuned model
//! (the faces' PSNR and sharpness against the photo unedited, and how an
//! edit at strength 3 reads in each), and the d* transfer to generated
//! faces rendered through the tuned generator next to the base.
//!
//! cargo run --release --example tune_measure -- [STEPS [LR [LOCALITY_WEIGHT [REACH [GROUPS]]]]]

#[allow(dead_code)]
#[path = "../tests/common/groups.rs"]
mod groups;

use editone::edit::{sefa, Edit, LatentShape, OptimizeOptions};
use editone::faces::{self, mtcnn::{DetectOptions, Detector}, PasteMode};
use image::RgbImage;
use editone::invert::{psnr, InvertOptions, Photo};
use editone::model::{Model, Placement};
use editone::tune::{self, TuneOptions};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let args: Vec<f64> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let d = TuneOptions::default();
    let options = TuneOptions {
        steps: args.first().map_or(d.steps, |&v| v as u32),
        learning_rate: *args.get(1).unwrap_or(&d.learning_rate),
        locality_weight: *args.get(2).unwrap_or(&d.locality_weight),
        locality_reach: *args.get(3).unwrap_or(&d.locality_reach),
        ..d
    };
    let groups = args.get(4).map_or(2, |&v| v as u64);
    // 2 threads, as the README's timings; THREADS=1 on a busy machine,
    // where two spinning threads per process slow everything down.
    let threads = std::env::var("THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads);
    println!("options: {options:?}, {threads} threads");
    let model = Model::load_default(Placement::default()).expect("default model");
    let detector = Detector::load_default(tch::Device::Cpu).expect("face detector");
    let (mut before, mut after, mut locality) = (Vec::new(), Vec::new(), Vec::new());
    for seed in 1..=groups {
        let group = groups::synthetic_group(&model, seed, 6, (1280, 886));
        let photos = invert_photo(&model, &detector, group.image);
        let (b, a, l, tuned) = measure(&model, &photos, &options, &format!("group {seed}"));
        if seed == 1 {
            let edit = sefa_edit(&model);
            paste_modes(&tuned, &photos, &edit);
            transfer(&model, &tuned, &edit);
        }
        before.extend(b);
        after.extend(a);
        locality.extend(l);
    }
    let astronaut = image::open(concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/test-data/astronaut.png")).expect("astronaut").to_rgb8();
    let photos = invert_photo(&model, &detector, astronaut);
    let (b, a, _, _) = measure(&model, &photos, &options, "astronaut");
    before.extend(b);
    after.extend(a);
    summary("face PSNR before tuning", &before);
    summary("face PSNR after tuning", &after);
    summary("locality PSNR, 64 seeds per tuning", &locality);
}

fn invert_photo(model: &Model, detector: &Detector, image: image::RgbImage) -> Vec<Photo> {
    let found = detector.detect(&image, &DetectOptions::default()).expect("detect");
    let placed = faces::place(model, &found, model.face_alignment()).expect("place");
    faces::invert_faces(model, Arc::new(image), &placed, &InvertOptions::default(), None).expect("invert")
}

/// Tunes on `photos`; returns face PSNRs before and after, and the
/// locality PSNRs.
fn measure(model: &Model, photos: &[Photo], options: &TuneOptions, what: &str) -> (Vec<f64>, Vec<f64>, Vec<f64>, Model) {
    let refs: Vec<&Photo> = photos.iter().collect();
    let start = Instant::now();
    let tuned = tune::tune(model, &refs, options, None).expect("tune");
    let seconds = start.elapsed().as_secs_f64();
    let face_psnr = |m: &Model| -> Vec<f64> {
        photos.iter().map(|p| psnr(&m.render(&[p.base()]).unwrap(), &p.target(64).unwrap())).collect()
    };
    let (b, a) = (face_psnr(model), face_psnr(&tuned));
    let seeds: Vec<Vec<f32>> = (1000..1064).map(|s| model.latent_from_seed(s, None, 1.0).unwrap()).collect();
    let l: Vec<f64> = seeds.iter().map(|w| psnr(&tuned.render(&[w]).unwrap(), &model.render(&[w]).unwrap())).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "{what}: {} faces tuned in {seconds:.1} s; PSNR {:.1} -> {:.1} dB (min after {:.1}); locality mean {:.1}, min {:.1} dB",
        photos.len(),
        mean(&b),
        mean(&a),
        a.iter().cloned().fold(f64::INFINITY, f64::min),
        mean(&l),
        l.iter().cloned().fold(f64::INFINITY, f64::min)
    );
    (b, a, l, tuned)
}

/// The demo's edit: SeFa direction 0 on seed 1 at strength 3, d*
/// optimised with the fast preset on the base.
fn sefa_edit(model: &Model) -> Edit {
    let direction = sefa::directions(model, 1, None).unwrap().remove(0);
    let example = model.latent_from_seed(1, None, 1.0).unwrap();
    let mut edit = Edit::from_direction(LatentShape::of(model.info()), &example, &direction.vector, 3.0).unwrap();
    edit.optimize(model, &OptimizeOptions::fast(), None).unwrap();
    edit
}

/// The faces' boxes (their crops' bounds) of a photo's faces.
fn boxes(photos: &[Photo]) -> Vec<[u32; 4]> {
    photos.iter().map(|p| p.crop).collect()
}

/// PSNR of `a` against `b` over the boxes, and the mean absolute 4-neighbour
/// Laplacian of `a` there (sharpness).
fn in_boxes(a: &RgbImage, b: &RgbImage, boxes: &[[u32; 4]]) -> (f64, f64) {
    let (mut se, mut lap, mut n) = (0f64, 0f64, 0f64);
    for &[x0, y0, w, h] in boxes {
        for y in y0.max(1)..(y0 + h).min(a.height() - 1) {
            for x in x0.max(1)..(x0 + w).min(a.width() - 1) {
                for c in 0..3 {
                    let v = |xx: u32, yy: u32| a.get_pixel(xx, yy).0[c] as f64;
                    se += (v(x, y) - b.get_pixel(x, y).0[c] as f64).powi(2);
                    lap += (4.0 * v(x, y) - v(x - 1, y) - v(x + 1, y) - v(x, y - 1) - v(x, y + 1)).abs();
                    n += 1.0;
                }
            }
        }
    }
    let mse = se / n;
    (if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0f64.powi(2) / mse).log10() }, lap / n)
}

/// Mean absolute difference of two pictures over the boxes.
fn change(a: &RgbImage, b: &RgbImage, boxes: &[[u32; 4]]) -> f64 {
    let (mut d, mut n) = (0f64, 0f64);
    for &[x0, y0, w, h] in boxes {
        for y in y0..(y0 + h).min(a.height()) {
            for x in x0..(x0 + w).min(a.width()) {
                for c in 0..3 {
                    d += (a.get_pixel(x, y).0[c] as f64 - b.get_pixel(x, y).0[c] as f64).abs();
                    n += 1.0;
                }
            }
        }
    }
    d / n
}

/// Both paste modes through the tuned model: unedited, and the edit.
fn paste_modes(tuned: &Model, photos: &[Photo], edit: &Edit) {
    let photo = photos[0].image.as_ref();
    let boxes = boxes(photos);
    let render = |latents: &[Vec<f32>], mode| {
        let pairs: Vec<(&Photo, &[f32])> = photos.iter().zip(latents).map(|(p, w)| (p, w.as_slice())).collect();
        faces::render_photo(tuned, &pairs, mode).unwrap()
    };
    let own: Vec<Vec<f32>> = photos.iter().map(|p| p.base().to_vec()).collect();
    let moved: Vec<Vec<f32>> = photos.iter().map(|p| edit.apply(p.base()).unwrap().0).collect();
    let (_, sharp_photo) = in_boxes(photo, photo, &boxes);
    let sides: Vec<u32> = boxes.iter().map(|b| b[2]).collect();
    println!("paste modes (tuned model, faces' crops {sides:?} px; the photo's sharpness {sharp_photo:.2}):");
    for (name, mode) in [("residual", PasteMode::Residual), ("plain", PasteMode::Plain)] {
        let (unedited, edited) = (render(&own, mode), render(&moved, mode));
        let (psnr0, sharp0) = in_boxes(&unedited, photo, &boxes);
        let (_, sharp3) = in_boxes(&edited, photo, &boxes);
        println!(
            "  {name}: unedited PSNR {psnr0:.1} dB, sharpness {sharp0:.2}; edited at strength 3: mean change {:.2} grey levels from the unedited, sharpness {sharp3:.2}",
            change(&edited, &unedited, &boxes)
        );
    }
}

/// d* transfer to 12 generated faces (seeds 2-13), rendered through the
/// base and through a generator tuned on other faces: the same latents
/// and alphas, so only the pixels can differ.
fn transfer(base: &Model, tuned: &Model, edit: &Edit) {
    let (mut psnr_edit, mut cosine) = (Vec::new(), Vec::new());
    let mut worst_plane = 0f64;
    for seed in 2..=13 {
        let w = base.latent_from_seed(seed, None, 1.0).unwrap();
        let (moved, _alpha) = edit.apply(&w).unwrap();
        let plane = edit.apply(&moved).unwrap().1.abs();
        worst_plane = worst_plane.max(plane);
        let (b0, b1) = (base.render(&[&w]).unwrap(), base.render(&[&moved]).unwrap());
        let (t0, t1) = (tuned.render(&[&w]).unwrap(), tuned.render(&[&moved]).unwrap());
        psnr_edit.push(psnr(&t1, &b1));
        let (db, dt) = ((&b1 - &b0).flatten(0, -1), (&t1 - &t0).flatten(0, -1));
        cosine.push(db.dot(&dt).double_value(&[]) / (db.norm().double_value(&[]) * dt.norm().double_value(&[])));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "d* transfer to seeds 2-13 (strength 3): alphas identical by construction (same latents), largest residual alpha after transfer {worst_plane:.2e}; edited faces tuned vs base PSNR mean {:.1} dB (min {:.1}); cosine of the edit's change tuned vs base mean {:.3} (min {:.3})",
        mean(&psnr_edit),
        psnr_edit.iter().cloned().fold(f64::INFINITY, f64::min),
        mean(&cosine),
        cosine.iter().cloned().fold(f64::INFINITY, f64::min)
    );
}

fn summary(what: &str, values: &[f64]) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    println!("{what}: n {}, min {:.1}, median {:.1}, mean {:.1}, max {:.1}", v.len(), v[0], v[v.len() / 2], mean, v[v.len() - 1]);
}
