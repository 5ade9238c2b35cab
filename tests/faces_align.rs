//! Faces in photos (issue 21): the default model's template re-measured,
//! detection and alignment on synthetic group photos against their known
//! transforms, and paste-back that never touches a pixel outside the
//! faces' masks.

mod common;

use common::groups::{synthetic_group, Group};
use editone::faces::align::{template, Alignment, Similarity};
use editone::faces::mtcnn::{DetectOptions, Detector};
use editone::faces::{self, Face, PasteMode};
use editone::invert::{InvertOptions, Photo};
use editone::model::Model;
use std::sync::Arc;

fn default_model() -> Model {
    Model::load_default(common::placement()).expect("the default model (make setup)")
}

fn detector() -> Detector {
    Detector::load_default(tch::Device::Cpu).expect("the face detector (make setup)")
}

/// Renders seeds of `model` as 64 px pictures.
fn samples(model: &Model, seeds: std::ops::Range<u64>) -> Vec<image::RgbImage> {
    let latents: Vec<Vec<f32>> = seeds.map(|s| model.latent_from_seed(s, None, 1.0).unwrap()).collect();
    let refs: Vec<&[f32]> = latents.iter().map(|l| l.as_slice()).collect();
    let mut out = Vec::new();
    for chunk in refs.chunks(100) {
        let batch = model.render(chunk).unwrap();
        for i in 0..chunk.len() {
            out.push(editone::render::to_image(&batch.get(i as i64)).unwrap().to_rgb8());
        }
    }
    out
}

/// The detector's most confident face in a 64 px sample, if any.
fn sample_face(detector: &Detector, image: &image::RgbImage) -> Option<Face> {
    let options = DetectOptions { score_threshold: 0.0, ..DetectOptions::default() };
    let faces = detector.detect(image, &options).unwrap();
    faces.into_iter().max_by(|a, b| a.score.total_cmp(&b.score))
}

/// The sample's own landmarks, measured where the detector sees them
/// best: the sample drawn at 4x on a grey margin, results scaled back.
fn sample_truth(detector: &Detector, image: &image::RgbImage) -> Option<Face> {
    let (pad, k) = (32u32, 4u32);
    let big = image::imageops::resize(image, 64 * k, 64 * k, image::imageops::FilterType::Triangle);
    let mut canvas = image::RgbImage::from_pixel(64 * k + 2 * pad * k, 64 * k + 2 * pad * k, image::Rgb([128, 128, 128]));
    image::imageops::replace(&mut canvas, &big, (pad * k) as i64, (pad * k) as i64);
    let faces = detector.detect(&canvas, &DetectOptions { score_threshold: 0.0, ..DetectOptions::default() }).unwrap();
    let face = faces.into_iter().max_by(|a, b| a.score.total_cmp(&b.score))?;
    let back = |v: f32| (v + 0.5) / k as f32 - 0.5 - pad as f32;
    Some(Face { bbox: face.bbox.map(back), score: face.score, landmarks: face.landmarks.map(|[x, y]| [back(x), back(y)]) })
}

/// The recorded template is the mean of the detector's landmarks over 1000
/// of the model's own samples: re-measured, it agrees within 1 px.
#[test]
fn the_recorded_template_is_the_models_own() {
    let model = default_model();
    let detector = detector();
    let mut sum = [[0.0f64; 2]; 5];
    let mut found = 0usize;
    for image in samples(&model, 0..1000) {
        if let Some(face) = sample_face(&detector, &image) {
            for (s, p) in sum.iter_mut().zip(face.landmarks) {
                s[0] += p[0] as f64;
                s[1] += p[1] as f64;
            }
            found += 1;
        }
    }
    assert!(found >= 950, "the detector finds the face in {found} of 1000 samples");
    let measured = sum.map(|[x, y]| [x / found as f64, y / found as f64]);
    println!("template measured over {found} samples: {measured:?}");
    for (m, r) in measured.iter().zip(template(64)) {
        let d = (m[0] - r[0]).hypot(m[1] - r[1]);
        assert!(d < 1.0, "measured {m:?} vs recorded {r:?}: {d:.2} px");
    }
}

/// The detection in `faces` nearest to where `truth` put its face.
fn nearest<'a>(faces: &'a [Face], to_crop: &Similarity) -> &'a Face {
    let [cx, cy] = to_crop.inverse().apply([31.5, 31.5]);
    let dist = |f: &Face| (((f.bbox[0] + f.bbox[2]) / 2.0) as f64 - cx).hypot(((f.bbox[1] + f.bbox[3]) / 2.0) as f64 - cy);
    faces.iter().min_by(|a, b| dist(a).total_cmp(&dist(b))).expect("a face")
}

/// Where an alignment puts the template's landmarks in the photo.
fn template_in_photo(to_crop: &Similarity) -> Vec<[f64; 2]> {
    let back = to_crop.inverse();
    template(64).iter().map(|p| back.apply(*p)).collect()
}

/// The worst distance, in model pixels, between where two alignments of
/// a face of side `side` (photo pixels) put the template's landmarks.
fn alignment_error(estimate: &Similarity, truth: &Similarity, side: f64) -> f64 {
    let (e, t) = (template_in_photo(estimate), template_in_photo(truth));
    e.iter().zip(t).map(|(e, t)| (e[0] - t[0]).hypot(e[1] - t[1])).fold(0.0, f64::max) * 64.0 / side
}

/// Five faces per photo, 60-250 px, turned up to 20 degrees: every face
/// is found, none twice and nothing else. The truth of a face's alignment
/// is its sample's own alignment (landmarks found in the sample drawn at
/// 4x) carried through the known transform; the pipeline's must agree to
/// within 2 model pixels at the template's landmarks for the median face.
/// Each face on its own is held to 6: MTCNN's landmarks themselves are
/// about that precise (7% of the eye distance on AFLW in its paper, 1.4 px
/// at 64 px), and facenet-pytorch's are the same (tests/faces_detect.rs).
/// Measured over 100 faces (sweep_groups): median 1.1, 90% 2.1, max 3.9.
/// The bound of 6 (a tenth of the crop) catches a misplaced crop while
/// allowing the detector's spread.
#[test]
fn every_face_of_a_group_is_found_and_aligned() {
    let model = default_model();
    let detector = detector();
    let mut errors = Vec::new();
    for seed in 1..=3 {
        let group = synthetic_group(&model, seed, 5, (1280, 886));
        let found = detector.detect(&group.image, &DetectOptions::default()).unwrap();
        assert_eq!(found.len(), 5, "group {seed}: {} faces found: {found:?}", found.len());
        for (placed, original) in group.faces.iter().zip(samples_of(&model, &group)) {
            let own = sample_truth(&detector, &original).expect("the sample's own face");
            let truth = placed.to_crop.then(&Alignment::Template.transform(&own, 64).unwrap());
            let face = nearest(&found, &placed.to_crop);
            let [cx, cy] = placed.to_crop.inverse().apply([31.5, 31.5]);
            let centre = [((face.bbox[0] + face.bbox[2]) / 2.0) as f64, ((face.bbox[1] + face.bbox[3]) / 2.0) as f64];
            assert!((centre[0] - cx).hypot(centre[1] - cy) < placed.side / 3.0, "group {seed}: face seed {} not found", placed.seed);
            let error = alignment_error(&Alignment::Template.transform(face, 64).unwrap(), &truth, placed.side);
            println!("group {seed}, face seed {} ({:.0} px, {:.1} deg): {error:.2} model px", placed.seed, placed.side, placed.angle);
            assert!(error < 6.0, "group {seed}, face seed {}: {error:.2} model px off", placed.seed);
            errors.push(error);
        }
    }
    errors.sort_by(f64::total_cmp);
    let median = errors[errors.len() / 2];
    assert!(median < 2.0, "median alignment error {median:.2} model px");
}

fn samples_of(model: &Model, group: &Group) -> Vec<image::RgbImage> {
    group
        .faces
        .iter()
        .map(|f| editone::render::to_image(&model.render(&[&f.latent]).unwrap().get(0)).unwrap().to_rgb8())
        .collect()
}

/// Photos of every face of a group, with their true latents as the
/// inversion (no optimisation needed to test the compositing).
fn true_photos(model: &Model, group: &Group) -> Vec<Photo> {
    let image = Arc::new(group.image.clone());
    let detector = detector();
    let found = detector.detect(&group.image, &DetectOptions::default()).unwrap();
    let placed = faces::place(model, &found, Alignment::Template).unwrap();
    placed.into_iter().map(|p| Photo::of_face(image.clone(), p, 64, model.latent_from_seed(0, None, 1.0).unwrap())).collect()
}

/// An identity edit gives the photo back exactly in residual mode; in
/// both modes any edit leaves every pixel outside the faces' masks as it
/// was.
#[test]
fn paste_back_changes_nothing_outside_the_faces() {
    let model = default_model();
    let group = synthetic_group(&model, 7, 5, (900, 700));
    let photos = true_photos(&model, &group);
    let identity: Vec<(&Photo, &[f32])> = photos.iter().map(|p| (p, p.base())).collect();
    let same = faces::render_photo(&model, &identity, PasteMode::Residual).unwrap();
    assert!(same == group.image, "an identity edit changed the photo");

    let other = model.latent_from_seed(99, None, 1.0).unwrap();
    let edited: Vec<(&Photo, &[f32])> = photos.iter().map(|p| (p, other.as_slice())).collect();
    for mode in [PasteMode::Residual, PasteMode::Plain] {
        let out = faces::render_photo(&model, &edited, mode).unwrap();
        let mut inside_changed = 0;
        for (x, y, px) in out.enumerate_pixels() {
            let inside = photos.iter().any(|p| {
                let [cx, cy] = p.face.unwrap().to_crop.apply([x as f64, y as f64]);
                (-0.5..63.5).contains(&cx) && (-0.5..63.5).contains(&cy)
            });
            if !inside {
                assert_eq!(px, group.image.get_pixel(x, y), "{mode:?}: pixel ({x}, {y}) outside every face changed");
            } else if px != group.image.get_pixel(x, y) {
                inside_changed += 1;
            }
        }
        assert!(inside_changed > 1000, "{mode:?}: the edit shows ({inside_changed} pixels changed)");
    }
}

/// Faces partly outside the photo are aligned with reflection and pasted
/// back clipped, without error.
#[test]
fn a_face_cut_by_the_photo_edge_still_aligns_and_pastes() {
    let model = default_model();
    let group = synthetic_group(&model, 2, 1, (300, 300));
    // Cut the photo through the face's middle.
    let [cx, _] = group.faces[0].to_crop.inverse().apply([31.5, 31.5]);
    let cut = image::imageops::crop_imm(&group.image, cx as u32, 0, 300 - cx as u32, 300).to_image();
    let face = Face { bbox: [-40.0, 100.0, 40.0, 180.0], score: 1.0, landmarks: [[-15.0, 130.0], [15.0, 130.0], [0.0, 145.0], [-12.0, 160.0], [12.0, 160.0]] };
    let placed = faces::place(&model, &[face], Alignment::Ffhq).unwrap();
    let targets = faces::targets(&cut, &placed, 64);
    assert_eq!(targets.size(), [1, 3, 64, 64]);
    assert!(targets.isfinite().all().int64_value(&[]) == 1);
    let photo = Photo::of_face(Arc::new(cut.clone()), placed[0], 64, model.latent_from_seed(0, None, 1.0).unwrap());
    let other = model.latent_from_seed(5, None, 1.0).unwrap();
    let out = faces::render_photo(&model, &[(&photo, &other)], PasteMode::Plain).unwrap();
    assert_eq!(out.dimensions(), cut.dimensions());
}

/// Inversion of aligned faces: the per-face PSNR on a synthetic group
/// (reported), and each latent remembering its face and photo.
#[test]
fn faces_of_a_group_invert_and_remember_their_photo() {
    let model = default_model();
    let group = synthetic_group(&model, 3, 3, (700, 500));
    let found = detector().detect(&group.image, &DetectOptions::default()).unwrap();
    let placed = faces::place(&model, &found, model.face_alignment()).unwrap();
    let options = InvertOptions { steps: Some(150), ..InvertOptions::default() };
    let mut steps_seen = 0;
    let mut progress = |_: &str, done: u64, total: u64| {
        steps_seen = done;
        assert_eq!(total, 150);
        true
    };
    let photos = faces::invert_faces(&model, Arc::new(group.image.clone()), &placed, &options, Some(&mut progress)).unwrap();
    assert_eq!(steps_seen, 150);
    let targets = faces::targets(&group.image, &placed, 64);
    for (k, photo) in photos.iter().enumerate() {
        assert_eq!(photo.face.unwrap().face, found[k]);
        let psnr = editone::invert::psnr(&model.render(&[photo.base()]).unwrap(), &targets.get(k as i64).unsqueeze(0));
        println!("face {k}: {psnr:.1} dB after 150 steps");
        assert!(psnr > 18.0, "face {k} reconstructs at {psnr:.1} dB");
    }
    let cancelled = faces::invert_faces(&model, Arc::new(group.image.clone()), &placed, &options, Some(&mut |_: &str, _, _| false));
    assert_eq!(cancelled.unwrap_err().kind, editone::error::ErrorKind::Cancelled);
}

/// Recall and alignment error over many synthetic groups (run by hand:
/// cargo test --release --test faces_align sweep -- --ignored --nocapture).
#[test]
#[ignore]
fn sweep_groups() {
    let model = default_model();
    let detector = detector();
    let (mut faces_total, mut missed, mut errors) = (0, 0, Vec::new());
    for seed in 1..=20 {
        let group = synthetic_group(&model, seed, 5, (1280, 886));
        let found = detector.detect(&group.image, &DetectOptions::default()).unwrap();
        for (placed, original) in group.faces.iter().zip(samples_of(&model, &group)) {
            faces_total += 1;
            let [cx, cy] = placed.to_crop.inverse().apply([31.5, 31.5]);
            let near = |f: &Face| (((f.bbox[0] + f.bbox[2]) / 2.0) as f64 - cx).hypot(((f.bbox[1] + f.bbox[3]) / 2.0) as f64 - cy) < placed.side / 3.0;
            let hit = found.iter().any(near);
            if !hit {
                missed += 1;
                println!("missed: group {seed} seed {} side {:.0} angle {:.1}", placed.seed, placed.side, placed.angle);
                continue;
            }
            let own = sample_truth(&detector, &original).unwrap();
            let truth = placed.to_crop.then(&Alignment::Template.transform(&own, 64).unwrap());
            let estimate = Alignment::Template.transform(nearest(&found, &placed.to_crop), 64).unwrap();
            errors.push(alignment_error(&estimate, &truth, placed.side));
        }
        println!("group {seed}: {} found", found.len());
    }
    errors.sort_by(f64::total_cmp);
    let n = errors.len();
    println!("faces {faces_total}, missed {missed}; alignment error (model px): median {:.2}, 90% {:.2}, max {:.2}", errors[n / 2], errors[n * 9 / 10], errors[n - 1]);
}

/// The astronaut (scikit-image's sample photo, extracted by make setup):
/// her face found, aligned to the model's template and inverted with the
/// default settings reconstructs at 20 dB or better (16.6 dB for a crop
/// by hand, 13.4 for the whole photo squeezed). The default seed gives
/// 20.3 dB; seeds 1 to 11 gave 20.0 to 21.2.
#[test]
fn the_astronaut_aligned_inverts_at_20_db() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/test-data/astronaut.png");
    let photo = image::open(&path).unwrap_or_else(|e| panic!("{} (make setup extracts it): {e}", path.display())).to_rgb8();
    let model = default_model();
    let found = detector().detect(&photo, &DetectOptions::default()).unwrap();
    assert_eq!(found.len(), 1, "one face in the astronaut photo: {found:?}");
    let placed = faces::place(&model, &found, model.face_alignment()).unwrap();
    let photos = faces::invert_faces(&model, Arc::new(photo.clone()), &placed, &InvertOptions::default(), None).unwrap();
    let target = faces::targets(&photo, &placed, 64);
    let psnr = editone::invert::psnr(&model.render(&[photos[0].base()]).unwrap(), &target);
    println!("astronaut, aligned face: {psnr:.1} dB");
    assert!(psnr >= 20.0, "the astronaut's aligned face reconstructs at {psnr:.1} dB");
}

/// Per-face PSNR of the aligned inversion (default settings) on synthetic
/// groups (run by hand: cargo test --release --test faces_align
/// group_psnr -- --ignored --nocapture).
#[test]
#[ignore]
fn group_psnr() {
    let model = default_model();
    let detector = detector();
    let mut all = Vec::new();
    for seed in 1..=4 {
        let group = synthetic_group(&model, seed, 5, (1280, 886));
        let found = detector.detect(&group.image, &DetectOptions::default()).unwrap();
        let placed = faces::place(&model, &found, model.face_alignment()).unwrap();
        let photos = faces::invert_faces(&model, Arc::new(group.image.clone()), &placed, &InvertOptions::default(), None).unwrap();
        let targets = faces::targets(&group.image, &placed, 64);
        for (k, photo) in photos.iter().enumerate() {
            let psnr = editone::invert::psnr(&model.render(&[photo.base()]).unwrap(), &targets.get(k as i64).unsqueeze(0));
            let side = (found[k].bbox[2] - found[k].bbox[0]) as u32;
            println!("group {seed}, face {k} (box {side} px): {psnr:.1} dB");
            all.push(psnr);
        }
    }
    all.sort_by(f64::total_cmp);
    println!("{} faces: min {:.1}, median {:.1}, mean {:.1}, max {:.1} dB", all.len(), all[0], all[all.len() / 2], all.iter().sum::<f64>() / all.len() as f64, all[all.len() - 1]);
}
