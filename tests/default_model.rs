//! The default model (DCGAN from gan-face-generate, converted by `make
//! setup`) against the package's own PyTorch generator, its loader's
//! errors, and SeFa directions.

mod common;

use editone::edit::sefa;
use editone::model::{default_model_path, NoiseMode};
use editone::{ErrorKind, Model};
use std::fs;
use tch::Tensor;

fn reference() -> std::collections::HashMap<String, Tensor> {
    let path = default_model_path().with_file_name("digiface-dcgan.reference.safetensors");
    Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `make setup`", path.display()))
        .into_iter()
        .collect()
}

#[test]
fn default_model_matches_the_packages_pytorch_generator() {
    let model = Model::load_default(common::placement()).expect("make setup installs the default model");
    let info = model.info();
    assert_eq!((info.architecture.as_str(), info.resolution, info.w_dim, info.num_ws), ("dcgan", 64, 100, 1));
    let r = reference();
    let img = model.synthesize(&r["z"], NoiseMode::Const).unwrap();
    let err = common::rel_err(&img, &r["img"]);
    eprintln!("default model vs PyTorch: relative error {err:.3e}");
    assert!(err <= common::forward_tolerance(), "relative error {err:e}");
}

#[test]
fn default_model_exposes_four_feature_stages() {
    let model = Model::load_default(common::placement()).unwrap();
    let z = Tensor::randn([2, 100], tch::kind::FLOAT_CPU);
    let (img, feats) = model.synthesize_with_features(&z, NoiseMode::Const).unwrap();
    assert_eq!(img.size(), [2, 3, 64, 64]);
    let sizes: Vec<(String, Vec<i64>)> = feats.iter().map(|f| (f.name.clone(), f.map.size())).collect();
    assert_eq!(sizes[0], ("stage4".into(), vec![2, 512, 4, 4]));
    assert_eq!(sizes[3], ("stage32".into(), vec![2, 64, 32, 32]));
}

#[test]
fn missing_or_corrupt_default_model_says_how_to_fix_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("none.safetensors");
    let e = Model::load_default_from(&missing, common::placement()).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Io);
    assert!(e.message.contains("make setup") && e.message.contains("none.safetensors"), "{}", e.message);

    let bytes = fs::read(default_model_path()).unwrap();
    let truncated = tmp.path().join("truncated.safetensors");
    fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    let e = Model::load_default_from(&truncated, common::placement()).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Format);
    assert!(e.message.contains("make setup"), "{}", e.message);

    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01; // a bit of the last weight: still a valid file
    let damaged = tmp.path().join("damaged.safetensors");
    fs::write(&damaged, &flipped).unwrap();
    let e = Model::load_default_from(&damaged, common::placement()).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Format);
    assert!(e.message.contains("corrupt") && e.message.contains("make setup"), "{}", e.message);
}

fn check_directions(model: &Model, rows: Option<std::ops::Range<usize>>) {
    let dirs = sefa::directions(model, 5, rows.clone()).unwrap();
    assert_eq!(dirs.len(), 5);
    for (i, a) in dirs.iter().enumerate() {
        assert_eq!(a.vector.len(), model.info().w_dim);
        let norm: f64 = a.vector.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "direction {i} has norm {norm}");
        for b in &dirs[..i] {
            let d: f64 = a.vector.iter().zip(&b.vector).map(|(&x, &y)| x as f64 * y as f64).sum();
            assert!(d.abs() < 1e-5, "directions not orthogonal: {d}");
        }
        if i > 0 {
            assert!(dirs[i - 1].eigenvalue >= a.eigenvalue, "not sorted by eigenvalue");
        }
    }
    assert_eq!(dirs, sefa::directions(model, 5, rows).unwrap(), "same directions on every run");
}

#[test]
fn sefa_directions_are_unit_orthogonal_sorted_and_stable() {
    check_directions(&Model::load_default(common::placement()).unwrap(), None);
    {
        let dir = common::fixture("cond128");
        let model = Model::load(&dir, common::placement()).unwrap();
        check_directions(&model, None);
        check_directions(&model, Some(0..4));
        let all = sefa::directions(&model, 1, None).unwrap();
        let low = sefa::directions(&model, 1, Some(0..4)).unwrap();
        assert_ne!(all, low, "the layer range changes the result");
        assert_eq!(sefa::directions(&model, 1, Some(3..20)).unwrap_err().kind, ErrorKind::InvalidArgument);
    }
    let model = Model::load_default(common::placement()).unwrap();
    assert_eq!(sefa::directions(&model, 0, None).unwrap_err().kind, ErrorKind::InvalidArgument);
    assert_eq!(sefa::directions(&model, 101, None).unwrap_err().kind, ErrorKind::InvalidArgument);
}
