//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod groups;

use std::path::PathBuf;
use tch::Tensor;

/// tests/fixtures/stylegan2/<name> ($EDITONE_FIXTURES/<name> when set,
/// e.g. on a machine the test binaries were carried to). The fixtures are
/// part of the repository, so a missing folder fails the test: the
/// parity checks must never pass by being skipped.
pub fn fixture(name: &str) -> PathBuf {
    let base = std::env::var_os("EDITONE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stylegan2"));
    let dir = base.join(name);
    assert!(dir.is_dir(), "fixture folder {} is missing (see tests/fixtures/stylegan2/README.md)", dir.display());
    dir
}

/// Where models of the tests live: the engine's device and precision, so
/// that the same tests run on CUDA when the engine picks a GPU.
pub fn placement() -> editone::model::Placement {
    editone::Engine::get().expect("the engine starts").placement()
}

/// The reference tensors of a fixture, by name.
pub fn reference(dir: &std::path::Path) -> std::collections::HashMap<String, Tensor> {
    Tensor::read_safetensors(dir.join("reference.safetensors")).expect("reference.safetensors loads").into_iter().collect()
}

/// max |a - b| / max |b|, the fixtures' error measure.
pub fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    let a = a.to_device(tch::Device::Cpu).to_kind(tch::Kind::Double);
    let b = b.to_device(tch::Device::Cpu).to_kind(tch::Kind::Double);
    let diff = (&a - &b).abs().max().double_value(&[]);
    diff / b.abs().max().double_value(&[])
}

/// The forward-parity tolerance on the engine's device: 1e-5 relative in
/// float32 on the CPU; 1e-4 on CUDA (TF32 off), where cuDNN picks other
/// convolution algorithms than the reference's CPU run (issue 9).
pub fn forward_tolerance() -> f64 {
    if editone::Engine::get().expect("engine starts").device().is_cuda() {
        1e-4
    } else {
        1e-5
    }
}
