//! The measurement behind `DetectOptions::score_threshold`'s default
//! (src/faces/mtcnn.rs): every face MTCNN finds (score threshold 0) in
//! pictures with faces and in pictures without, with its probability.
//!
//!     cargo run --release --example face_scores [IMAGE...]
//!
//! Without arguments it measures the default set: the default model's
//! faces at 64, 128 and 256 px (seeds 0..24), the astronaut and the
//! cameraman (real faces), and scikit-image's sample photos without a
//! person, as they are and twice their size, plus noise, flat and
//! patterned images (no faces), from .cache/test-data (`make setup`).
//! tests/faces_detect.rs adds synthetic group photos, whose faces are
//! known, and checks the default against them. With arguments it prints
//! the faces in those images.

use editone::faces::mtcnn::{DetectOptions, Detector};
use editone::model::Placement;
use editone::{Engine, EngineOptions, Model};
use image::{imageops, RgbImage};
use std::path::PathBuf;

fn test_data(name: &str) -> RgbImage {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/test-data").join(name);
    image::open(&path).unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", path.display())).to_rgb8()
}

/// Scores of every face found, highest first.
fn scores(detector: &Detector, image: &RgbImage) -> Vec<f32> {
    let options = DetectOptions { score_threshold: 0.0, ..Default::default() };
    let mut s: Vec<f32> = detector.detect(image, &options).expect("detection runs").iter().map(|f| f.score).collect();
    s.sort_by(|a, b| b.total_cmp(a));
    s
}

fn line(name: &str, scores: &[f32]) {
    let list: Vec<String> = scores.iter().map(|s| format!("{s:.4}")).collect();
    println!("{name:<28} {:>2} face(s)  [{}]", scores.len(), list.join(", "));
}

fn main() {
    Engine::init(&EngineOptions::default()).expect("engine starts");
    let detector = Detector::load_default(tch::Device::Cpu).expect("the face detector is installed (make setup)");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        for path in &args {
            let image = image::open(path).unwrap_or_else(|e| panic!("{path}: {e}")).to_rgb8();
            let options = DetectOptions { score_threshold: 0.0, ..Default::default() };
            for f in detector.detect(&image, &options).expect("detection runs") {
                println!("{path}: {f:?}");
            }
        }
        return;
    }

    println!("Faces (every one should be kept; a second box in a one-face picture is false):");
    let model = Model::load_default(Placement::default()).expect("the default model is installed (make setup)");
    let mut lowest_real = f32::INFINITY;
    let mut highest_false = 0f32;
    for side in [64u32, 128, 256] {
        let mut best = Vec::new();
        let mut extra = Vec::new();
        for seed in 0..24u64 {
            let face = imageops::resize(&render(&model, seed), side, side, imageops::FilterType::CatmullRom);
            let s = scores(&detector, &face);
            best.extend(s.first().copied());
            extra.extend(s.iter().skip(1).copied());
        }
        best.sort_by(f32::total_cmp);
        lowest_real = lowest_real.min(best.first().copied().unwrap_or(f32::INFINITY));
        highest_false = extra.iter().copied().fold(highest_false, f32::max);
        println!(
            "default model at {side:>3} px: a face in {}/24 seeds, lowest score {:.4}, median {:.4}; {} second box(es) {extra:?}",
            best.len(),
            best.first().copied().unwrap_or(f32::NAN),
            best.get(best.len() / 2).copied().unwrap_or(f32::NAN),
            extra.len(),
        );
    }
    for name in ["astronaut.png", "camera.png"] {
        let s = scores(&detector, &test_data(name));
        lowest_real = lowest_real.min(s.first().copied().unwrap_or(f32::INFINITY));
        highest_false = s.iter().skip(1).copied().fold(highest_false, f32::max);
        line(name, &s);
    }
    println!("lowest score of a real face: {lowest_real:.4}");

    println!("\nNo faces (every one found is false), as they are and upscaled 2x:");
    let photos = [
        "brick.png", "chelsea.png", "coffee.png", "coins.png", "color.png", "grass.png", "gravel.png",
        "hubble_deep_field.jpg", "ihc.png", "logo.png", "moon.png", "motorcycle_left.png", "page.png",
        "retina.jpg", "rocket.jpg", "text.png",
    ];
    for name in photos {
        let photo = test_data(name);
        let s = scores(&detector, &photo);
        highest_false = highest_false.max(s.first().copied().unwrap_or(0.0));
        line(name, &s);
        // Twice the size shows the detector more windows at each scale;
        // photos whose double would exceed max_side (2048) are detected on
        // a copy of that size anyway, so they are left out.
        let (w, h) = photo.dimensions();
        if w.max(h) <= 1024 {
            let s = scores(&detector, &imageops::resize(&photo, 2 * w, 2 * h, imageops::FilterType::CatmullRom));
            highest_false = highest_false.max(s.first().copied().unwrap_or(0.0));
            line(&format!("{name} x2"), &s);
        }
    }
    for (name, image) in textures() {
        let s = scores(&detector, &image);
        highest_false = highest_false.max(s.first().copied().unwrap_or(0.0));
        line(&name, &s);
    }
    println!("highest score of a false face: {highest_false:.4}");
}

/// The default model's face for `seed`, 64x64.
fn render(model: &Model, seed: u64) -> RgbImage {
    let w = model.latent_from_seed(seed, None, 1.0).expect("latent");
    let img = model.render(&[&w]).expect("renders");
    editone::render::to_image(&img.get(0)).expect("pixels").to_rgb8()
}

/// Pictures without faces made here: flat, noise at two grain sizes,
/// stripes and a checkerboard.
fn textures() -> Vec<(String, RgbImage)> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 56) as u8
    };
    let noise = RgbImage::from_fn(640, 480, |_, _| image::Rgb([next(), next(), next()]));
    let coarse = imageops::resize(&imageops::resize(&noise, 80, 60, imageops::FilterType::Triangle), 640, 480, imageops::FilterType::CatmullRom);
    vec![
        ("flat grey 640x480".into(), RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128]))),
        ("noise 640x480".into(), noise),
        ("coarse noise 640x480".into(), coarse),
        ("stripes 640x480".into(), RgbImage::from_fn(640, 480, |x, _| image::Rgb(if (x / 16) % 2 == 0 { [230; 3] } else { [20; 3] }))),
        (
            "checkerboard 640x480".into(),
            RgbImage::from_fn(640, 480, |x, y| image::Rgb(if ((x / 24) + (y / 24)) % 2 == 0 { [230; 3] } else { [20; 3] })),
        ),
    ]
}
