//! Measures pivotal tuning (src/tune.rs) on the default model: face PSNR
//! before and after on synthetic group photos and the astronaut, the time
//! to tune 6 faces, and the locality (base against tuned output on 64
//! random seeds). The README's defaults were chosen with it.
//!
//! cargo run --release --example tune_measure -- [STEPS [LR [LOCALITY_WEIGHT [REACH [GROUPS]]]]]

#[allow(dead_code)]
#[path = "../tests/common/groups.rs"]
mod groups;

use editone::faces::{self, mtcnn::{DetectOptions, Detector}};
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
    println!("options: {options:?}");
    let model = Model::load_default(Placement::default()).expect("default model");
    let detector = Detector::load_default(tch::Device::Cpu).expect("face detector");
    let (mut before, mut after, mut locality) = (Vec::new(), Vec::new(), Vec::new());
    for seed in 1..=groups {
        let group = groups::synthetic_group(&model, seed, 6, (1280, 886));
        let photos = invert_photo(&model, &detector, group.image);
        let (b, a, l) = measure(&model, &photos, &options, &format!("group {seed}"));
        before.extend(b);
        after.extend(a);
        locality.extend(l);
    }
    let astronaut = image::open(concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/test-data/astronaut.png")).expect("astronaut").to_rgb8();
    let photos = invert_photo(&model, &detector, astronaut);
    let (b, a, _) = measure(&model, &photos, &options, "astronaut");
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
fn measure(model: &Model, photos: &[Photo], options: &TuneOptions, what: &str) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
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
    (b, a, l)
}

fn summary(what: &str, values: &[f64]) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    println!("{what}: n {}, min {:.1}, median {:.1}, mean {:.1}, max {:.1}", v.len(), v[0], v[v.len() / 2], mean, v[v.len() - 1]);
}
