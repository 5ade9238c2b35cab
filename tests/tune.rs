//! Pivotal tuning (src/tune.rs): a tuned copy reproduces its photos
//! better and leaves the base alone; tuned files round-trip bit for bit
//! and load only over their base; cancel and bad options make nothing;
//! the latent space (presets, edits) is shared with the base.

mod common;

use common::groups::synthetic_group;
use editone::edit::{preset, Edit, LatentShape};
use editone::error::ErrorKind;
use editone::faces::mtcnn::{DetectOptions, Detector};
use editone::faces::{self, PasteMode};
use editone::files::Existing;
use editone::invert::{psnr, Photo};
use editone::model::{Model, Placement};
use editone::tune::{self, TuneOptions};
use std::sync::Arc;
use tch::Tensor;

fn default_model() -> Model {
    Model::load_default(common::placement()).expect("make setup installs the default model")
}

/// Two faces of a synthetic group photo whose pivots are latents of other
/// seeds: far from the faces, so there is much for tuning to correct.
fn group_photos(model: &Model) -> Vec<Photo> {
    let group = synthetic_group(model, 3, 2, (640, 400));
    let detector = Detector::load_default(model.device()).expect("make setup installs the face detector");
    let found = detector.detect(&group.image, &DetectOptions::default()).unwrap();
    assert_eq!(found.len(), 2, "both faces of the synthetic photo are found");
    let placed = faces::place(model, &found, model.face_alignment()).unwrap();
    let image = Arc::new(group.image);
    placed
        .into_iter()
        .enumerate()
        .map(|(k, face)| Photo::of_face(image.clone(), face, 64, model.latent_from_seed(900 + k as u64, None, 1.0).unwrap()))
        .collect()
}

fn options(steps: u32) -> TuneOptions {
    TuneOptions { steps, ..TuneOptions::default() }
}

fn face_psnrs(model: &Model, photos: &[Photo]) -> Vec<f64> {
    photos.iter().map(|p| psnr(&model.render(&[p.base()]).unwrap(), &p.target(64).unwrap())).collect()
}

fn renders_equal(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.equal(b)
}

#[test]
fn tuning_reproduces_the_photos_and_leaves_the_base_alone() {
    let model = default_model();
    let photos = group_photos(&model);
    let seed = model.latent_from_seed(5, None, 1.0).unwrap();
    let before = model.render(&[&seed]).unwrap();
    let refs: Vec<&Photo> = photos.iter().collect();
    let tuned = tune::tune(&model, &refs, &options(20), None).unwrap();

    let (base_psnr, tuned_psnr) = (face_psnrs(&model, &photos), face_psnrs(&tuned, &photos));
    for (b, t) in base_psnr.iter().zip(&tuned_psnr) {
        assert!(*t > b + 3.0, "tuning 20 steps raises a face from {b:.1} dB to {t:.1} dB only");
    }
    assert!(renders_equal(&model.render(&[&seed]).unwrap(), &before), "the base model changed");
    assert_eq!(tuned.tuned_from(), Some(model.fingerprint()));
    assert_eq!(tuned.latent_space(), model.latent_space());
    assert_ne!(tuned.fingerprint(), model.fingerprint());
    // The mapping is the base's: a seed's latent is the same on both.
    assert_eq!(tuned.latent_from_seed(5, None, 1.0).unwrap(), seed);
}

#[test]
fn a_saved_tuned_model_loads_bit_for_bit_and_only_over_its_base() {
    let model = default_model();
    let photos = group_photos(&model);
    let refs: Vec<&Photo> = photos.iter().collect();
    let tuned = tune::tune(&model, &refs, &options(3), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tuned.safetensors");
    tune::save(&tuned, &path, Existing::Refuse).unwrap();
    assert_eq!(tune::save(&tuned, &path, Existing::Refuse).unwrap_err().kind, ErrorKind::Exists);

    let loaded = tune::load(&model, &path).unwrap();
    assert_eq!(loaded.fingerprint(), tuned.fingerprint(), "the tuned model's fingerprint is its file's");
    let latents: Vec<&[f32]> = photos.iter().map(|p| p.base()).collect();
    let seed = model.latent_from_seed(11, None, 1.0).unwrap();
    for w in latents.iter().copied().chain([seed.as_slice()]) {
        assert!(renders_equal(&loaded.render(&[w]).unwrap(), &tuned.render(&[w]).unwrap()), "the reloaded model renders differently");
    }

    let other = Model::load(&common::fixture("tiny64"), Placement::default()).unwrap();
    assert_eq!(tune::load(&other, &path).unwrap_err().kind, ErrorKind::Incompatible);
    assert_eq!(tune::load(&tuned, &path).unwrap_err().kind, ErrorKind::InvalidArgument, "a tuned model is no base");
    let refused = Model::load(&path, Placement::default()).unwrap_err();
    assert!(refused.message.contains("tuned model"), "{}", refused.message);

    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let damaged = dir.path().join("damaged.safetensors");
    std::fs::write(&damaged, &bytes).unwrap();
    assert_eq!(tune::load(&model, &damaged).unwrap_err().kind, ErrorKind::Format);
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(tune::load(&model, &damaged).unwrap_err().kind, ErrorKind::Format);
    let base_file = dir.path().join("base.safetensors");
    std::fs::copy(editone::model::default_model_path(), &base_file).unwrap();
    assert_eq!(tune::load(&model, &base_file).unwrap_err().kind, ErrorKind::Format, "a plain model is no tuned model");
}

#[test]
fn cancel_and_bad_options_make_nothing() {
    let model = default_model();
    let photos = group_photos(&model);
    let refs: Vec<&Photo> = photos.iter().collect();
    let mut calls = 0;
    let mut stop_at_3 = |stage: &str, done: u64, total: u64| {
        assert_eq!((stage, total), ("tune", 10));
        calls += 1;
        done < 3
    };
    let err = tune::tune(&model, &refs, &options(10), Some(&mut stop_at_3)).unwrap_err();
    assert_eq!((err.kind, calls), (ErrorKind::Cancelled, 3));

    let d = TuneOptions::default();
    let bad = [
        ("steps", TuneOptions { steps: 0, ..d.clone() }),
        ("learning_rate", TuneOptions { learning_rate: 0.0, ..d.clone() }),
        ("learning_rate", TuneOptions { learning_rate: f64::NAN, ..d.clone() }),
        ("locality_weight", TuneOptions { locality_weight: -1.0, ..d.clone() }),
        ("locality_reach", TuneOptions { locality_reach: 0.0, ..d.clone() }),
        ("locality_reach", TuneOptions { locality_reach: 1.5, ..d.clone() }),
    ];
    for (field, options) in bad {
        let err = tune::tune(&model, &refs, &options, None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument);
        assert!(err.message.contains(field), "'{}' does not name {field}", err.message);
    }
    assert_eq!(tune::tune(&model, &[], &d, None).unwrap_err().kind, ErrorKind::InvalidArgument);
    let missing = TuneOptions { vgg16: Some("/nonexistent/vgg16.pt".into()), ..d.clone() };
    assert_eq!(tune::tune(&model, &refs, &missing, None).unwrap_err().kind, ErrorKind::Io);
    let tuned = tune::tune(&model, &refs[..1], &options(1), None).unwrap();
    let again = tune::tune(&tuned, &refs, &d, None).unwrap_err();
    assert!(again.message.contains("already tuned"), "{}", again.message);
    assert_eq!(tune::save(&model, &std::env::temp_dir().join("never.safetensors"), Existing::Refuse).unwrap_err().kind, ErrorKind::InvalidArgument);
}

#[test]
fn the_latent_space_is_shared_with_the_base() {
    let model = default_model();
    let photos = group_photos(&model);
    let refs: Vec<&Photo> = photos.iter().collect();
    let tuned = tune::tune(&model, &refs, &options(2), None).unwrap();
    let shape = LatentShape::of(model.info());
    let example = model.latent_from_seed(1, None, 1.0).unwrap();
    let direction: Vec<f32> = (0..example.len()).map(|i| ((i * 37 % 11) as f32 - 5.0) / 10.0).collect();
    let edit = Edit::from_direction(shape, &example, &direction, 2.0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("preset.json");
    preset::save(&edit, &model, &path, Existing::Refuse).unwrap();
    let on_tuned = preset::load(&tuned, &path).expect("a preset made on the base applies to the tuned model");
    for p in &photos {
        assert_eq!(edit.apply(p.base()).unwrap(), on_tuned.apply(p.base()).unwrap(), "alphas and transfers differ");
    }
    let back = dir.path().join("preset-tuned.json");
    preset::save(&on_tuned, &tuned, &back, Existing::Refuse).unwrap();
    preset::load(&model, &back).expect("a preset saved on the tuned model applies to the base");

    // An identity edit through the tuned model gives the photo back exactly.
    let faces: Vec<(&Photo, &[f32])> = photos.iter().map(|p| (p, p.base())).collect();
    let same = faces::render_photo(&tuned, &faces, PasteMode::Residual).unwrap();
    assert!(same == *photos[0].image, "an identity edit changed the photo");
}

/// StyleGAN2: every synthesis parameter is tuned, never the mapping; the
/// file round-trips bit for bit.
#[test]
fn a_stylegan2_tunes_its_synthesis_only() {
    let model = Model::load(&common::fixture("tiny64"), common::placement()).unwrap();
    let names: Vec<String> = model_tunable_names(&model);
    assert!(names.iter().all(|n| n.starts_with("synthesis.")), "{names:?}");
    assert!(names.iter().any(|n| n == "synthesis.b4.const"));
    assert!(names.iter().any(|n| n.ends_with("torgb.affine.weight")));
    assert!(!names.iter().any(|n| n.contains("noise_const") || n.contains("resample_filter")));

    let truth = model.latent_from_seed(2, None, 1.0).unwrap();
    let image = editone::render::to_image(&model.render(&[&truth]).unwrap().get(0)).unwrap();
    let photo = editone::invert::photo(&image, model.latent_from_seed(3, None, 1.0).unwrap()).unwrap();
    // The fixture's weights are random, far from a trained model's: PTI's
    // learning rate moves them slowly, ten times it shows the fit in few steps.
    let fast = TuneOptions { steps: 30, learning_rate: 3e-3, ..TuneOptions::default() };
    let tuned = tune::tune(&model, &[&photo], &fast, None).unwrap();
    let gain = face_psnrs_whole(&tuned, &photo) - face_psnrs_whole(&model, &photo);
    assert!(gain > 1.0, "30 steps gain only {gain:.2} dB");
    assert_eq!(tuned.latent_from_seed(4, None, 1.0).unwrap(), model.latent_from_seed(4, None, 1.0).unwrap());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tuned.safetensors");
    tune::save(&tuned, &path, Existing::Refuse).unwrap();
    let loaded = tune::load(&model, &path).unwrap();
    assert!(renders_equal(&loaded.render(&[photo.base()]).unwrap(), &tuned.render(&[photo.base()]).unwrap()));
}

fn model_tunable_names(model: &Model) -> Vec<String> {
    // The saved file lists exactly the tuned tensors.
    let dir = tempfile::tempdir().unwrap();
    let truth = model.latent_from_seed(2, None, 1.0).unwrap();
    let image = editone::render::to_image(&model.render(&[&truth]).unwrap().get(0)).unwrap();
    let photo = editone::invert::photo(&image, truth).unwrap();
    let tuned = tune::tune(model, &[&photo], &options(1), None).unwrap();
    let path = dir.path().join("t.safetensors");
    tune::save(&tuned, &path, Existing::Refuse).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.names().into_iter().cloned().collect()
}

fn face_psnrs_whole(model: &Model, photo: &Photo) -> f64 {
    let r = model.info().resolution as u32;
    psnr(&model.render(&[photo.base()]).unwrap(), &photo.target(r).unwrap())
}

/// A TorchScript stand-in for the projector's vgg16.pt (same call: image
/// in [0, 255], resize flag, LPIPS flag; features out), made with the test
/// venv's torch: no VGG16 file can be downloaded here.
fn perceptual_stand_in(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("features.pt");
    let script = r#"
import sys, torch
class Features(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    def forward(self, x: torch.Tensor, resize_images: bool, return_lpips: bool) -> torch.Tensor:
        return torch.relu(self.conv(x / 255.0)).flatten(1)
torch.jit.script(Features()).save(sys.argv[1])
"#;
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    // TorchScript reads the class's source, so it goes to a file.
    let source = dir.join("features.py");
    std::fs::write(&source, script).unwrap();
    let status = std::process::Command::new(python).arg(&source).arg(&path).status().expect("the test venv's python runs");
    assert!(status.success(), "the stand-in network could not be written");
    path
}

/// With a perceptual network the loss is L2 plus its distance, on the
/// photos and in the locality term alike.
#[test]
fn a_perceptual_network_drives_the_tuning_too() {
    let model = default_model();
    let photos = group_photos(&model);
    let refs: Vec<&Photo> = photos.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let options = TuneOptions { steps: 20, vgg16: Some(perceptual_stand_in(dir.path())), ..TuneOptions::default() };
    let tuned = tune::tune(&model, &refs, &options, None).unwrap();
    for (b, t) in face_psnrs(&model, &photos).iter().zip(&face_psnrs(&tuned, &photos)) {
        assert!(*t > b + 3.0, "tuning 20 steps with the perceptual loss raises a face from {b:.1} dB to {t:.1} dB only");
    }
}
