//! Native StyleGAN2 (NVlabs stylegan2-ada-pytorch `training/networks.py`,
//! architecture 'skip', float32), written op for op as the official
//! reference path computes it (spec/stylegan2.md section 1) so that outputs
//! agree to float rounding.

use super::weights::{WeightFile, Weights};
use super::{Feature, Generator, ModelInfo, Noise, NoiseMode, Truncation};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::Path;
use tch::{Device, Kind, Tensor};

const SQRT_2: f64 = std::f64::consts::SQRT_2;
const LRELU_ALPHA: f64 = 0.2;

/// The Generator constructor arguments, as in the official `config.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    /// Input noise size.
    pub z_dim: usize,
    /// Class label size (0 when unconditional).
    #[serde(default)]
    pub c_dim: usize,
    /// Latent row size.
    pub w_dim: usize,
    /// Output resolution, a power of two.
    pub img_resolution: usize,
    /// Output channels.
    pub img_channels: usize,
    /// Mapping network options.
    #[serde(default)]
    pub mapping_kwargs: MappingConfig,
    /// Synthesis network options.
    #[serde(default)]
    pub synthesis_kwargs: SynthesisConfig,
    /// W+ rows, if the file states it; checked against the architecture.
    pub num_ws: Option<usize>,
}

/// `mapping_kwargs`, with the official defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct MappingConfig {
    /// Fully connected layers.
    pub num_layers: usize,
    /// Label embedding width (default w_dim).
    pub embed_features: Option<usize>,
    /// Hidden layer width (default w_dim).
    pub layer_features: Option<usize>,
    /// Learning-rate multiplier of the mapping layers (also a runtime gain).
    pub lr_multiplier: f64,
}

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig { num_layers: 8, embed_features: None, layer_features: None, lr_multiplier: 0.01 }
    }
}

/// `synthesis_kwargs`, with the official defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SynthesisConfig {
    /// Channel budget: channels(R) = min(channel_base / R, channel_max).
    pub channel_base: usize,
    /// Channel cap.
    pub channel_max: usize,
    /// Blocks trained in fp16; editone always computes in float32, as the
    /// official `force_fp32=True`.
    pub num_fp16_res: usize,
    /// Activation clamp, or none.
    pub conv_clamp: Option<f64>,
    /// 'skip' is supported.
    pub architecture: String,
    /// 1-D FIR taps for resampling.
    pub resample_filter: Vec<f64>,
}

impl Default for SynthesisConfig {
    fn default() -> Self {
        SynthesisConfig {
            channel_base: 32768,
            channel_max: 512,
            num_fp16_res: 0,
            conv_clamp: None,
            architecture: "skip".into(),
            resample_filter: vec![1.0, 3.0, 3.0, 1.0],
        }
    }
}

impl Config {
    fn validate(&self) -> Result<()> {
        let res = self.img_resolution;
        let bad = |what: String| Err(Error::format(format!("StyleGAN2 config: {what}")));
        if !(4..=4096).contains(&res) || !res.is_power_of_two() {
            return bad(format!("img_resolution {res} must be a power of two in 4..=4096"));
        }
        for (name, v, max) in [("z_dim", self.z_dim, 1 << 16), ("w_dim", self.w_dim, 1 << 16), ("c_dim", self.c_dim, 1 << 16)] {
            if v > max || (v == 0 && name != "c_dim") {
                return bad(format!("{name} {v} is out of range"));
            }
        }
        if !(1..=4).contains(&self.img_channels) {
            return bad(format!("img_channels {} must be 1..=4", self.img_channels));
        }
        if !(1..=64).contains(&self.mapping_kwargs.num_layers) {
            return bad(format!("mapping_kwargs.num_layers {} must be 1..=64", self.mapping_kwargs.num_layers));
        }
        let syn = &self.synthesis_kwargs;
        if syn.architecture != "skip" {
            return bad(format!(
                "synthesis architecture '{}' is not supported yet (supported: 'skip')",
                syn.architecture
            ));
        }
        if syn.channel_base == 0 || syn.channel_max == 0 {
            return bad("channel_base and channel_max must be positive".into());
        }
        if syn.resample_filter.len() != 4 {
            return bad("resample_filter must have 4 taps".into());
        }
        if let Some(n) = self.num_ws {
            if n != self.architecture_num_ws() {
                return bad(format!("num_ws {n} does not fit img_resolution {res} (expected {})", self.architecture_num_ws()));
            }
        }
        Ok(())
    }

    fn block_resolutions(&self) -> Vec<usize> {
        (2..=self.img_resolution.trailing_zeros()).map(|l| 1usize << l).collect()
    }

    fn channels(&self, res: usize) -> usize {
        (self.synthesis_kwargs.channel_base / res).min(self.synthesis_kwargs.channel_max).max(1)
    }

    fn architecture_num_ws(&self) -> usize {
        2 * self.img_resolution.trailing_zeros() as usize - 2
    }
}

/// A fully connected layer with its runtime gains already applied to the
/// stored parameters (the same float multiplies the official forward does).
struct Dense {
    weight: Tensor,
    bias: Tensor,
    lrelu: bool,
}

impl Dense {
    fn load(w: &mut Weights, name: &str, inputs: usize, outputs: usize, lr_multiplier: f64, lrelu: bool) -> Result<Dense> {
        let weight = w.take(&format!("{name}.weight"), &[outputs as i64, inputs as i64])?;
        let bias = w.take(&format!("{name}.bias"), &[outputs as i64])?;
        let weight = weight * (lr_multiplier / (inputs as f64).sqrt());
        let bias = if lr_multiplier != 1.0 { bias * lr_multiplier } else { bias };
        Ok(Dense { weight, bias, lrelu })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        if self.lrelu {
            bias_act(&x.matmul(&self.weight.tr()), &self.bias, true, SQRT_2, None)
        } else {
            // 'linear' with a bias is one GEMM that adds the bias inside it.
            self.bias.unsqueeze(0).addmm(x, &self.weight.tr())
        }
    }
}

/// `bias_act` reference path: add bias along dim 1, optional lrelu(0.2),
/// gain, clamp.
fn bias_act(x: &Tensor, bias: &Tensor, lrelu: bool, gain: f64, clamp: Option<f64>) -> Tensor {
    let mut shape = vec![1i64; x.dim()];
    shape[1] = -1;
    let mut y = x + bias.reshape(&shape);
    if lrelu {
        // tch's leaky_relu has no slope argument; ATen computes x > 0 ? x : x * a.
        y = y.where_self(&y.gt(0.0), &(&y * LRELU_ALPHA));
    }
    if gain != 1.0 {
        y = y * gain;
    }
    match clamp {
        Some(c) => y.clamp(-c, c),
        None => y,
    }
}

/// `upfirdn2d` reference path: zero-insert upsampling, padding, FIR filter
/// (a depthwise true convolution), no downsampling.
fn upfirdn2d(x: &Tensor, filter: &Tensor, up: i64, pad: [i64; 4], gain: f64) -> Tensor {
    let (n, c, h, w) = x.size4().expect("upfirdn2d input is 4-D");
    let mut x = x.reshape([n, c, h, 1, w, 1]);
    x = x.constant_pad_nd([0, up - 1, 0, 0, 0, up - 1]);
    x = x.reshape([n, c, h * up, w * up]);
    let [px0, px1, py0, py1] = pad;
    x = x.constant_pad_nd([px0.max(0), px1.max(0), py0.max(0), py1.max(0)]);
    let (hp, wp) = (x.size()[2], x.size()[3]);
    x = x.narrow(2, (-py0).max(0), hp - (-py0).max(0) - (-py1).max(0));
    x = x.narrow(3, (-px0).max(0), wp - (-px0).max(0) - (-px1).max(0));
    let f = (filter * gain).flip([0, 1]);
    let f = f.unsqueeze(0).unsqueeze(0).repeat([c, 1, 1, 1]);
    x.conv2d(&f, None::<Tensor>, [1, 1], [0, 0], [1, 1], c)
}

/// 2x upsampling of the RGB skip path.
fn upsample2d(x: &Tensor, filter: &Tensor) -> Tensor {
    upfirdn2d(x, filter, 2, [2, 1, 2, 1], 4.0)
}

/// `modulated_conv2d`, fused path (one grouped convolution per batch), as
/// the official code runs it in float32 inference. 3x3 convs use padding 1,
/// 1x1 (ToRGB) padding 0; `up` = 2 is a transposed conv plus FIR.
fn modulated_conv2d(x: &Tensor, weight: &Tensor, styles: &Tensor, demodulate: bool, up: bool, filter: &Tensor) -> Tensor {
    let n = x.size()[0];
    let (o, i, kh, kw) = weight.size4().expect("conv weight is 4-D");
    let mut w = weight.unsqueeze(0) * styles.reshape([n, 1, -1, 1, 1]);
    if demodulate {
        let dcoefs = (w.square().sum_dim_intlist([2i64, 3, 4].as_slice(), false, None::<Kind>) + 1e-8).rsqrt();
        w = w * dcoefs.reshape([n, -1, 1, 1, 1]);
    }
    let (h, wd) = (x.size()[2], x.size()[3]);
    let x = x.reshape([1, n * i, h, wd]);
    let w = w.reshape([n * o, i, kh, kw]);
    let y = if up {
        // conv2d_resample, up=2: padding bookkeeping gives transpose padding
        // 0 and FIR padding 1 on every side; the weight is not flipped.
        let wt = if n == 1 {
            w.transpose(0, 1)
        } else {
            w.reshape([n, o, i, kh, kw]).transpose(1, 2).reshape([n * i, o, kh, kw])
        };
        let y = x.conv_transpose2d(&wt, None::<Tensor>, [2, 2], [0, 0], [0, 0], n, [1, 1]);
        upfirdn2d(&y, filter, 1, [1, 1, 1, 1], 4.0)
    } else {
        let pad = (kh - 1) / 2;
        x.conv2d(&w, None::<Tensor>, [1, 1], [pad, pad], [1, 1], n)
    };
    let (ho, wo) = (y.size()[2], y.size()[3]);
    y.reshape([n, o, ho, wo])
}

/// One modulated 3x3 convolution with noise and activation.
struct SynthesisLayer {
    affine: Dense,
    weight: Tensor,
    bias: Tensor,
    noise_strength: Tensor,
    noise_const: Tensor,
    filter: Tensor,
    up: bool,
    resolution: i64,
    clamp: Option<f64>,
}

impl SynthesisLayer {
    fn load(w: &mut Weights, name: &str, cfg: &Config, cin: usize, cout: usize, res: usize, up: bool) -> Result<Self> {
        let affine = Dense::load(w, &format!("{name}.affine"), cfg.w_dim, cin, 1.0, false)?;
        let weight = w.take(&format!("{name}.weight"), &[cout as i64, cin as i64, 3, 3])?;
        let bias = w.take(&format!("{name}.bias"), &[cout as i64])?;
        let noise_strength = w.take(&format!("{name}.noise_strength"), &[])?;
        let noise_const = w.take(&format!("{name}.noise_const"), &[res as i64, res as i64])?;
        let filter = load_filter(w, &format!("{name}.resample_filter"), cfg)?;
        let clamp = cfg.synthesis_kwargs.conv_clamp;
        Ok(SynthesisLayer { affine, weight, bias, noise_strength, noise_const, filter, up, resolution: res as i64, clamp })
    }

    /// `map` replaces the stored constant noise map (the projector's).
    fn forward(&self, x: &Tensor, w: &Tensor, noise: NoiseMode, map: Option<&Tensor>) -> Tensor {
        let styles = self.affine.forward(w);
        let mut x = modulated_conv2d(x, &self.weight, &styles, true, self.up, &self.filter);
        match noise {
            NoiseMode::Const => x = x + map.unwrap_or(&self.noise_const) * &self.noise_strength,
            NoiseMode::Random => {
                let r = self.resolution;
                let n = Tensor::randn([x.size()[0], 1, r, r], (Kind::Float, x.device()));
                x = x + n * &self.noise_strength;
            }
            NoiseMode::None => {}
        }
        bias_act(&x, &self.bias, true, SQRT_2, self.clamp)
    }
}

/// The 1x1 modulated convolution to RGB, without demodulation.
struct ToRgb {
    affine: Dense,
    weight: Tensor,
    bias: Tensor,
    weight_gain: f64,
    clamp: Option<f64>,
}

impl ToRgb {
    fn load(w: &mut Weights, name: &str, cfg: &Config, cin: usize) -> Result<Self> {
        let affine = Dense::load(w, &format!("{name}.affine"), cfg.w_dim, cin, 1.0, false)?;
        let weight = w.take(&format!("{name}.weight"), &[cfg.img_channels as i64, cin as i64, 1, 1])?;
        let bias = w.take(&format!("{name}.bias"), &[cfg.img_channels as i64])?;
        let weight_gain = 1.0 / (cin as f64).sqrt();
        Ok(ToRgb { affine, weight, bias, weight_gain, clamp: cfg.synthesis_kwargs.conv_clamp })
    }

    fn forward(&self, x: &Tensor, w: &Tensor, filter: &Tensor) -> Tensor {
        let styles = self.affine.forward(w) * self.weight_gain;
        let y = modulated_conv2d(x, &self.weight, &styles, false, false, filter);
        bias_act(&y, &self.bias, false, 1.0, self.clamp)
    }
}

/// One resolution: const (b4) or upsampling conv0, conv1, ToRGB.
struct Block {
    resolution: usize,
    constant: Option<Tensor>,
    conv0: Option<SynthesisLayer>,
    conv1: SynthesisLayer,
    torgb: ToRgb,
    filter: Tensor,
}

impl Block {
    fn num_conv(&self) -> i64 {
        if self.conv0.is_some() { 2 } else { 1 }
    }

    /// The block's noise layers in order: conv0 (if any), conv1.
    fn layers(&self) -> impl Iterator<Item = &SynthesisLayer> {
        self.conv0.iter().chain(std::iter::once(&self.conv1))
    }

    /// ws holds this block's rows: its convs' and its ToRGB's; `maps`, when
    /// given, one noise map per conv.
    fn forward(
        &self,
        x: Option<&Tensor>,
        img: Option<&Tensor>,
        ws: &Tensor,
        noise: NoiseMode,
        maps: Option<&[Tensor]>,
    ) -> (Tensor, Tensor) {
        let rows = ws.unbind(1);
        let n = ws.size()[0];
        let mut x = match (&self.constant, x) {
            (Some(c), _) => c.unsqueeze(0).repeat([n, 1, 1, 1]),
            (None, Some(x)) => x.shallow_clone(),
            (None, None) => unreachable!("only b4 starts without input"),
        };
        let mut row = 0;
        if let Some(conv0) = &self.conv0 {
            x = conv0.forward(&x, &rows[row], noise, maps.map(|m| &m[0]));
            row += 1;
        }
        x = self.conv1.forward(&x, &rows[row], noise, maps.map(|m| &m[row]));
        row += 1;
        let y = self.torgb.forward(&x, &rows[row], &self.filter);
        let img = match img {
            Some(img) => upsample2d(img, &self.filter) + y,
            None => y,
        };
        (x, img)
    }
}

/// A StyleGAN2 generator with its weights on the engine's device.
pub struct StyleGan2 {
    info: ModelInfo,
    mapping: Vec<Dense>,
    embed: Option<Dense>,
    w_avg: Tensor,
    blocks: Vec<Block>,
}

// SAFETY: the tensors are created at load time and only read afterwards;
// libtorch allows concurrent reads of a tensor from several threads.
unsafe impl Sync for StyleGan2 {}

fn load_filter(w: &mut Weights, name: &str, cfg: &Config) -> Result<Tensor> {
    let taps = Tensor::from_slice(&cfg.synthesis_kwargs.resample_filter).to_kind(Kind::Float);
    let default = taps.outer(&taps);
    let default = &default / default.sum(Kind::Float);
    Ok(w.take_optional(name, &[4, 4])?.unwrap_or(default).to_device(w.device()))
}

impl StyleGan2 {
    /// Builds the generator from a parsed config and its weight file.
    pub fn load(config: &serde_json::Value, config_path: &Path, file: &WeightFile, device: Device) -> Result<StyleGan2> {
        let cfg: Config = serde_json::from_value(config.clone())
            .map_err(|e| Error::format(format!("model config '{}': {e}", config_path.display())))?;
        cfg.validate().map_err(|e| e.context(format!("model config '{}'", config_path.display())))?;
        let mut w = file.parse(device)?;
        let blocks = cfg
            .block_resolutions()
            .into_iter()
            .map(|res| StyleGan2::load_block(&mut w, &cfg, res))
            .collect::<Result<Vec<_>>>()?;
        let (mapping, embed, w_avg) = StyleGan2::load_mapping(&mut w, &cfg)?;
        w.finish()?;
        let info = ModelInfo {
            architecture: "stylegan2".into(),
            resolution: cfg.img_resolution,
            channels: cfg.img_channels,
            z_dim: cfg.z_dim,
            c_dim: cfg.c_dim,
            w_dim: cfg.w_dim,
            num_ws: cfg.architecture_num_ws(),
        };
        Ok(StyleGan2 { info, mapping, embed, w_avg, blocks })
    }

    fn load_block(w: &mut Weights, cfg: &Config, res: usize) -> Result<Block> {
        let name = format!("synthesis.b{res}");
        let cout = cfg.channels(res);
        let (constant, conv0, cin) = if res == 4 {
            let c = w.take(&format!("{name}.const"), &[cout as i64, 4, 4])?;
            (Some(c), None, cout)
        } else {
            let cin = cfg.channels(res / 2);
            let conv0 = SynthesisLayer::load(w, &format!("{name}.conv0"), cfg, cin, cout, res, true)?;
            (None, Some(conv0), cout)
        };
        let conv1 = SynthesisLayer::load(w, &format!("{name}.conv1"), cfg, cin, cout, res, false)?;
        let torgb = ToRgb::load(w, &format!("{name}.torgb"), cfg, cout)?;
        let filter = load_filter(w, &format!("{name}.resample_filter"), cfg)?;
        Ok(Block { resolution: res, constant, conv0, conv1, torgb, filter })
    }

    fn load_mapping(w: &mut Weights, cfg: &Config) -> Result<(Vec<Dense>, Option<Dense>, Tensor)> {
        let m = &cfg.mapping_kwargs;
        let embed_features = if cfg.c_dim > 0 { m.embed_features.unwrap_or(cfg.w_dim) } else { 0 };
        let embed = if cfg.c_dim > 0 {
            Some(Dense::load(w, "mapping.embed", cfg.c_dim, embed_features, 1.0, false)?)
        } else {
            None
        };
        let hidden = m.layer_features.unwrap_or(cfg.w_dim);
        let mut widths = vec![cfg.z_dim + embed_features];
        widths.extend(std::iter::repeat_n(hidden, m.num_layers - 1));
        widths.push(cfg.w_dim);
        let layers = (0..m.num_layers)
            .map(|i| Dense::load(w, &format!("mapping.fc{i}"), widths[i], widths[i + 1], m.lr_multiplier, true))
            .collect::<Result<Vec<_>>>()?;
        let w_avg = w.take("mapping.w_avg", &[cfg.w_dim as i64])?;
        Ok((layers, embed, w_avg))
    }
}

/// `normalize_2nd_moment`: x / sqrt(mean(x^2) + 1e-8) along dim 1.
fn normalize_2nd_moment(x: &Tensor) -> Tensor {
    x * (x.square().mean_dim([1i64].as_slice(), true, None::<Kind>) + 1e-8).rsqrt()
}

impl Generator for StyleGan2 {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn map(&self, z: &Tensor, c: Option<&Tensor>, truncation: Truncation) -> Tensor {
        let mut x = normalize_2nd_moment(z);
        if let (Some(embed), Some(c)) = (&self.embed, c) {
            let y = normalize_2nd_moment(&embed.forward(c));
            x = Tensor::cat(&[x, y], 1);
        }
        for layer in &self.mapping {
            x = layer.forward(&x);
        }
        let num_ws = self.info.num_ws as i64;
        let x = x.unsqueeze(1).repeat([1, num_ws, 1]);
        if truncation.psi == 1.0 {
            return x;
        }
        match truncation.cutoff.map(|c| (c as i64).min(num_ws)) {
            None => self.w_avg.lerp(&x, truncation.psi),
            Some(cut) => {
                let head = self.w_avg.lerp(&x.narrow(1, 0, cut), truncation.psi);
                Tensor::cat(&[head, x.narrow(1, cut, num_ws - cut)], 1)
            }
        }
    }

    fn synthesize(&self, ws: &Tensor, noise: Noise<'_>, features: bool) -> (Tensor, Vec<Feature>) {
        let ws = ws.to_kind(Kind::Float);
        let (mode, mut maps) = match noise {
            Noise::Mode(mode) => (mode, None),
            Noise::Maps(maps) => (NoiseMode::Const, Some(maps)),
        };
        let mut feats = Vec::new();
        let (mut x, mut img): (Option<Tensor>, Option<Tensor>) = (None, None);
        let mut w_idx = 0;
        for block in &self.blocks {
            // Each block's ToRGB shares its row with the next block's conv0.
            let block_ws = ws.narrow(1, w_idx, block.num_conv() + 1);
            w_idx += block.num_conv();
            let layers = block.num_conv() as usize;
            let block_maps = maps.map(|m| &m[..layers]);
            maps = maps.map(|m| &m[layers..]);
            let (nx, nimg) = block.forward(x.as_ref(), img.as_ref(), &block_ws, mode, block_maps);
            if features {
                feats.push(Feature { name: format!("b{}", block.resolution), map: nx.shallow_clone() });
            }
            x = Some(nx);
            img = Some(nimg);
        }
        (img.expect("at least one block"), feats)
    }

    fn w_avg(&self) -> Tensor {
        self.w_avg.shallow_clone()
    }

    fn noise_maps(&self) -> Vec<Tensor> {
        self.blocks.iter().flat_map(|b| b.layers()).map(|l| l.noise_const.copy()).collect()
    }

    /// The style affines [C_in, w_dim] of the layers that consume W+ rows
    /// `rows`: the first conv fed by each row (b4.conv1 for row 0, then
    /// conv0/conv1 in turn), and the last ToRGB for the last row.
    fn latent_weights(&self, rows: std::ops::Range<usize>) -> Tensor {
        let mut per_row: Vec<&Tensor> = Vec::new();
        for block in &self.blocks {
            if let Some(conv0) = &block.conv0 {
                per_row.push(&conv0.affine.weight);
            }
            per_row.push(&block.conv1.affine.weight);
        }
        per_row.push(&self.blocks.last().expect("at least one block").torgb.affine.weight);
        Tensor::cat(&per_row[rows], 0)
    }
}
