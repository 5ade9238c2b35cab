//! Benchmark (never asserted): MTCNN face detection on a 1280x886 photo,
//! native against facenet-pytorch 2.6.0's MTCNN in the project's venv, both
//! on 2 CPU threads, on the same picture. Run by `make bench`.
//!
//! The picture: scikit-image's coffee photo stretched to 1280x886 as the
//! background, the astronaut at 400 px and five of the default model's
//! faces at 90-200 px (all from `make setup`).

use editone::faces::mtcnn::{DetectOptions, Detector};
use editone::model::Placement;
use editone::{Engine, EngineOptions, Model};
use image::{imageops, RgbImage};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const THREADS: u32 = 2;
const RUNS: usize = 7;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn test_data(name: &str) -> RgbImage {
    let path = root().join(".cache/test-data").join(name);
    image::open(&path).unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", path.display())).to_rgb8()
}

fn photo() -> RgbImage {
    let mut photo = imageops::resize(&test_data("coffee.png"), 1280, 886, imageops::FilterType::Triangle);
    let astronaut = imageops::resize(&test_data("astronaut.png"), 400, 400, imageops::FilterType::Triangle);
    imageops::overlay(&mut photo, &astronaut, 60, 240);
    let model = Model::load_default(Placement::default()).expect("the default model is installed (make setup)");
    for (k, (side, x, y)) in [(200u32, 560i64, 80i64), (160, 900, 120), (120, 620, 520), (100, 880, 560), (90, 1120, 380)].into_iter().enumerate() {
        let w = model.latent_from_seed(10 + k as u64, None, 1.0).expect("a latent");
        let face = editone::render::to_image(&model.render(&[&w]).expect("a render").get(0)).expect("pixels").to_rgb8();
        imageops::overlay(&mut photo, &imageops::resize(&face, side, side, imageops::FilterType::CatmullRom), x, y);
    }
    photo
}

/// Milliseconds of the first call and the median of RUNS calls after it.
fn first_and_median_ms(mut f: impl FnMut()) -> (f64, f64) {
    let t = Instant::now();
    f();
    let first = t.elapsed().as_secs_f64() * 1e3;
    let mut ms: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (first, ms[RUNS / 2])
}

/// facenet-pytorch's first call, median of RUNS runs after it, and faces
/// found, its torch on THREADS threads.
fn reference_ms(image: &Path, out: &Path) -> (f64, f64, usize) {
    let run = Command::new(root().join(".venv/bin/python"))
        .arg(root().join("tests/python/mtcnn_reference.py"))
        .args(["--threads", &THREADS.to_string(), "--repeat", &RUNS.to_string()])
        .arg(out)
        .arg(image)
        .output()
        .expect("the venv's python runs (make setup)");
    assert!(run.status.success(), "facenet-pytorch failed: {}", String::from_utf8_lossy(&run.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out).expect("reference output")).expect("JSON");
    let result = &json["results"][0];
    let ms = |key: &str| result[key].as_f64().expect("times");
    (ms("first_ms"), ms("ms"), result["faces"].as_array().map_or(0, Vec::len))
}

fn main() {
    let engine = Engine::init(&EngineOptions { cpu_threads: THREADS, ..Default::default() }).expect("engine starts");
    assert_eq!(engine.device(), tch::Device::Cpu, "this benchmark compares CPU times");
    let detector = Detector::load_default(tch::Device::Cpu).expect("the face detector is installed (make setup)");
    let image = photo();
    let dir = std::env::temp_dir().join(format!("editone-bench-detect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("group-1280x886.png");
    image.save(&path).expect("the picture is written");

    let options = DetectOptions { score_threshold: 0.0, ..Default::default() };
    let mut faces = 0;
    let (native_first, native) = first_and_median_ms(|| {
        faces = detector.detect(&image, &options).expect("detection runs").len();
    });
    let (reference_first, reference, reference_faces) = reference_ms(&path, &dir.join("reference.json"));
    let _ = std::fs::remove_dir_all(&dir);
    println!("MTCNN face detection, 1280x886 photo, {THREADS} CPU threads:");
    println!("                          median of {RUNS}   first call in the process");
    println!("  editone (native, tch)   {native:>7.1} ms   {native_first:>7.1} ms   ({faces} faces)");
    println!("  facenet-pytorch 2.6.0   {reference:>7.1} ms   {reference_first:>7.1} ms   ({reference_faces} faces)");
}
