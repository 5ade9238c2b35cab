//! Official checkpoint formats: NVlabs network pickles and rosinality
//! torch.save files, built at test time by tests/python/make_checkpoints.py
//! (no official code), load to the same images as the native format;
//! hostile pickles are refused without running anything; mutated files
//! never crash the loader.

mod common;

use editone::files::Existing;
use editone::model::checkpoint::ModelFile;
use editone::model::{build_generator, convert, Model};
use editone::{ErrorKind, NoiseMode, Truncation};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tch::{Device, Tensor};

fn python() -> PathBuf {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(py.exists(), "{} is missing: run `make setup` (make test does)", py.display());
    py
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(name)
}

/// The checkpoint files of a fixture (optionally recorded with another
/// num_fp16_res), generated once per test run.
fn checkpoints(fixture: &str, fp16_res: Option<u32>) -> PathBuf {
    static MADE: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let src = common::fixture(fixture);
    let key = format!("{fixture}-fp16-{fp16_res:?}");
    let mut made = MADE.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(dir) = made.get(&key) {
        return dir.clone();
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("checkpoints").join(&key);
    let _ = std::fs::remove_dir_all(&out);
    let mut cmd = Command::new(python());
    cmd.arg(script("make_checkpoints.py")).arg(&src).arg(&out);
    if let Some(n) = fp16_res {
        cmd.arg("--fp16-res").arg(n.to_string());
    }
    assert!(cmd.status().unwrap().success(), "make_checkpoints.py failed for {fixture}");
    made.insert(key, out.clone());
    out
}

fn seed_images(model: &Model, seeds: &[u64], psi: f32) -> Tensor {
    let class = (model.info().c_dim > 0).then_some(1);
    let latents: Vec<Vec<f32>> = seeds.iter().map(|&s| model.latent_from_seed(s, class, psi).unwrap()).collect();
    let refs: Vec<&[f32]> = latents.iter().map(|l| l.as_slice()).collect();
    model.render(&refs).unwrap()
}

fn load(path: &Path) -> Model {
    Model::load(path, common::placement()).unwrap_or_else(|e| panic!("{}: {}", path.display(), e.message))
}

#[test]
fn nvlabs_pickles_render_like_the_native_model() {
    for name in ["tiny64", "cond128"] {
        let files = checkpoints(name, None);
        let native = load(&common::fixture(name));
        let expected = seed_images(&native, &[0, 1, 2], 0.7);
        for pkl in ["model-p2.pkl", "model-p3.pkl", "model.pkl", "model-p5.pkl"] {
            let model = load(&files.join(pkl));
            assert_eq!(model.info(), native.info(), "{name}/{pkl}");
            let got = seed_images(&model, &[0, 1, 2], 0.7);
            assert_eq!(common::rel_err(&got, &expected), 0.0, "{name}/{pkl} renders differently");
        }
    }
}

#[test]
fn nvlabs_config_is_read_from_the_pickled_modules() {
    let files = checkpoints("tiny64", Some(2));
    let file = ModelFile::open(&files.join("model.pkl")).unwrap();
    let native: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("tiny64").join("config.json")).unwrap()).unwrap();
    let c = &file.config;
    for key in ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"] {
        assert_eq!(c[key], native[key], "{key}");
    }
    assert_eq!(c["mapping_kwargs"]["num_layers"], native["mapping_kwargs"]["num_layers"]);
    assert_eq!(c["mapping_kwargs"]["lr_multiplier"], 0.01);
    let syn = &c["synthesis_kwargs"];
    assert_eq!(syn["channel_base"], native["synthesis_kwargs"]["channel_base"]);
    assert_eq!(syn["channel_max"], native["synthesis_kwargs"]["channel_max"]);
    assert_eq!(syn["conv_clamp"].as_f64(), Some(256.0));
    assert_eq!(syn["architecture"], "skip");
    assert_eq!(syn["num_fp16_res"], 2, "two float16 blocks recorded");
    // Float16 blocks compute in float32 on the CPU: the same pixels.
    let native = load(&common::fixture("tiny64"));
    let model = load(&files.join("model.pkl"));
    assert_eq!(common::rel_err(&seed_images(&model, &[3], 1.0), &seed_images(&native, &[3], 1.0)), 0.0);
}

#[test]
fn rosinality_checkpoints_match_rosinalitys_own_forward() {
    let files = checkpoints("tiny64", None);
    let reference: HashMap<String, Tensor> =
        Tensor::read_safetensors(files.join("rosinality_reference.safetensors")).unwrap().into_iter().collect();
    let model = load(&files.join("rosinality.pt"));
    let ws = tch::no_grad(|| model.map(&reference["z"], None, Truncation::default())).unwrap();
    let w = ws.select(1, 0);
    let err = |a: &Tensor, b: &str| common::rel_err(a, &reference[b]);
    let tolerance = 1e-5;
    assert!(err(&w, "w") <= tolerance, "mapping: {}", err(&w, "w"));
    for (input, image) in [("w", "img_w"), ("wplus", "img_wplus")] {
        let img = tch::no_grad(|| model.synthesize(&reference[input], NoiseMode::Const)).unwrap();
        eprintln!("rosinality {image}: relative error {:.2e}", err(&img, image));
        assert!(err(&img, image) <= tolerance, "{image}: {}", err(&img, image));
    }
    let trunc = tch::no_grad(|| model.map(&reference["z"], None, Truncation { psi: 0.7, cutoff: None })).unwrap();
    assert!(err(&trunc.select(1, 0), "w_trunc") <= tolerance);
    let img = tch::no_grad(|| model.synthesize(&trunc, NoiseMode::Const)).unwrap();
    assert!(err(&img, "img_trunc") <= tolerance, "img_trunc: {}", err(&img, "img_trunc"));

    // The same weights under NVlabs numerics agree to float rounding only.
    let native = load(&common::fixture("tiny64"));
    let nv = tch::no_grad(|| native.synthesize(&reference["wplus"], NoiseMode::Const)).unwrap();
    let between = err(&nv, "img_wplus");
    eprintln!("NVlabs numerics vs rosinality's: relative error {between:.2e}");
    assert!(between < 1e-4, "{between}");
}

#[test]
fn rosinality_training_checkpoints_estimate_the_average_latent() {
    let files = checkpoints("tiny64", None);
    let with_avg = load(&files.join("rosinality.pt"));
    let without = load(&files.join("rosinality-noavg.pt"));
    assert_eq!(with_avg.info(), without.info());
    let avg = without.w_avg().unwrap();
    assert_eq!(avg.size(), vec![with_avg.info().w_dim as i64]);
    // The estimate is the mean of mapped samples: the mapping of its own
    // mean-like inputs stays in range, and it is deterministic.
    assert_eq!(common::rel_err(&avg, &load(&files.join("rosinality-noavg.pt")).w_avg().unwrap()), 0.0);
    assert!(avg.isfinite().all().int64_value(&[]) == 1);
    let rendered = seed_images(&without, &[5], 0.5);
    assert!(rendered.isfinite().all().int64_value(&[]) == 1);
}

#[test]
fn converted_files_load_fast_and_render_the_same() {
    let files = checkpoints("tiny64", None);
    let out = tempfile::tempdir().unwrap();
    for source in ["model-p2.pkl", "rosinality.pt", "rosinality-noavg.pt"] {
        let target = out.path().join(format!("{source}.safetensors"));
        let info = convert(&files.join(source), &target, Existing::Refuse, None).unwrap();
        let (original, converted) = (load(&files.join(source)), load(&target));
        assert_eq!(&info, converted.info());
        assert_eq!(original.fingerprint(), converted.fingerprint(), "presets made on {source} apply to the copy");
        let (a, b) = (seed_images(&original, &[0, 9], 0.8), seed_images(&converted, &[0, 9], 0.8));
        assert_eq!(common::rel_err(&a, &b), 0.0, "{source}");
    }
    // Nothing is written for a file that does not load.
    let bad = out.path().join("bad.pkl");
    std::fs::write(&bad, b"\x80\x04N.").unwrap();
    let target = out.path().join("bad.safetensors");
    assert_eq!(convert(&bad, &target, Existing::Refuse, None).unwrap_err().kind, ErrorKind::Format);
    assert!(!target.exists());
}

#[test]
fn hostile_pickles_are_refused_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("MARKER");
    let made = Command::new(python()).arg(script("make_hostile_pickles.py")).arg(dir.path()).arg(&marker).status().unwrap();
    assert!(made.success());
    // Proof that the files are live: Python's own pickle runs them.
    let live = dir.path().join("hostile-os-system-p2.pkl");
    assert!(Command::new(python()).arg(script("make_hostile_pickles.py")).arg("--run").arg(&live).status().unwrap().success());
    assert!(marker.exists(), "the hostile pickle did not run under plain pickle; the test proves nothing");
    std::fs::remove_file(&marker).unwrap();

    let mut checked = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("pkl") {
            continue;
        }
        let e = Model::load(&path, common::placement()).err().unwrap_or_else(|| panic!("{} loaded", path.display()));
        assert_eq!(e.kind, ErrorKind::Format, "{}", e.message);
        // Protocol 2 writes Python 2 names (__builtin__.eval, commands.Popen).
        let named = ["system'", "eval'", "exec'", "Popen'"].iter().any(|f| {
            e.message.split("refusing global '").nth(1).is_some_and(|rest| rest.split_once('.').is_some_and(|(_, n)| n.starts_with(f)))
        });
        assert!(named, "the message names the global: {}", e.message);
        assert!(!marker.exists(), "{} ran code", path.display());
        checked += 1;
    }
    assert_eq!(checked, 10);
}

/// xorshift64*: a fixed, dependency-free stream for reproducible mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random mutation: flip, set, insert or delete bytes, truncate, or
/// write a boundary integer (0, -1, huge) over four bytes.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len());
        match rng.below(7) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out[at] = rng.next() as u8,
            2 => out.insert(at, rng.next() as u8),
            3 if out.len() > 1 => {
                out.remove(at);
            }
            4 => out.truncate(at.max(1)),
            5 => {
                let v = [0u32, u32::MAX, 0x7fff_ffff, 0x4000_0000][rng.below(4)].to_le_bytes();
                for (i, b) in v.iter().enumerate() {
                    if let Some(slot) = out.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
            _ => {
                // Repeat a slice: duplicated opcodes, memo keys, frames.
                let len = rng.below(64).min(out.len() - at);
                let piece = out[at..at + len].to_vec();
                let to = rng.below(out.len());
                out.splice(to..to, piece);
            }
        }
    }
    out
}

/// Loads `bytes` as a model file and builds it on the CPU: any result is
/// fine, a panic or a hang is not.
fn try_load(bytes: Vec<u8>) -> Result<(), editone::Error> {
    let file = ModelFile::from_bytes(Path::new("mutated"), bytes)?;
    build_generator(&file, Device::Cpu, false).map(|_| ())
}

#[test]
fn mutated_files_never_crash_the_loader() {
    let files = checkpoints("tiny64", None);
    let weights = std::fs::read(common::fixture("tiny64").join("weights.safetensors")).unwrap();
    let config = std::fs::read_to_string(common::fixture("tiny64").join("config.json")).unwrap();
    let native = native_file(&weights, &config);
    let corpus: Vec<(&str, Vec<u8>)> = vec![
        ("skeleton.pkl", std::fs::read(files.join("skeleton.pkl")).unwrap()),
        ("skeleton-p2.pkl", std::fs::read(files.join("skeleton-p2.pkl")).unwrap()),
        ("skeleton.pt", std::fs::read(files.join("skeleton.pt")).unwrap()),
        ("model.pkl", std::fs::read(files.join("model.pkl")).unwrap()),
        ("native.safetensors", native),
    ];
    // The real files must load: otherwise the mutations test nothing.
    try_load(corpus[3].1.clone()).unwrap();
    try_load(corpus[4].1.clone()).unwrap();
    let budget = Duration::from_secs(6);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (start, mut runs, mut loaded) = (Instant::now(), 0usize, 0usize);
    while start.elapsed() < budget {
        let (name, input) = &corpus[runs % corpus.len()];
        let mutated = mutate(&mut rng, input);
        let began = Instant::now();
        let result = std::panic::catch_unwind(|| try_load(mutated.clone()));
        let took = began.elapsed();
        match result {
            Ok(r) => loaded += r.is_ok() as usize,
            Err(_) => {
                let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("crash-input");
                std::fs::write(&path, &mutated).unwrap();
                panic!("loading a mutated {name} panicked (input saved to {})", path.display());
            }
        }
        assert!(took < Duration::from_secs(2), "a mutated {name} took {took:?} to load");
        runs += 1;
    }
    eprintln!("{runs} mutated files in {budget:?}: {loaded} still loaded, none crashed");
    assert!(runs >= 200, "only {runs} runs in the budget");
}

/// A single-file native model from a fixture folder's weights and config.
fn native_file(weights: &[u8], config: &str) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(weights).unwrap();
    let views: Vec<(String, safetensors::tensor::TensorView)> = st.tensors();
    let meta = HashMap::from([("config".to_string(), config.to_string())]);
    safetensors::serialize(views, &Some(meta)).unwrap()
}

#[test]
fn float16_blocks_run_in_float16_close_to_float32() {
    use editone::model::stylegan2::StyleGan2;
    use editone::model::{Generator, Noise};
    // The engine option is for CUDA; here the same code path runs on the
    // CPU to check it against float32, batch 1 (fused) and 3 (not fused).
    let files = checkpoints("tiny64", Some(2));
    let file = ModelFile::open(&files.join("model.pkl")).unwrap();
    let full = StyleGan2::load(&file.config, &file.label, file.weights(Device::Cpu).unwrap(), false).unwrap();
    let half = StyleGan2::load(&file.config, &file.label, file.weights(Device::Cpu).unwrap(), true).unwrap();
    for n in [1, 3] {
        let z = Tensor::randn([n, 64], (tch::Kind::Float, Device::Cpu));
        let ws = full.map(&z, None, Truncation::default());
        let a = tch::no_grad(|| full.synthesize(&ws, Noise::Mode(NoiseMode::Const), false).0);
        let b = tch::no_grad(|| half.synthesize(&ws, Noise::Mode(NoiseMode::Const), false).0);
        assert_eq!(b.kind(), tch::Kind::Float);
        let err = common::rel_err(&b, &a);
        eprintln!("float16 blocks, batch {n}: relative error {err:.2e}");
        assert!(err > 0.0 && err < 1e-2, "{err}");
    }
}
