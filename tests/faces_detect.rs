//! The native MTCNN face detector against facenet-pytorch 2.6.0's own
//! MTCNN (tests/python/mtcnn_reference.py in the project's venv), and its
//! answers to bad input. Everything these tests need comes from `make
//! setup` (the converted detector, the reference packages, the scikit-image
//! photos); anything missing fails them, nothing is skipped.

mod common;

use editone::faces::mtcnn::{detection_copy, DetectOptions, Detector, DETECTOR_FINGERPRINT};
use editone::faces::Face;
use editone::{ErrorKind, Model};
use image::{imageops, Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(py.exists(), "{} is missing: run `make setup` (make test does)", py.display());
    py
}

fn detector() -> Detector {
    Detector::load_default(tch::Device::Cpu).unwrap_or_else(|e| panic!("{} (make setup installs it)", e.message))
}

fn default_model() -> Model {
    Model::load_default(common::placement()).expect("make setup installs the default model")
}

fn test_photo(name: &str) -> RgbImage {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/test-data").join(name);
    image::open(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make setup`", path.display())).to_rgb8()
}

/// Every face the reference returns, as the native detector returns them.
fn everything() -> DetectOptions {
    DetectOptions { score_threshold: 0.0, ..Default::default() }
}

/// The default model's 64x64 face for `seed`.
fn sample(model: &Model, seed: u64) -> RgbImage {
    let w = model.latent_from_seed(seed, None, 1.0).unwrap();
    let img = model.render(&[&w]).unwrap().get(0);
    editone::render::to_image(&img).unwrap().to_rgb8()
}

/// facenet-pytorch's faces for each of `images`, written as PNG files into
/// `dir`, in its own order (largest box first).
fn reference(dir: &Path, images: &[(String, RgbImage)]) -> Vec<Vec<Face>> {
    let mut paths = Vec::new();
    for (i, (_, image)) in images.iter().enumerate() {
        let path = dir.join(format!("{i:02}.png"));
        image.save(&path).unwrap();
        paths.push(path);
    }
    let out = dir.join("reference.json");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/mtcnn_reference.py");
    let run = Command::new(python()).arg(script).arg(&out).args(&paths).output().unwrap();
    assert!(
        run.status.success(),
        "facenet-pytorch's MTCNN did not run (make setup installs it):\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect() };
    json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["faces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let b = floats(&f["bbox"]);
                    let l: Vec<Vec<f32>> = f["landmarks"].as_array().unwrap().iter().map(floats).collect();
                    Face {
                        bbox: [b[0], b[1], b[2], b[3]],
                        score: f["score"].as_f64().unwrap() as f32,
                        landmarks: std::array::from_fn(|k| [l[k][0], l[k][1]]),
                    }
                })
                .collect()
        })
        .collect()
}

/// Largest differences between two lists of faces in the same order:
/// (box corner, landmark coordinate, score).
fn differences(ours: &[Face], theirs: &[Face]) -> (f32, f32, f32) {
    let mut worst = (0f32, 0f32, 0f32);
    for (a, b) in ours.iter().zip(theirs) {
        for k in 0..4 {
            worst.0 = worst.0.max((a.bbox[k] - b.bbox[k]).abs());
        }
        for k in 0..5 {
            for c in 0..2 {
                worst.1 = worst.1.max((a.landmarks[k][c] - b.landmarks[k][c]).abs());
            }
        }
        worst.2 = worst.2.max((a.score - b.score).abs());
    }
    worst
}

/// Asserts the same number of faces, boxes and landmarks within 1 px and
/// scores within 1e-3, image by image, and prints the table.
fn assert_parity(names: &[String], ours: &[Vec<Face>], theirs: &[Vec<Face>]) {
    let mut failures = Vec::new();
    let mut overall = (0f32, 0f32, 0f32);
    for ((name, a), b) in names.iter().zip(ours).zip(theirs) {
        let d = differences(a, b);
        eprintln!(
            "{name:<38} faces {} (reference {})  box {:.2e} px  landmarks {:.2e} px  score {:.2e}",
            a.len(),
            b.len(),
            d.0,
            d.1,
            d.2
        );
        overall = (overall.0.max(d.0), overall.1.max(d.1), overall.2.max(d.2));
        if a.len() != b.len() || d.0 > 1.0 || d.1 > 1.0 || d.2 > 1e-3 {
            failures.push(format!("{name}: ours {a:?}\nreference {b:?}"));
        }
    }
    eprintln!("largest differences: box {:.2e} px, landmarks {:.2e} px, score {:.2e}", overall.0, overall.1, overall.2);
    assert!(failures.is_empty(), "differs from facenet-pytorch:\n{}", failures.join("\n"));
}

/// A 6000x300 strip with eight of the default model's faces, 240 px high,
/// at x = 250 + 720 k: detection runs on a 2048x102 copy of it.
fn strip(model: &Model) -> RgbImage {
    let mut strip = RgbImage::from_pixel(6000, 300, Rgb([90, 110, 100]));
    for k in 0..8u32 {
        let face = imageops::resize(&sample(model, 3 + k as u64), 240, 240, imageops::FilterType::CatmullRom);
        imageops::overlay(&mut strip, &face, 250 + 720 * k as i64, 30);
    }
    strip
}

#[test]
fn detections_match_facenet_pytorch() {
    let model = default_model();
    let detector = detector();
    let mut images: Vec<(String, RgbImage)> = Vec::new();
    for seed in [0u64, 1, 2] {
        images.push((format!("default model seed {seed}, 64 px"), sample(&model, seed)));
    }
    for seed in [3u64, 4] {
        let face = imageops::resize(&sample(&model, seed), 256, 256, imageops::FilterType::CatmullRom);
        images.push((format!("default model seed {seed}, 256 px"), face));
    }
    for name in ["astronaut.png", "camera.png", "motorcycle_left.png"] {
        images.push((name.to_string(), test_photo(name)));
    }
    images.push(("flat grey 200x150".into(), RgbImage::from_pixel(200, 150, Rgb([128, 128, 128]))));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise = RgbImage::from_fn(320, 240, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Rgb([(state >> 56) as u8, (state >> 48) as u8, (state >> 40) as u8])
    });
    images.push(("noise 320x240".into(), noise));
    for (seed, faces, size) in [(1u64, 6usize, (1280u32, 886u32)), (2, 3, (480, 360))] {
        let group = common::groups::synthetic_group(&model, seed, faces, size);
        images.push((format!("group {seed}: {faces} faces, {}x{}", size.0, size.1), group.image));
    }

    let mut ours: Vec<Vec<Face>> = images.iter().map(|(_, image)| detector.detect(image, &everything()).unwrap()).collect();
    // A strip longer than max_side: the native faces, found on its
    // downscaled copy and scaled back, against the reference's on that copy
    // (compared in the copy's pixels).
    let strip = strip(&model);
    let copy = detection_copy(&strip, DetectOptions::default().max_side).unwrap().expect("a copy");
    assert_eq!(copy.dimensions(), (2048, 102));
    let (sx, sy) = (6000.0 / 2048.0, 300.0 / 102.0);
    let on_copy = |f: Face| Face {
        bbox: [f.bbox[0] / sx, f.bbox[1] / sy, f.bbox[2] / sx, f.bbox[3] / sy],
        score: f.score,
        landmarks: f.landmarks.map(|[x, y]| [x / sx, y / sy]),
    };
    ours.push(detector.detect(&strip, &everything()).unwrap().into_iter().map(on_copy).collect());
    images.push(("6000x300 strip, on its 2048x102 copy".into(), copy));

    let dir = tempfile::tempdir().unwrap();
    let theirs = reference(dir.path(), &images);
    let names: Vec<String> = images.iter().map(|(n, _)| n.clone()).collect();
    assert_parity(&names, &ours, &theirs);

    // The comparison covers faces and their absence: the samples, the
    // astronaut and group faces are found, the flat and noise images give
    // none.
    let count = |name: &str| ours[names.iter().position(|n| n.starts_with(name)).unwrap()].len();
    for name in ["default model seed", "astronaut", "camera", "group 1", "group 2", "6000x300"] {
        assert!(count(name) >= 1, "no face found in {name}");
    }
    assert_eq!((count("flat grey"), count("noise")), (0, 0));
}

#[test]
fn the_default_threshold_keeps_real_faces_and_drops_false_ones() {
    let detector = detector();
    let options = DetectOptions::default();
    let astronaut = detector.detect(&test_photo("astronaut.png"), &options).unwrap();
    assert_eq!(astronaut.len(), 1);
    // Eileen Collins' face: the box holds her landmarks, eyes above the mouth.
    let f = astronaut[0];
    assert!(f.landmarks.iter().all(|&[x, y]| x > f.bbox[0] && x < f.bbox[2] && y > f.bbox[1] && y < f.bbox[3]));
    assert!(f.landmarks[0][1] < f.landmarks[3][1] && f.landmarks[0][0] < f.landmarks[1][0]);
    // The motorcycle photo has no person; MTCNN scores two boxes in it
    // (0.929 and 0.716), both under the default threshold.
    let motorcycle = test_photo("motorcycle_left.png");
    assert_eq!(detector.detect(&motorcycle, &everything()).unwrap().len(), 2);
    assert!(detector.detect(&motorcycle, &options).unwrap().is_empty());

    // Synthetic group photos, whose faces are known: every face found
    // where one was placed scores at least the default threshold, every
    // other box scores under it.
    let model = default_model();
    let c = (model.info().resolution as f64 - 1.0) / 2.0;
    let (mut real, mut false_ones) = (Vec::new(), Vec::new());
    for (seed, faces, size) in [(3u64, 5usize, (800u32, 600u32)), (4, 8, (1280, 886)), (5, 3, (640, 480))] {
        let group = common::groups::synthetic_group(&model, seed, faces, size);
        let centres: Vec<[f64; 2]> = group.faces.iter().map(|f| f.to_crop.inverse().apply([c, c])).collect();
        for f in detector.detect(&group.image, &everything()).unwrap() {
            let holds = |&[x, y]: &[f64; 2]| (x as f32) > f.bbox[0] && (x as f32) < f.bbox[2] && (y as f32) > f.bbox[1] && (y as f32) < f.bbox[3];
            if centres.iter().any(holds) {
                real.push(f.score);
            } else {
                false_ones.push(f.score);
            }
        }
    }
    eprintln!("group photos: real faces scored {real:?}, other boxes {false_ones:?}");
    assert!(real.len() >= 8, "only {} group faces found", real.len());
    assert!(real.iter().all(|&s| s >= options.score_threshold), "a real face under the default threshold: {real:?}");
    assert!(false_ones.iter().all(|&s| s < options.score_threshold), "a false face over the default threshold: {false_ones:?}");
}

#[test]
fn no_face_is_an_empty_list() {
    let detector = detector();
    for image in [RgbImage::from_pixel(12, 12, Rgb([0, 0, 0])), RgbImage::from_pixel(640, 480, Rgb([200, 180, 160])), test_photo("coffee.png")] {
        assert!(detector.detect(&image, &everything()).unwrap().is_empty());
    }
    // A face smaller than min_face_size is not searched for (and a side
    // under min_face_size leaves no pyramid level at all).
    let model = default_model();
    let small = imageops::resize(&sample(&model, 3), 19, 19, imageops::FilterType::Triangle);
    assert!(detector.detect(&small, &everything()).unwrap().is_empty());
}

#[test]
fn images_under_12_pixels_are_refused() {
    let detector = detector();
    for (w, h) in [(11, 400), (400, 11), (0, 0), (1, 1)] {
        let e = detector.detect(&RgbImage::new(w, h), &DetectOptions::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.message.contains("12 pixels"), "{}", e.message);
    }
    let e = detector.detect(&RgbImage::new(64, 64), &DetectOptions { factor: 1.5, ..Default::default() }).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
}

#[test]
fn huge_images_are_detected_on_a_downscaled_copy() {
    // The strip's faces come back in its own pixels, each on a placed
    // face; detections_match_facenet_pytorch compares them with the
    // reference on the copy.
    let model = default_model();
    let ours = detector().detect(&strip(&model), &everything()).unwrap();
    assert!(ours.len() >= 6, "{} faces in the strip", ours.len());
    for f in &ours {
        let cx = (f.bbox[0] + f.bbox[2]) / 2.0;
        let near = (0..8).any(|k| (cx - (250.0 + 720.0 * k as f32 + 120.0)).abs() < 60.0);
        assert!(near && f.bbox[1] > 0.0 && f.bbox[3] < 320.0, "{f:?}");
    }
    // The copy averages: a 2:1 checkerboard of black and white pixels
    // becomes mid-grey, not an aliased pattern.
    let fine = RgbImage::from_fn(4096, 64, |x, y| if (x + y) % 2 == 0 { Rgb([0; 3]) } else { Rgb([255; 3]) });
    let copy = detection_copy(&fine, 2048).unwrap().expect("a copy");
    assert_eq!(copy.dimensions(), (2048, 32));
    assert!(copy.pixels().all(|p| p.0.iter().all(|&v| (127..=128).contains(&v))));
}

#[test]
fn missing_or_damaged_detector_files_say_how_to_fix_them() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("none.safetensors");
    let e = Detector::load(&missing, tch::Device::Cpu).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Io);
    assert!(e.message.contains("make setup") && e.message.contains("none.safetensors"), "{}", e.message);

    let bytes = std::fs::read(editone::faces::mtcnn::default_detector_path()).expect("make setup installs the detector");
    let damaged = |name: &str, bytes: &[u8]| {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let e = Detector::load(&path, tch::Device::Cpu).err().unwrap_or_else(|| panic!("{name} loaded"));
        assert_eq!(e.kind, ErrorKind::Format, "{name}: {}", e.message);
        assert!(e.message.contains("make setup") && e.message.contains(DETECTOR_FINGERPRINT), "{name}: {}", e.message);
    };
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    damaged("flipped.safetensors", &flipped);
    damaged("truncated.safetensors", &bytes[..bytes.len() - 1000]);
    damaged("header-only.safetensors", &bytes[..64]);
    damaged("empty.safetensors", &[]);
    // A directory is not a detector file.
    let e = Detector::load(tmp.path(), tch::Device::Cpu).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Io);
}
