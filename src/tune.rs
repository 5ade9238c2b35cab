//! Pivotal tuning (Roich et al., "Pivotal Tuning for Latent-based Editing
//! of Real Images", ACM TOG 2022), for a batch of photos at once (the
//! paper's multi-ID variant): each photo's inverted latent is kept as a
//! pivot, and a copy of the generator's synthesis weights is fine-tuned
//! until G(pivot) reproduces the photo, while a locality term holds the
//! copy to the base's output on latents between each pivot and random
//! latents. The mapping network, the average W and the noise maps are
//! shared with the base and never change, so latents, directions, d* and
//! the alphas of the method mean the same on both; only pixels differ.
//!
//! A tuned model is a [`Model`] of its own that knows its base
//! ([`Model::tuned_from`]); it saves to a safetensors file holding only the
//! tuned tensors and the base's fingerprint, and loads only over that base.

use crate::error::{Error, ErrorKind, Result};
use crate::files::{self, Existing};
use crate::invert::{Distance, Photo};
use crate::model::checkpoint::{layout, NativeTensor};
use crate::model::weights::{fnv1a64, WeightFile};
use crate::model::{guard, Generator, Model, NoiseMode, Truncation};
use crate::progress::{report, Progress};
use crate::seed::LegacyRandomState;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tch::nn::OptimizerConfig;
use tch::{nn, Kind, Tensor};

/// The safetensors metadata key of a tuned model file: a JSON object
/// ([`TunedHeader`]). Its presence marks the file as a tuned model.
pub const TUNED_METADATA: &str = "editone_tuned";

/// Largest tuned model file read (a config-f 1024 synthesis is ~120 MB).
const MAX_TUNED_BYTES: u64 = 2 << 30;

/// Most photos tuned together (each adds a render to every step).
pub const MAX_PHOTOS: usize = 256;

/// Tuning settings. The defaults were chosen by measurement on the default
/// model (`examples/tune_measure.rs`, docs/faces.md section 6): 100 steps
/// already bring six faces of a group photo from 23.7 to 36.4 dB (300 steps:
/// 41.7 dB at three times the time); PTI's locality weight 0.1 at half-way
/// keeps renders of random latents at 32.9 dB of the base's (28.6 without
/// the term; weight 1 pulled the faces down to 31.5 dB without helping).
/// A learning rate of 2e-4 rather than PTI's 3e-4 fits the faces as well
/// (36.7 against 36.8 dB mean over 19) and drifts less (random renders at
/// 32.2 against 31.5 dB; after the astronaut alone 31.3 against 29.4).
#[derive(Clone, Debug, PartialEq)]
pub struct TuneOptions {
    /// Adam steps (100).
    pub steps: u32,
    /// Adam's learning rate for the trained parameters (2e-4).
    pub learning_rate: f64,
    /// Weight of the locality term against the photos' distance (0.1,
    /// PTI's); 0 turns it off.
    pub locality_weight: f64,
    /// How far from each pivot toward a random latent the locality term
    /// looks, as a fraction of the way (0.5).
    pub locality_reach: f64,
    /// Seed of the random latents of the locality term.
    pub seed: u64,
    /// A TorchScript VGG16 (the projector's vgg16.pt): the paper's LPIPS
    /// plus L2. Without it, L2 at full, half and quarter resolution.
    pub vgg16: Option<PathBuf>,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions { steps: 100, learning_rate: 2e-4, locality_weight: 0.1, locality_reach: 0.5, seed: 1, vgg16: None }
    }
}

impl TuneOptions {
    /// Refuses settings no tuning can use, naming the setting.
    pub fn validate(&self) -> Result<()> {
        if !(1..=100_000).contains(&self.steps) {
            return Err(Error::invalid(format!("tune options: steps is {}; give 1 to 100000", self.steps)));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(Error::invalid(format!(
                "tune options: learning_rate is {}; give a number above 0 and at most 1",
                self.learning_rate
            )));
        }
        if !(self.locality_weight >= 0.0 && self.locality_weight <= 1e6) {
            return Err(Error::invalid(format!(
                "tune options: locality_weight is {}; give 0 to 1e6",
                self.locality_weight
            )));
        }
        if !(self.locality_reach > 0.0 && self.locality_reach <= 1.0) {
            return Err(Error::invalid(format!(
                "tune options: locality_reach is {}; give a fraction above 0 and at most 1",
                self.locality_reach
            )));
        }
        Ok(())
    }
}

/// What a tuned model file says of itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct TunedHeader {
    /// "editone-tuned".
    format: String,
    /// 1.
    version: u32,
    /// The base model's fingerprint.
    tuned_from: String,
    /// The base's architecture, for messages.
    architecture: String,
    /// FNV-1a 64 of the data section, so a damaged file is refused.
    data_hash: String,
}

const FORMAT: &str = "editone-tuned";
const VERSION: u32 = 1;

/// Tunes a copy of `model`'s synthesis on `photos`, whose latents are the
/// pivots (from [`crate::invert::invert`] or [`crate::faces::invert_faces`]).
/// Progress: ("tune", step, steps); a cancel returns
/// [`ErrorKind::Cancelled`] and nothing is made. The base is never changed.
pub fn tune(model: &Model, photos: &[&Photo], options: &TuneOptions, mut progress: Option<Progress<'_>>) -> Result<Model> {
    options.validate()?;
    check_tunable(model, photos)?;
    let info = model.info().clone();
    let device = model.device();
    let resolution = info.resolution as u32;
    let targets = Tensor::cat(&photos.iter().map(|p| p.target(resolution)).collect::<Result<Vec<_>>>()?, 0).to_device(device);
    let pivots = model.to_wplus(&model.stack_latents(&photos.iter().map(|p| p.base()).collect::<Vec<_>>())?)?;
    let distance = Distance::load(options.vgg16.as_deref(), device)?;
    let prepared = distance.prepare(&targets)?;
    let base = model.generator();

    let vs = nn::VarStore::new(device);
    let params = base.tunable();
    let scales = lr_scales(&params);
    let mut vars = HashMap::with_capacity(params.len());
    for (i, p) in params.iter().enumerate() {
        let group = scales.iter().position(|s| *s == p.lr_scale).expect("every scale is listed");
        let var = guard(|| vs.root().set_group(group).var_copy(&format!("p{i}"), &p.value))?;
        vars.insert(p.name.clone(), var);
    }
    let mut opt = nn::Adam::default().build(&vs, options.learning_rate)?;
    for (group, scale) in scales.iter().enumerate() {
        opt.set_lr_group(group, options.learning_rate * scale);
    }
    let mut rng = LegacyRandomState::from_u64(options.seed);
    for step in 0..options.steps {
        let tuned = base.with_params(&vars);
        let loss = guard(|| -> Result<Tensor> {
            let images = tuned.synthesize(&pivots, crate::model::Noise::Mode(NoiseMode::Const), false).0;
            let mut loss = pixel_and_perceptual(&distance, &images, &prepared, &targets)?;
            if options.locality_weight > 0.0 {
                // Every pivot's territory at every step, as PTI's multi-ID
                // tuning does: one pivot in turn cost half the time but
                // left the generator 1-2 dB further from its base on
                // random latents (docs/faces.md section 6).
                let around = locality_latents(model, &pivots, options.locality_reach, &mut rng)?;
                let before = tch::no_grad(|| base.synthesize(&around, crate::model::Noise::Mode(NoiseMode::Const), false).0);
                let after = tuned.synthesize(&around, crate::model::Noise::Mode(NoiseMode::Const), false).0;
                let prepared_before = distance.prepare(&before)?;
                loss = loss + pixel_and_perceptual(&distance, &after, &prepared_before, &before)? * options.locality_weight;
            }
            Ok(loss)
        })??;
        if !loss.double_value(&[]).is_finite() {
            return Err(Error::invalid(format!(
                "tuning diverged at step {} (the loss is not finite): lower the learning rate",
                step + 1
            )));
        }
        guard(|| opt.backward_step(&loss))?;
        report(&mut progress, "tune", step as u64 + 1, options.steps as u64)?;
    }
    let tuned: HashMap<String, Tensor> = vars.into_iter().map(|(name, var)| (name, var.detach())).collect();
    let generator = base.with_params(&tuned);
    // The fingerprint is the one its saved file will have.
    let bytes = serialize(generator.as_ref(), model.fingerprint(), Path::new("tuned model"))?;
    let fingerprint = WeightFile::from_bytes(Path::new("tuned model"), bytes).fingerprint();
    let source = format!("{} tuned on {} photos", model.source(), photos.len());
    Ok(model.tuned_copy(generator, fingerprint, source))
}

/// Tuning needs a base model and photo latents of its shape.
fn check_tunable(model: &Model, photos: &[&Photo]) -> Result<()> {
    if model.tuned_from().is_some() {
        return Err(Error::invalid("this model is already tuned: tune its base model on all the photos together"));
    }
    if model.info().c_dim > 0 {
        return Err(Error::invalid("tuning conditional models is not supported"));
    }
    if photos.is_empty() || photos.len() > MAX_PHOTOS {
        return Err(Error::invalid(format!("tune {} photos: give 1 to {MAX_PHOTOS}", photos.len())));
    }
    Ok(())
}

/// The distinct learning-rate scales, in order of first appearance: one
/// optimiser group each.
fn lr_scales(params: &[crate::model::Tunable]) -> Vec<f64> {
    let mut scales: Vec<f64> = Vec::new();
    for p in params {
        if !scales.contains(&p.lr_scale) {
            scales.push(p.lr_scale);
        }
    }
    scales
}

/// The photos' term: with VGG16, PTI's L2 plus the perceptual distance
/// (averaged per image); without, the projector's three-scale L2.
/// `prepared` is `target` prepared by `distance`.
fn pixel_and_perceptual(distance: &Distance, images: &Tensor, prepared: &Tensor, target: &Tensor) -> Result<Tensor> {
    match distance {
        Distance::Pixels => distance.between(images, prepared),
        Distance::Vgg(_) => {
            let n = images.size()[0] as f64;
            Ok((images - target).square().mean(Kind::Float) + distance.between(images, prepared)? / n)
        }
    }
}

/// One latent per pivot, `reach` of the way from it toward a random latent
/// of the model's prior (PTI's "territory" of the pivot).
fn locality_latents(model: &Model, pivots: &Tensor, reach: f64, rng: &mut LegacyRandomState) -> Result<Tensor> {
    let info = model.info();
    let z = rng.randn_tensor(&[pivots.size()[0], info.z_dim as i64], model.device());
    let random = tch::no_grad(|| model.map(&z, None, Truncation::default()))?;
    Ok(pivots.lerp(&random, reach))
}

/// The file of a generator tuned from the model with fingerprint
/// `tuned_from`: its tuned tensors (as the generator holds them) and a
/// [`TunedHeader`].
fn serialize(generator: &dyn Generator, tuned_from: &str, out: &Path) -> Result<Vec<u8>> {
    let tensors = generator
        .tunable()
        .iter()
        .map(|p| Ok((p.name.clone(), NativeTensor::of(&p.value)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut header = TunedHeader {
        format: FORMAT.into(),
        version: VERSION,
        tuned_from: tuned_from.to_string(),
        architecture: generator.info().architecture.clone(),
        data_hash: String::new(),
    };
    let metadata = |header: &TunedHeader| -> Result<HashMap<String, String>> {
        let text = serde_json::to_string(header).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        Ok(HashMap::from([(TUNED_METADATA.to_string(), text)]))
    };
    let draft = WeightFile::from_bytes(out, layout(&tensors, &metadata(&header)?, out)?);
    header.data_hash = data_hash(draft.data()?);
    drop(draft);
    layout(&tensors, &metadata(&header)?, out)
}

fn data_hash(data: &[u8]) -> String {
    format!("fnv1a64:{:016x}", fnv1a64(data))
}

/// Saves a tuned model to `path` atomically (a temporary name, then a
/// rename). Presets are made on the latent space, so they need no copy.
pub fn save(model: &Model, path: &Path, existing: Existing) -> Result<()> {
    let tuned_from = model.tuned_from().ok_or_else(|| Error::invalid("this model is not tuned: only a tuned model saves as one"))?;
    let bytes = serialize(model.generator(), tuned_from, path)?;
    files::write_atomic(path, existing, |w| {
        std::io::Write::write_all(w, &bytes).map_err(|e| Error::new(ErrorKind::Io, format!("cannot write '{}': {e}", path.display())))
    })
}

/// Loads a tuned model file over `base`, the model it was tuned from. A
/// file tuned from another model is [`ErrorKind::Incompatible`]; a damaged
/// or foreign one [`ErrorKind::Format`].
pub fn load(base: &Model, path: &Path) -> Result<Model> {
    if base.tuned_from().is_some() {
        return Err(Error::invalid("load a tuned model over its base model, not over another tuned model"));
    }
    let label = format!("tuned model '{}'", path.display());
    let file = WeightFile::from_bytes(path, files::read_capped(path, "tuned model", MAX_TUNED_BYTES)?);
    let header = read_header(&file, &label)?;
    if header.tuned_from != base.fingerprint() {
        return Err(Error::new(
            ErrorKind::Incompatible,
            format!(
                "{label} was tuned from model {} ({}), not from this one {} ({})",
                header.tuned_from,
                header.architecture,
                base.fingerprint(),
                base.info().architecture
            ),
        ));
    }
    if data_hash(file.data()?) != header.data_hash {
        return Err(Error::format(format!("{label} is damaged: its tensors do not match the hash it was written with")));
    }
    let mut weights = file.parse(base.device())?;
    let mut tuned = HashMap::new();
    for p in base.generator().tunable() {
        let t = weights.take(&p.name, &p.value.size()).map_err(|e| e.context(label.clone()))?;
        tuned.insert(p.name, t);
    }
    weights.finish().map_err(|e| e.context(label.clone()))?;
    let generator = base.generator().with_params(&tuned);
    Ok(base.tuned_copy(generator, file.fingerprint(), path.display().to_string()))
}

fn read_header(file: &WeightFile, label: &str) -> Result<TunedHeader> {
    let meta: BTreeMap<String, String> = file.metadata()?;
    let text = meta.get(TUNED_METADATA).ok_or_else(|| {
        Error::format(format!("{label} is not a tuned model (no '{TUNED_METADATA}' entry in its metadata)"))
    })?;
    let header: TunedHeader =
        serde_json::from_str(text).map_err(|e| Error::format(format!("{label}: its '{TUNED_METADATA}' entry is malformed: {e}")))?;
    if header.format != FORMAT || header.version != VERSION {
        return Err(Error::format(format!(
            "{label}: format '{}' version {} is not '{FORMAT}' version {VERSION}",
            header.format, header.version
        )));
    }
    Ok(header)
}
