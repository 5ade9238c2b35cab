//! Generators behind one trait, and the model files they load from.
//!
//! A model is a `.safetensors` file whose metadata key `config` holds the
//! architecture's config as JSON, or a folder with `config.json` and
//! `weights.safetensors`. The config's `model` field names the
//! architecture ("stylegan2" when absent). Tensor names follow the NVlabs
//! `G_ema.state_dict()`.

pub mod checkpoint;
pub mod dcgan;
pub mod pickle;
pub mod stylegan2;
pub mod weights;
mod winograd;

use crate::error::{Error, ErrorKind, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};
use checkpoint::ModelFile;
use crate::faces::align::Alignment;
use serde_json::Value as Json;

/// The fingerprint of the converted default model (pinned by
/// tools/convert_default_model.py), so a damaged cache is caught at load.
pub const DEFAULT_MODEL_FINGERPRINT: &str = "fnv1a64:0f6b1817126ef89d";

/// Where the default model is: $EDITONE_DEFAULT_MODEL, else the cache that
/// `make setup` fills in the source folder this library was built from.
pub fn default_model_path() -> PathBuf {
    match std::env::var_os("EDITONE_DEFAULT_MODEL") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/models/digiface-dcgan.safetensors")),
    }
}

/// Shape facts a host needs about a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// "stylegan2" or "dcgan".
    pub architecture: String,
    /// Output width and height in pixels.
    pub resolution: usize,
    /// Output channels (3 for RGB).
    pub channels: usize,
    /// Size of the input noise z.
    pub z_dim: usize,
    /// Size of one class label vector (0 when unconditional).
    pub c_dim: usize,
    /// Size of one W row.
    pub w_dim: usize,
    /// Rows of a W+ latent.
    pub num_ws: usize,
}

/// How per-pixel noise inputs are filled during synthesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseMode {
    /// The model's stored noise maps (the official default).
    Const,
    /// No noise.
    None,
    /// Fresh Gaussian noise at every call.
    Random,
}

/// The noise inputs of one synthesis call: a mode, or one map per noise
/// layer used in place of the stored constant maps (the projector
/// optimises them). Models without noise inputs ignore both.
#[derive(Clone, Copy)]
pub enum Noise<'a> {
    /// See [`NoiseMode`].
    Mode(NoiseMode),
    /// [R, R] maps in layer order, shaped as [`Generator::noise_maps`] returns.
    Maps(&'a [Tensor]),
}

/// Truncation towards the average latent: psi 1 means none; rows at and
/// after `cutoff` are left alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Truncation {
    /// Interpolation factor from w_avg (0) to w (1).
    pub psi: f64,
    /// Number of leading W+ rows to truncate; None means all.
    pub cutoff: Option<usize>,
}

impl Default for Truncation {
    fn default() -> Self {
        Truncation { psi: 1.0, cutoff: None }
    }
}

/// What every architecture implements. Inputs are already validated by
/// [`Model`]; implementations may use panicking tch calls, which `Model`
/// turns into errors.
pub trait Generator: Send + Sync {
    /// Shape facts.
    fn info(&self) -> &ModelInfo;
    /// z [N, z_dim] (float32) and labels c [N, c_dim] to W+ [N, num_ws, w_dim].
    fn map(&self, z: &Tensor, c: Option<&Tensor>, truncation: Truncation) -> Tensor;
    /// W+ [N, num_ws, w_dim] to images [N, C, H, W], nominally in [-1, 1],
    /// plus the feature map leaving each block when `features` is set.
    fn synthesize(&self, ws: &Tensor, noise: Noise<'_>, features: bool) -> (Tensor, Vec<Feature>);
    /// Copies of the stored constant noise maps, in layer order (empty for
    /// models without noise inputs).
    fn noise_maps(&self) -> Vec<Tensor> {
        Vec::new()
    }
    /// The average W the mapping network tracks (truncation centre), [w_dim].
    fn w_avg(&self) -> Tensor;
    /// SeFa's A: the weights that first act on the latent, stacked as
    /// [outputs, w_dim], for the layers fed by W+ rows `rows`
    /// (docs/method.md section 7).
    fn latent_weights(&self, rows: std::ops::Range<usize>) -> Tensor;
    /// The tensors pivotal tuning changes (src/tune.rs): every trained
    /// parameter of the synthesis, never the mapping network, the average
    /// W, filters or noise maps, so a latent means the same on a tuned copy.
    fn tunable(&self) -> Vec<Tunable>;
    /// A generator sharing every tensor with this one except those named
    /// in `params` (names from [`Self::tunable`], same shapes), which
    /// replace them. Tensors that need gradients keep them, so a training
    /// step renders through its own parameters.
    fn with_params(&self, params: &HashMap<String, Tensor>) -> Box<dyn Generator>;
}

/// One tensor pivotal tuning may change.
pub struct Tunable {
    /// Its name (the NVlabs or PyTorch parameter name), which a tuned model
    /// file stores it under.
    pub name: String,
    /// The tensor as the generator computes with it (any gain the
    /// architecture applies at load already applied), shared.
    pub value: Tensor,
    /// That load-time gain: the stored value is the trained parameter times
    /// this, so a learning rate times it moves the trained parameter at the
    /// rate asked for, as the equalised learning rate of training does.
    pub lr_scale: f64,
}

/// An intermediate feature map, named after the block it leaves.
pub struct Feature {
    /// e.g. "b64" for StyleGAN2.
    pub name: String,
    /// [N, C, H, W].
    pub map: Tensor,
}

/// A loaded model: a generator plus where it came from, with every entry
/// point validated and libtorch failures turned into errors.
pub struct Model {
    generator: Box<dyn Generator>,
    fingerprint: String,
    source: String,
    device: Device,
    alignment: Alignment,
    /// For a tuned model (src/tune.rs): the fingerprint of its base.
    tuned_from: Option<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("architecture", &self.info().architecture)
            .field("fingerprint", &self.fingerprint)
            .field("tuned_from", &self.tuned_from)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Where a model's tensors live and how it computes. The caller gives it
/// (a host passes its engine's, `Engine::placement`); models never read a
/// process-wide setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The device every tensor of the model, and of its inputs, lives on.
    pub device: Device,
    /// Run the blocks a StyleGAN2 was trained with in float16 in float16
    /// (CUDA only: the CPU computes them in float32, as `force_fp32`).
    pub half_precision: bool,
}

impl Default for Placement {
    /// The CPU, float32 everywhere.
    fn default() -> Self {
        Placement { device: Device::Cpu, half_precision: false }
    }
}

impl Model {
    /// Loads a model file or folder of any supported kind (see
    /// [`checkpoint`]) onto `placement`. Never executes anything from the
    /// file.
    pub fn load(path: &Path, placement: Placement) -> Result<Model> {
        let file = ModelFile::open(path)?;
        let half = placement.half_precision && placement.device.is_cuda();
        let generator = build_generator(&file, placement.device, half)?;
        let alignment = face_alignment(&file)?;
        Ok(Model {
            generator,
            fingerprint: file.fingerprint,
            source: path.display().to_string(),
            device: placement.device,
            alignment,
            tuned_from: None,
        })
    }

    /// A tuned copy of this (base) model: `generator` was made by
    /// [`Generator::with_params`] of this model's generator; `fingerprint`
    /// identifies the tuned weights, `source` says where they came from.
    pub(crate) fn tuned_copy(&self, generator: Box<dyn Generator>, fingerprint: String, source: String) -> Model {
        Model {
            generator,
            fingerprint,
            source,
            device: self.device,
            alignment: self.alignment,
            tuned_from: Some(self.fingerprint.clone()),
        }
    }

    /// The generator, for tuning.
    pub(crate) fn generator(&self) -> &dyn Generator {
        self.generator.as_ref()
    }

    /// For a tuned model, the fingerprint of the base it was tuned from.
    pub fn tuned_from(&self) -> Option<&str> {
        self.tuned_from.as_deref()
    }

    /// The fingerprint of the latent space: a tuned model shares its base's
    /// mapping network and average W, so latents, directions and presets
    /// made on one mean the same on the other. A base model's own
    /// fingerprint, a tuned model's base's.
    pub fn latent_space(&self) -> &str {
        self.tuned_from.as_deref().unwrap_or(&self.fingerprint)
    }

    /// The default model: the DCGAN face generator from gan-face-generate
    /// 1.1.1, converted by `make setup`.
    pub fn load_default(placement: Placement) -> Result<Model> {
        Model::load_default_from(&default_model_path(), placement)
    }

    /// Loads the default model from `path`, checking its fingerprint.
    pub fn load_default_from(path: &Path, placement: Placement) -> Result<Model> {
        let install = "run `make setup` in the editone source folder, or set EDITONE_DEFAULT_MODEL to the file";
        if !path.is_file() {
            return Err(Error::new(
                ErrorKind::Io,
                format!("the default model is not installed at '{}': {install}", path.display()),
            ));
        }
        let model = Model::load(path, placement).map_err(|e| e.context(format!("default model ({install})")))?;
        if model.fingerprint() != DEFAULT_MODEL_FINGERPRINT {
            return Err(Error::format(format!(
                "the default model '{}' is corrupt (checksum {} instead of {DEFAULT_MODEL_FINGERPRINT}): delete it and {install}",
                path.display(),
                model.fingerprint()
            )));
        }
        Ok(model)
    }

    /// Shape facts.
    pub fn info(&self) -> &ModelInfo {
        self.generator.info()
    }

    /// How the model's training faces were cropped: the config's `align`
    /// ("template", "ffhq" or "none"); without one, the default model's
    /// template for a DCGAN and the FFHQ recipe for a StyleGAN2.
    pub fn face_alignment(&self) -> Alignment {
        self.alignment
    }

    /// The device the model's tensors live on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// A fingerprint of the weights, for presets.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The path the model was loaded from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The average W, [w_dim].
    pub fn w_avg(&self) -> Result<Tensor> {
        guard(|| self.generator.w_avg())
    }

    /// SeFa's A for W+ rows `rows` (all rows when None); see
    /// [`Generator::latent_weights`].
    pub fn latent_weights(&self, rows: Option<std::ops::Range<usize>>) -> Result<Tensor> {
        let num_ws = self.info().num_ws;
        let rows = rows.unwrap_or(0..num_ws);
        if rows.is_empty() || rows.end > num_ws {
            return Err(Error::invalid(format!(
                "layer rows {}..{} are not a non-empty range within 0..{num_ws}",
                rows.start, rows.end
            )));
        }
        guard(|| self.generator.latent_weights(rows))
    }

    /// Maps z [N, z_dim] (any float kind) and optional one-hot labels
    /// [N, c_dim] to W+ [N, num_ws, w_dim].
    pub fn map(&self, z: &Tensor, c: Option<&Tensor>, truncation: Truncation) -> Result<Tensor> {
        let info = self.info();
        let z = self.check_input("z", z, &[info.z_dim as i64])?;
        let n = z.size()[0];
        let c = match (info.c_dim, c) {
            (0, None) => None,
            (0, Some(_)) => return Err(Error::invalid("this model is unconditional; pass no class labels")),
            (_, None) => {
                return Err(Error::invalid(format!("this model is conditional: pass class labels [N, {}]", info.c_dim)))
            }
            (dim, Some(c)) => {
                let c = self.check_input("class labels", c, &[dim as i64])?;
                if c.size()[0] != n {
                    return Err(Error::invalid("z and class labels have different batch sizes"));
                }
                Some(c)
            }
        };
        if !truncation.psi.is_finite() {
            return Err(Error::invalid("truncation psi must be finite"));
        }
        guard(|| self.generator.map(&z, c.as_ref(), truncation))
    }

    /// Synthesises images [N, C, H, W] from W [N, w_dim] or W+ [N, num_ws, w_dim].
    pub fn synthesize(&self, ws: &Tensor, noise: NoiseMode) -> Result<Tensor> {
        let ws = self.to_wplus(ws)?;
        guard(|| self.generator.synthesize(&ws, Noise::Mode(noise), false).0)
    }

    /// Synthesises with explicit noise maps (see [`Noise::Maps`]).
    pub fn synthesize_with_noise_maps(&self, ws: &Tensor, maps: &[Tensor]) -> Result<Tensor> {
        let ws = self.to_wplus(ws)?;
        let expected = self.noise_maps()?;
        if maps.len() != expected.len() || maps.iter().zip(&expected).any(|(a, b)| a.size() != b.size()) {
            return Err(Error::invalid("noise maps do not match the model's noise layers"));
        }
        guard(|| self.generator.synthesize(&ws, Noise::Maps(maps), false).0)
    }

    /// Copies of the model's constant noise maps (empty without noise inputs).
    pub fn noise_maps(&self) -> Result<Vec<Tensor>> {
        guard(|| self.generator.noise_maps())
    }

    /// Like [`Self::synthesize`], also returning each block's feature map.
    pub fn synthesize_with_features(&self, ws: &Tensor, noise: NoiseMode) -> Result<(Tensor, Vec<Feature>)> {
        let ws = self.to_wplus(ws)?;
        guard(|| self.generator.synthesize(&ws, Noise::Mode(noise), true))
    }

    /// The flattened W+ latent of `seed` as the official generate.py makes
    /// it: z from numpy's legacy RandomState, then the mapping network with
    /// truncation `psi`; `class` picks the one-hot label of a conditional model.
    pub fn latent_from_seed(&self, seed: u64, class: Option<usize>, psi: f32) -> Result<Vec<f32>> {
        let info = self.info();
        let z = crate::seed::z_from_seed(seed, info.z_dim)?;
        let z = Tensor::from_slice(&z).reshape([1, info.z_dim as i64]);
        let c = match (class, info.c_dim) {
            (None, 0) => None,
            (Some(k), dim) if k < dim => Some(Tensor::zeros([1, dim as i64], tch::kind::FLOAT_CPU).index_fill(
                1,
                &Tensor::from_slice(&[k as i64]),
                1.0,
            )),
            (Some(k), 0) => return Err(Error::invalid(format!("class {k} given, but this model is unconditional"))),
            (Some(k), dim) => return Err(Error::invalid(format!("class {k} is out of range: the model has {dim} classes"))),
            (None, dim) => {
                return Err(Error::invalid(format!("this model is conditional ({dim} classes): give a class index")))
            }
        };
        let ws = tch::no_grad(|| self.map(&z, c.as_ref(), Truncation { psi: psi as f64, cutoff: None }))?;
        Ok(Vec::<f32>::try_from(ws.flatten(0, -1).to_device(tch::Device::Cpu))?)
    }

    /// Renders flattened W+ latents (each num_ws * w_dim floats) without
    /// autograd, noise 'const': [N, C, H, W] on the CPU.
    pub fn render(&self, latents: &[&[f32]]) -> Result<Tensor> {
        Ok(self.render_on_device(latents)?.to_device(tch::Device::Cpu))
    }

    /// [`Model::render`], left on the engine's device, so that a batch can
    /// be turned into pixels there and only bytes cross to the host.
    pub fn render_on_device(&self, latents: &[&[f32]]) -> Result<Tensor> {
        let ws = self.stack_latents(latents)?;
        tch::no_grad(|| self.synthesize(&ws, NoiseMode::Const))
    }

    /// Flattened W+ latents as one batch [N, num_ws, w_dim] on the CPU,
    /// each checked for its length ([`Model::synthesize`] and
    /// [`Model::to_wplus`] check the values and move it to the device).
    pub fn stack_latents(&self, latents: &[&[f32]]) -> Result<Tensor> {
        let info = self.info();
        let row = info.num_ws * info.w_dim;
        if latents.is_empty() {
            return Err(Error::invalid("no latents given: give one or more"));
        }
        if let Some(w) = latents.iter().find(|w| w.len() != row) {
            return Err(Error::invalid(format!(
                "a latent has {} floats; this model's have {row} (num_ws {} x w_dim {})",
                w.len(),
                info.num_ws,
                info.w_dim
            )));
        }
        let flat: Vec<f32> = latents.concat();
        Ok(Tensor::from_slice(&flat).reshape([latents.len() as i64, info.num_ws as i64, info.w_dim as i64]))
    }

    /// Broadcasts W [N, w_dim] to W+ and checks the shape of a W+ input.
    pub fn to_wplus(&self, ws: &Tensor) -> Result<Tensor> {
        let info = self.info();
        let (num_ws, w_dim) = (info.num_ws as i64, info.w_dim as i64);
        let size = ws.size();
        let ws = match size.as_slice() {
            // Materialised: a W then takes exactly the path of its repeated
            // W+ (on the CPU they render bit for bit alike; CUDA differs by
            // its run-to-run noise either way, see tests/stylegan2_parity.rs).
            [_, d] if *d == w_dim => ws.f_unsqueeze(1)?.f_expand([-1, num_ws, -1], false)?.f_contiguous()?,
            [_, r, d] if *r == num_ws && *d == w_dim => ws.shallow_clone(),
            _ => {
                return Err(Error::invalid(format!(
                    "latent has shape {}, expected [N, {w_dim}] or [N, {num_ws}, {w_dim}]",
                    weights::fmt_shape(&size)
                )))
            }
        };
        self.check_values("latent", &ws)?;
        Ok(ws.f_to_kind(Kind::Float)?.f_to_device(self.device)?)
    }

    fn check_input(&self, what: &str, t: &Tensor, row: &[i64]) -> Result<Tensor> {
        let size = t.size();
        if size.len() != 2 || size[1..] != *row || size[0] < 1 {
            return Err(Error::invalid(format!(
                "{what} has shape {}, expected [N, {}]",
                weights::fmt_shape(&size),
                row[0]
            )));
        }
        self.check_values(what, t)?;
        Ok(t.f_to_kind(Kind::Float)?.f_to_device(self.device)?)
    }

    fn check_values(&self, what: &str, t: &Tensor) -> Result<()> {
        weights::ensure_finite(t).map_err(|_| Error::invalid(format!("{what} contains NaN or Inf")))
    }
}

/// A 2-D convolution (`transposed`: a transposed one) with stride,
/// padding, groups, unit dilation and no output padding. On CUDA it
/// computes in float32 or TF32 as `Engine::tf32` says, in the forward and
/// the backward pass alike (both read libtorch's global switch).
pub(crate) fn convolution(x: &Tensor, w: &Tensor, stride: i64, padding: [i64; 2], transposed: bool, groups: i64) -> Tensor {
    let no_bias: Option<Tensor> = None;
    x.convolution(w, no_bias, [stride, stride], padding, [1, 1], transposed, [0, 0], groups)
}

/// Runs tensor code that may panic (tch's infallible wrappers) and turns a
/// panic into an error, keeping out-of-memory distinguishable.
pub fn guard<T>(f: impl FnOnce() -> T) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|payload| Error::from_torch("tensor computation failed", &crate::error::panic_message(&*payload)))
}

/// Builds the generator a model file describes on `device`; `half` runs
/// the blocks a StyleGAN2 trained in float16 in float16 (CUDA only).
pub fn build_generator(file: &ModelFile, device: tch::Device, half: bool) -> Result<Box<dyn Generator>> {
    let weights = file.weights(device)?;
    Ok(match file.architecture() {
        "stylegan2" => Box::new(stylegan2::StyleGan2::load(&file.config, &file.label, weights, half)?),
        "dcgan" => Box::new(dcgan::Dcgan::load(&file.config, &file.label, weights)?),
        other => {
            return Err(Error::format(format!(
                "{}: unknown architecture '{other}' (supported: stylegan2, dcgan)",
                file.label
            )))
        }
    })
}

/// See [`Model::face_alignment`]; an unknown `align` is refused at load.
fn face_alignment(file: &ModelFile) -> Result<Alignment> {
    match file.config.get("align") {
        Some(name) => {
            let name = name.as_str().ok_or_else(|| Error::format(format!("{}: config 'align' is not a string", file.label)))?;
            Alignment::from_name(name).map_err(|e| Error::format(format!("{}: config {e}", file.label)))
        }
        None if file.architecture() == "dcgan" => Ok(Alignment::Template),
        None => Ok(Alignment::Ffhq),
    }
}

/// Converts any supported model file to the native format at `out`,
/// checking first that it builds (on the CPU). `align` records how the
/// model's training faces were cropped (see [`Model::face_alignment`]).
pub fn convert(input: &Path, out: &Path, existing: crate::files::Existing, align: Option<Alignment>) -> Result<ModelInfo> {
    let mut file = ModelFile::open(input)?;
    let generator = build_generator(&file, tch::Device::Cpu, false)?;
    if let (Some(align), Some(config)) = (align, file.config.as_object_mut()) {
        config.insert("align".to_string(), Json::String(align.name().to_string()));
    }
    face_alignment(&file)?;
    file.write_native(out, existing)?;
    Ok(generator.info().clone())
}
