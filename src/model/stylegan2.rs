//! Native StyleGAN2 (NVlabs stylegan2-ada-pytorch `training/networks.py`,
//! architecture 'skip', float32), written op for op as the official
//! reference path computes it (docs/stylegan2.md section 1) so that outputs
//! agree to float rounding.

use super::weights::Weights;
use super::winograd;
use super::{convolution, Feature, Generator, ModelInfo, Noise, NoiseMode, Truncation, Tunable};
use std::collections::HashMap;
use crate::error::{Error, Result};
use once_cell::sync::OnceCell;
use serde::Deserialize;
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
    /// Whose rounding to reproduce.
    #[serde(default)]
    pub numerics: Numerics,
    /// The file stores no `mapping.w_avg` (a rosinality training
    /// checkpoint): estimate it as the projector does.
    #[serde(default)]
    pub estimate_w_avg: bool,
}

/// The two published StyleGAN2 implementations compute the same function
/// with different rounding (docs/stylegan2.md section 4.3); a model
/// reproduces the code it was trained with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Numerics {
    /// NVlabs stylegan2-ada-pytorch (the default).
    #[default]
    Nvlabs,
    /// rosinality/stylegan2-pytorch: conv weights scaled before modulation,
    /// ToRGB weights instead of styles scaled, no clamp, truncation as
    /// `avg + psi * (w - avg)`, FIR filtering one channel at a time.
    Rosinality,
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
    /// Blocks trained in fp16: computed in float32 (the official
    /// `force_fp32=True`) unless the engine asks for half precision on CUDA.
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

    /// The activation clamp; rosinality's code has none.
    fn clamp(&self) -> Option<f64> {
        match self.numerics {
            Numerics::Nvlabs => self.synthesis_kwargs.conv_clamp,
            Numerics::Rosinality => None,
        }
    }

    /// Whether block `res` was trained in float16 (the official rule).
    fn is_fp16_block(&self, res: usize) -> bool {
        let log2 = self.img_resolution.trailing_zeros() as usize;
        let n = self.synthesis_kwargs.num_fp16_res;
        n > 0 && res >= (1usize << (log2 + 1).saturating_sub(n).min(62)).max(8)
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
    fn load(w: &mut Weights, name: &str, shape: (usize, usize), lr_multiplier: f64, lrelu: bool, numerics: Numerics) -> Result<Dense> {
        let (inputs, outputs) = shape;
        let weight = w.take(&format!("{name}.weight"), &[outputs as i64, inputs as i64])?;
        let bias = w.take(&format!("{name}.bias"), &[outputs as i64])?;
        // The same gain, rounded as each implementation computes it.
        let gain = match numerics {
            Numerics::Nvlabs => lr_multiplier / (inputs as f64).sqrt(),
            Numerics::Rosinality => (1.0 / (inputs as f64).sqrt()) * lr_multiplier,
        };
        let weight = weight * gain;
        let bias = if lr_multiplier != 1.0 { bias * lr_multiplier } else { bias };
        Ok(Dense { weight, bias, lrelu })
    }

    /// A copy sharing its tensors.
    fn share(&self) -> Dense {
        Dense { weight: self.weight.shallow_clone(), bias: self.bias.shallow_clone(), lrelu: self.lrelu }
    }

    /// A style affine's weight and bias, for tuning; the weight carries the
    /// gain [`Dense::load`] applied (learning-rate multiplier 1):
    /// 1/sqrt(inputs) in both numerics.
    fn visit_tunable(&mut self, name: &str, f: &mut dyn FnMut(String, &mut Tensor, f64)) {
        let gain = 1.0 / (self.weight.size()[1] as f64).sqrt();
        f(format!("{name}.weight"), &mut self.weight, gain);
        f(format!("{name}.bias"), &mut self.bias, 1.0);
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        if self.lrelu {
            bias_act(x.matmul(&self.weight.tr()), &self.bias, true, SQRT_2, None)
        } else {
            // 'linear' with a bias is one GEMM that adds the bias inside it.
            self.bias.unsqueeze(0).addmm(x, &self.weight.tr())
        }
    }
}

/// `bias_act` reference path: add bias along dim 1, optional lrelu(0.2),
/// gain, clamp. Takes `x` by value, a fresh result that no one else reads:
/// when nothing needs its gradient (a render) every step runs in place in
/// it, the same arithmetic without a new activation-sized buffer per step.
fn bias_act(x: Tensor, bias: &Tensor, lrelu: bool, gain: f64, clamp: Option<f64>) -> Tensor {
    let mut shape = vec![1i64; x.dim()];
    shape[1] = -1;
    let bias = bias.reshape(&shape);
    let mut y = if x.requires_grad() {
        x + bias
    } else {
        let mut x = x;
        let _ = x.g_add_(&bias);
        x
    };
    if lrelu {
        y = leaky_relu(y);
    }
    if gain != 1.0 {
        y = if y.requires_grad() {
            y * gain
        } else {
            let _ = y.g_mul_scalar_(gain);
            y
        };
    }
    match clamp {
        Some(c) => clamp_to(y, c),
        None => y,
    }
}

/// leaky ReLU with slope 0.2, in place when nothing needs the gradient.
fn leaky_relu(y: Tensor) -> Tensor {
    if y.requires_grad() {
        // tch's leaky_relu has no slope argument. leaky_relu_backward(y, y, a)
        // is y > 0 ? y : y * a, exactly ATen's leaky_relu, in one pass. The
        // gradient flows through the first argument with the right slope;
        // the mask argument is detached so autograd does not also build a
        // zero gradient for it.
        y.detach().leaky_relu_backward(&y, LRELU_ALPHA, false)
    } else {
        let _ = y.leaky_relu_backward_grad_input(&y, &y, LRELU_ALPHA, false);
        y
    }
}

/// Clamps to [-c, c], in place when nothing needs the gradient.
fn clamp_to(y: Tensor, c: f64) -> Tensor {
    if y.requires_grad() {
        y.clamp(-c, c)
    } else {
        let mut y = y;
        let _ = y.clamp_(-c, c);
        y
    }
}

/// `upfirdn2d` reference path: zero-insert upsampling, padding, FIR filter
/// (a depthwise true convolution), no downsampling.
fn upfirdn2d(x: &Tensor, filter: &Tensor, up: i64, pad: [i64; 4], gain: f64, numerics: Numerics) -> Tensor {
    let (n, c, h, w) = x.size4().expect("upfirdn2d input is 4-D");
    let [px0, px1, py0, py1] = pad;
    if up == 1 && numerics == Numerics::Nvlabs && px0 == px1 && py0 == py1 && px0 >= 0 && py0 >= 0 {
        // The convolution pads with the same zeros itself, without an
        // activation-sized padded copy.
        let f = (filter * gain).flip([0, 1]).unsqueeze(0).unsqueeze(0);
        return convolution(x, &f.repeat([c, 1, 1, 1]), 1, [py0, px0], false, c);
    }
    let mut x = x.reshape([n, c, h, 1, w, 1]);
    x = x.constant_pad_nd([0, up - 1, 0, 0, 0, up - 1]);
    x = x.reshape([n, c, h * up, w * up]);
    x = x.constant_pad_nd([px0.max(0), px1.max(0), py0.max(0), py1.max(0)]);
    let (hp, wp) = (x.size()[2], x.size()[3]);
    x = x.narrow(2, (-py0).max(0), hp - (-py0).max(0) - (-py1).max(0));
    x = x.narrow(3, (-px0).max(0), wp - (-px0).max(0) - (-px1).max(0));
    let f = (filter * gain).flip([0, 1]).unsqueeze(0).unsqueeze(0);
    match numerics {
        Numerics::Nvlabs => convolution(&x, &f.repeat([c, 1, 1, 1]), 1, [0, 0], false, c),
        Numerics::Rosinality => {
            // upfirdn2d_native: every channel as its own single-channel image.
            let (h, w) = (x.size()[2], x.size()[3]);
            let y = convolution(&x.reshape([n * c, 1, h, w]), &f, 1, [0, 0], false, 1);
            let (ho, wo) = (y.size()[2], y.size()[3]);
            y.reshape([n, c, ho, wo])
        }
    }
}

/// 2x upsampling of the RGB skip path.
fn upsample2d(x: &Tensor, filter: &Tensor, numerics: Numerics) -> Tensor {
    upfirdn2d(x, filter, 2, [2, 1, 2, 1], 4.0, numerics)
}

/// The modulated weights [N, O, I, kh, kw] of `modulated_conv2d`, and the
/// demodulation coefficients [N, O] when asked for.
fn modulate(weight: &Tensor, styles: &Tensor, demodulate: bool) -> (Tensor, Option<Tensor>) {
    let n = styles.size()[0];
    let w = weight.unsqueeze(0) * styles.reshape([n, 1, -1, 1, 1]);
    let dcoefs = demodulate.then(|| (w.square().sum_dim_intlist([2i64, 3, 4].as_slice(), false, None::<Kind>) + 1e-8).rsqrt());
    (w, dcoefs)
}

/// The squares of a conv weight [O, I, kh, kw] summed over the kernel,
/// [O, I]: what [`demodulation`] needs of the weight.
fn kernel_square_sums(weight: &Tensor) -> Tensor {
    weight.square().sum_dim_intlist([2i64, 3].as_slice(), false, None::<Kind>)
}

/// The demodulation coefficients [N, O] of `styles` [N, I] for a weight
/// whose squares summed over the kernel are `weight_sq` [O, I]
/// ([`kernel_square_sums`]):
/// rsqrt(sum_i s_i^2 sum_k w_oik^2 + 1e-8), the official coefficients to
/// float rounding, without making the modulated weights.
fn demodulation(styles: &Tensor, weight_sq: &Tensor) -> Tensor {
    (styles.square().matmul(&weight_sq.tr()) + 1e-8).rsqrt()
}

/// `conv2d_resample` for the two cases the generator uses: a same-size
/// convolution, or `up` (a stride-2 transposed convolution, then the FIR
/// filter; the padding bookkeeping gives transpose padding 0 and FIR padding
/// 1 on every side, and the weight is not flipped). `w` is [groups * O, I,
/// kh, kw]; 3x3 convs pad by 1, 1x1 by 0.
fn conv2d_resample(x: &Tensor, w: &Tensor, groups: i64, up: bool, filter: &Tensor, numerics: Numerics) -> Tensor {
    let (go, i, kh, kw) = w.size4().expect("conv weight is 4-D");
    if up {
        let o = go / groups;
        let wt = if groups == 1 && numerics == Numerics::Nvlabs {
            w.transpose(0, 1)
        } else {
            w.reshape([groups, o, i, kh, kw]).transpose(1, 2).reshape([groups * i, o, kh, kw])
        };
        let y = convolution(x, &wt, 2, [0, 0], true, groups);
        upfirdn2d(&y, filter, 1, [1, 1, 1, 1], 4.0, numerics)
    } else {
        let pad = (kh - 1) / 2;
        convolution(x, w, 1, [pad, pad], false, groups)
    }
}

/// `modulated_conv2d`, fused path (one grouped convolution per batch), as
/// the official code runs it in float32 inference.
fn modulated_conv2d(x: &Tensor, weight: &Tensor, styles: &Tensor, demodulate: bool, up: bool, filter: &Tensor, numerics: Numerics) -> Tensor {
    let n = x.size()[0];
    let (o, i, kh, kw) = weight.size4().expect("conv weight is 4-D");
    let (mut w, dcoefs) = modulate(weight, styles, demodulate);
    if let Some(d) = dcoefs {
        w = w * d.reshape([n, -1, 1, 1, 1]);
    }
    let (h, wd) = (x.size()[2], x.size()[3]);
    let x = x.reshape([1, n * i, h, wd]);
    let y = conv2d_resample(&x, &w.reshape([n * o, i, kh, kw]), n, up, filter, numerics);
    let (ho, wo) = (y.size()[2], y.size()[3]);
    y.reshape([n, o, ho, wo])
}

/// `modulated_conv2d` in the official non-fused formulation (see
/// [`non_fused`]): the input scaled by the styles, one plain convolution
/// for the whole batch, the output scaled by the demodulation coefficients.
/// The same function as the fused path to float rounding, but one large
/// convolution instead of N small grouped ones, and no per-image weights;
/// `weight_sq` as in [`demodulation`] (None: no demodulation).
fn modulated_conv2d_non_fused(x: &Tensor, weight: &Tensor, weight_sq: Option<&Tensor>, styles: &Tensor, up: bool, filter: &Tensor) -> Tensor {
    let n = x.size()[0];
    let y = conv2d_resample(&(x * styles.reshape([n, -1, 1, 1])), weight, 1, up, filter, Numerics::Nvlabs);
    match weight_sq {
        Some(w2) => y * demodulation(styles, w2).reshape([n, -1, 1, 1]),
        None => y,
    }
}

/// Whether a float32 layer takes the official non-fused form (the input
/// scaled by the styles, one plain convolution, the output scaled by the
/// demodulation coefficients) instead of the fused one, with NVlabs
/// numerics (whose official code is reproduced to rounding either way):
/// - a batch on CUDA (N > 1), where one large convolution beats N grouped
///   ones;
/// - anything that needs a gradient (d\*, drag, inversion), which is also
///   how the official code trains: the fused form's backward pass computes
///   the gradient of every image's modulated weight, one more convolution
///   per layer that the non-fused form does without (d\* at 256x256 on 2
///   CPU cores: 2.8 s per iteration fused, 1.6 s non-fused).
///
/// CPU renders keep the fused form, as fast there (see
/// [`MICRO_BATCH_BYTES`]), or take the Winograd convolution where it pays
/// (see `SynthesisLayer::modulated_conv`); rosinality's code is always fused.
fn non_fused(x: &Tensor, styles: &Tensor, numerics: Numerics) -> bool {
    let cuda_batch = x.device().is_cuda() && x.size()[0] > 1;
    x.kind() == Kind::Float && numerics == Numerics::Nvlabs && (cuda_batch || styles.requires_grad())
}

/// On the CPU a batch is synthesised in micro-batches whose largest
/// activation stays under this many bytes, so that they stay in cache.
/// Measured on 2 cores: a 256x256 config-f (33 MB per image) renders 0.92
/// images/s one at a time but 0.55 in whole batches of 8; cond128 (2 MB
/// per image) 43 images/s in passes of 8 but 26 in passes of 16; tiny64
/// gains from batches up to 32.
pub const MICRO_BATCH_BYTES: usize = 16 << 20;

/// `modulated_conv2d` of a float16 block (x in float16), as the official
/// code runs it: weight and styles pre-normalised by their largest entries
/// so float16 cannot overflow, the fused path for one image, and for a
/// batch the plain convolution scaled by styles and demodulation
/// coefficients; the noise is added inside. Used on CUDA only.
fn modulated_conv2d_half(x: &Tensor, weight: &Tensor, styles: &Tensor, demodulate: bool, up: bool, filter: &Tensor, noise: Option<&Tensor>) -> Tensor {
    let n = x.size()[0];
    let (o, i, kh, kw) = weight.size4().expect("conv weight is 4-D");
    let half = x.kind();
    let (weight, styles) = if demodulate {
        let max_w = weight.abs().amax([1i64, 2, 3].as_slice(), true);
        let max_s = styles.abs().amax([1i64].as_slice(), true);
        (weight * (1.0 / ((i * kh * kw) as f64).sqrt()) / max_w, styles / max_s)
    } else {
        (weight.shallow_clone(), styles.shallow_clone())
    };
    let (w, dcoefs) = modulate(&weight, &styles, demodulate);
    let filter = filter.to_kind(half);
    let (h, wd) = (x.size()[2], x.size()[3]);
    let y = match (n, dcoefs) {
        (1, dcoefs) => {
            let w = match dcoefs {
                Some(d) => w * d.reshape([n, -1, 1, 1, 1]),
                None => w,
            };
            let w = w.reshape([o, i, kh, kw]).to_kind(half);
            conv2d_resample(&x.reshape([1, i, h, wd]), &w, 1, up, &filter, Numerics::Nvlabs)
        }
        (_, dcoefs) => {
            let x = x * styles.to_kind(half).reshape([n, -1, 1, 1]);
            let y = conv2d_resample(&x, &weight.to_kind(half), 1, up, &filter, Numerics::Nvlabs);
            match dcoefs {
                Some(d) => y * d.to_kind(half).reshape([n, -1, 1, 1]),
                None => y,
            }
        }
    };
    match noise {
        Some(noise) => y + noise.to_kind(half),
        None => y,
    }
}

/// One modulated 3x3 convolution with noise and activation.
struct SynthesisLayer {
    affine: Dense,
    weight: Tensor,
    /// sum over the kernel of weight^2, [O, I], for demodulation without
    /// modulated weights (CUDA batches, the Winograd convolution).
    weight_sq: Tensor,
    /// The weight transformed for `winograd::conv3x3`, made at the first
    /// CPU render that uses it.
    winograd_weight: OnceCell<Tensor>,
    bias: Tensor,
    noise_strength: Tensor,
    noise_const: Tensor,
    filter: Tensor,
    up: bool,
    resolution: i64,
    clamp: Option<f64>,
    numerics: Numerics,
}

impl SynthesisLayer {
    fn load(w: &mut Weights, name: &str, cfg: &Config, channels: (usize, usize), res: usize, up: bool) -> Result<Self> {
        let (cin, cout) = channels;
        let affine = Dense::load(w, &format!("{name}.affine"), (cfg.w_dim, cin), 1.0, false, cfg.numerics)?;
        let mut weight = w.take(&format!("{name}.weight"), &[cout as i64, cin as i64, 3, 3])?;
        if cfg.numerics == Numerics::Rosinality {
            // rosinality scales the weight by 1/sqrt(fan_in) before modulating.
            weight = weight * (1.0 / ((cin * 9) as f64).sqrt());
        }
        let bias = w.take(&format!("{name}.bias"), &[cout as i64])?;
        let noise_strength = w.take(&format!("{name}.noise_strength"), &[])?;
        let noise_const = w.take(&format!("{name}.noise_const"), &[res as i64, res as i64])?;
        let filter = load_filter(w, &format!("{name}.resample_filter"), cfg)?;
        let clamp = cfg.clamp();
        let numerics = cfg.numerics;
        let weight_sq = kernel_square_sums(&weight);
        Ok(SynthesisLayer {
            affine,
            weight,
            weight_sq,
            winograd_weight: OnceCell::new(),
            bias,
            noise_strength,
            noise_const,
            filter,
            up,
            resolution: res as i64,
            clamp,
            numerics,
        })
    }

    /// A copy sharing its tensors (the Winograd weight is made anew).
    fn share(&self) -> SynthesisLayer {
        SynthesisLayer {
            affine: self.affine.share(),
            weight: self.weight.shallow_clone(),
            weight_sq: self.weight_sq.shallow_clone(),
            winograd_weight: OnceCell::new(),
            bias: self.bias.shallow_clone(),
            noise_strength: self.noise_strength.shallow_clone(),
            noise_const: self.noise_const.shallow_clone(),
            filter: self.filter.shallow_clone(),
            up: self.up,
            resolution: self.resolution,
            clamp: self.clamp,
            numerics: self.numerics,
        }
    }

    /// Calls `f` with the name, slot and load-time gain of each trained
    /// parameter (not the constant noise map or the filter).
    fn visit_tunable(&mut self, name: &str, f: &mut dyn FnMut(String, &mut Tensor, f64)) {
        let weight_gain = match self.numerics {
            Numerics::Nvlabs => 1.0,
            Numerics::Rosinality => 1.0 / ((self.weight.size()[1] * 9) as f64).sqrt(),
        };
        self.affine.visit_tunable(&format!("{name}.affine"), f);
        f(format!("{name}.weight"), &mut self.weight, weight_gain);
        f(format!("{name}.bias"), &mut self.bias, 1.0);
        f(format!("{name}.noise_strength"), &mut self.noise_strength, 1.0);
    }

    /// Remakes what is derived from the weight, after it was replaced.
    fn refresh(&mut self) {
        self.weight_sq = kernel_square_sums(&self.weight);
        self.winograd_weight = OnceCell::new();
    }

    /// `map` replaces the stored constant noise map (the projector's). A
    /// float16 `x` runs the float16 block path.
    fn forward(&self, x: &Tensor, w: &Tensor, noise: NoiseMode, map: Option<&Tensor>) -> Tensor {
        let styles = self.affine.forward(w);
        let noise = match noise {
            NoiseMode::Const => Some(map.unwrap_or(&self.noise_const) * &self.noise_strength),
            NoiseMode::Random => {
                let r = self.resolution;
                Some(Tensor::randn([x.size()[0], 1, r, r], (Kind::Float, x.device())) * &self.noise_strength)
            }
            NoiseMode::None => None,
        };
        if x.kind() != Kind::Half && non_fused(x, &styles, self.numerics) {
            return self.forward_non_fused(x, &styles, noise.as_ref());
        }
        let x = if x.kind() == Kind::Half {
            modulated_conv2d_half(x, &self.weight, &styles, true, self.up, &self.filter, noise.as_ref())
        } else {
            let y = self.modulated_conv(x, &styles);
            match noise {
                Some(noise) if !y.requires_grad() => {
                    let mut y = y;
                    let _ = y.g_add_(&noise);
                    y
                }
                Some(noise) => y + noise,
                None => y,
            }
        };
        let bias = self.bias.to_kind(x.kind());
        bias_act(x, &bias, true, SQRT_2, self.clamp)
    }

    /// The layer's float32 modulated convolution: Winograd's in CPU
    /// inference where that is faster (see `winograd::applies`), else the
    /// official fused one.
    fn modulated_conv(&self, x: &Tensor, styles: &Tensor) -> Tensor {
        if !self.up && !styles.requires_grad() && winograd::applies(x, &self.weight) {
            let u = self.winograd_weight.get_or_init(|| winograd::transform_weight(&self.weight));
            return winograd::conv3x3(x, u, styles, &demodulation(styles, &self.weight_sq));
        }
        modulated_conv2d(x, &self.weight, styles, true, self.up, &self.filter, self.numerics)
    }

    /// The layer in the non-fused form (see [`non_fused`]) in half the
    /// passes over its activations: the official non-fused convolution of
    /// the style-scaled input, then demodulation, noise, bias and the
    /// activation gain in one `addcmul` (the gain is positive, so it can
    /// come before leaky ReLU), then leaky ReLU and the clamp. The
    /// official function to float rounding (checked against the fused
    /// path in the tests below); GPUs spend most of a render on such
    /// elementwise passes once convolutions use TF32.
    fn forward_non_fused(&self, x: &Tensor, styles: &Tensor, noise: Option<&Tensor>) -> Tensor {
        let n = x.size()[0];
        let y = conv2d_resample(&(x * styles.reshape([n, -1, 1, 1])), &self.weight, 1, self.up, &self.filter, Numerics::Nvlabs);
        let dcoefs = demodulation(styles, &self.weight_sq) * SQRT_2;
        let bias = self.bias.reshape([1, -1, 1, 1]) * SQRT_2;
        let shift = match noise {
            Some(noise) => bias + noise * SQRT_2,
            None => bias,
        };
        let z = shift.addcmul(&y, &dcoefs.reshape([n, -1, 1, 1]));
        let z = leaky_relu(z);
        match self.clamp {
            Some(c) => clamp_to(z, c),
            None => z,
        }
    }
}

/// The 1x1 modulated convolution to RGB, without demodulation.
struct ToRgb {
    affine: Dense,
    weight: Tensor,
    bias: Tensor,
    /// The styles' gain (NVlabs); rosinality folds it into the weight.
    weight_gain: Option<f64>,
    clamp: Option<f64>,
    numerics: Numerics,
}

impl ToRgb {
    fn load(w: &mut Weights, name: &str, cfg: &Config, cin: usize) -> Result<Self> {
        let affine = Dense::load(w, &format!("{name}.affine"), (cfg.w_dim, cin), 1.0, false, cfg.numerics)?;
        let weight = w.take(&format!("{name}.weight"), &[cfg.img_channels as i64, cin as i64, 1, 1])?;
        let bias = w.take(&format!("{name}.bias"), &[cfg.img_channels as i64])?;
        let gain = 1.0 / (cin as f64).sqrt();
        let (weight, weight_gain) = match cfg.numerics {
            Numerics::Nvlabs => (weight, Some(gain)),
            Numerics::Rosinality => (weight * gain, None),
        };
        Ok(ToRgb { affine, weight, bias, weight_gain, clamp: cfg.clamp(), numerics: cfg.numerics })
    }

    /// A copy sharing its tensors.
    fn share(&self) -> ToRgb {
        ToRgb {
            affine: self.affine.share(),
            weight: self.weight.shallow_clone(),
            bias: self.bias.shallow_clone(),
            weight_gain: self.weight_gain,
            clamp: self.clamp,
            numerics: self.numerics,
        }
    }

    /// See [`SynthesisLayer::visit_tunable`]; rosinality folds the styles'
    /// gain into the weight.
    fn visit_tunable(&mut self, name: &str, f: &mut dyn FnMut(String, &mut Tensor, f64)) {
        let weight_gain = match self.weight_gain {
            Some(_) => 1.0,
            None => 1.0 / (self.weight.size()[1] as f64).sqrt(),
        };
        self.affine.visit_tunable(&format!("{name}.affine"), f);
        f(format!("{name}.weight"), &mut self.weight, weight_gain);
        f(format!("{name}.bias"), &mut self.bias, 1.0);
    }

    fn forward(&self, x: &Tensor, w: &Tensor, filter: &Tensor) -> Tensor {
        let mut styles = self.affine.forward(w);
        if let Some(gain) = self.weight_gain {
            styles = styles * gain;
        }
        let y = if x.kind() == Kind::Half {
            modulated_conv2d_half(x, &self.weight, &styles, false, false, filter, None)
        } else if non_fused(x, &styles, self.numerics) {
            modulated_conv2d_non_fused(x, &self.weight, None, &styles, false, filter)
        } else {
            modulated_conv2d(x, &self.weight, &styles, false, false, filter, self.numerics)
        };
        let bias = self.bias.to_kind(y.kind());
        bias_act(y, &bias, false, 1.0, self.clamp)
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
    /// Compute this block in float16 (a float16 block, on CUDA, if asked).
    half: bool,
    numerics: Numerics,
}

impl Block {
    fn num_conv(&self) -> i64 {
        if self.conv0.is_some() { 2 } else { 1 }
    }

    /// A copy sharing its tensors.
    fn share(&self) -> Block {
        Block {
            resolution: self.resolution,
            constant: self.constant.as_ref().map(Tensor::shallow_clone),
            conv0: self.conv0.as_ref().map(SynthesisLayer::share),
            conv1: self.conv1.share(),
            torgb: self.torgb.share(),
            filter: self.filter.shallow_clone(),
            half: self.half,
            numerics: self.numerics,
        }
    }

    /// The block's trained parameters, named as in the NVlabs state dict.
    fn visit_tunable(&mut self, f: &mut dyn FnMut(String, &mut Tensor, f64)) {
        let name = format!("synthesis.b{}", self.resolution);
        if let Some(constant) = &mut self.constant {
            f(format!("{name}.const"), constant, 1.0);
        }
        if let Some(conv0) = &mut self.conv0 {
            conv0.visit_tunable(&format!("{name}.conv0"), f);
        }
        self.conv1.visit_tunable(&format!("{name}.conv1"), f);
        self.torgb.visit_tunable(&format!("{name}.torgb"), f);
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
        let kind = if self.half { Kind::Half } else { Kind::Float };
        let mut x = match (&self.constant, x) {
            (Some(c), _) => c.unsqueeze(0).repeat([n, 1, 1, 1]).to_kind(kind),
            (None, Some(x)) => x.to_kind(kind),
            (None, None) => unreachable!("only b4 starts without input"),
        };
        let mut row = 0;
        if let Some(conv0) = &self.conv0 {
            x = conv0.forward(&x, &rows[row], noise, maps.map(|m| &m[0]));
            row += 1;
        }
        x = self.conv1.forward(&x, &rows[row], noise, maps.map(|m| &m[row]));
        row += 1;
        let y = self.torgb.forward(&x, &rows[row], &self.filter).to_kind(Kind::Float);
        let img = match img {
            Some(img) => upsample2d(img, &self.filter, self.numerics) + y,
            None => y,
        };
        (x, img)
    }
}

/// A StyleGAN2 generator with its weights on the engine's device.
pub struct StyleGan2 {
    info: ModelInfo,
    /// Images per synthesis pass on the CPU (see [`MICRO_BATCH_BYTES`]).
    micro_batch: i64,
    mapping: Vec<Dense>,
    embed: Option<Dense>,
    w_avg: Tensor,
    numerics: Numerics,
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
    /// Builds the generator from a parsed config and its tensors; `half`
    /// computes the float16 blocks in float16 (meant for CUDA).
    pub fn load(config: &serde_json::Value, label: &str, mut w: Weights<'_>, half: bool) -> Result<StyleGan2> {
        let cfg: Config =
            serde_json::from_value(config.clone()).map_err(|e| Error::format(format!("{label}: config: {e}")))?;
        cfg.validate().map_err(|e| e.context(label.to_string()))?;
        let blocks = cfg
            .block_resolutions()
            .into_iter()
            .map(|res| StyleGan2::load_block(&mut w, &cfg, res, half))
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
        let largest = cfg.block_resolutions().iter().map(|&r| cfg.channels(r) * r * r * 4).max().unwrap_or(1);
        let micro_batch = (MICRO_BATCH_BYTES / largest).max(1) as i64;
        let mut generator =
            StyleGan2 { info, micro_batch, mapping, embed, w_avg: Tensor::new(), numerics: cfg.numerics, blocks };
        generator.w_avg = match w_avg {
            Some(w_avg) => w_avg,
            None => generator.estimate_w_avg()?,
        };
        Ok(generator)
    }

    /// A copy sharing every tensor.
    fn share(&self) -> StyleGan2 {
        StyleGan2 {
            info: self.info.clone(),
            micro_batch: self.micro_batch,
            mapping: self.mapping.iter().map(Dense::share).collect(),
            embed: self.embed.as_ref().map(Dense::share),
            w_avg: self.w_avg.shallow_clone(),
            numerics: self.numerics,
            blocks: self.blocks.iter().map(Block::share).collect(),
        }
    }

    /// One synthesis pass over the whole of `ws`.
    fn synthesize_pass(&self, ws: &Tensor, noise: Noise<'_>, features: bool) -> (Tensor, Vec<Feature>) {
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
                feats.push(Feature { name: format!("b{}", block.resolution), map: nx.to_kind(Kind::Float) });
            }
            x = Some(nx);
            img = Some(nimg);
        }
        (img.expect("at least one block"), feats)
    }

    /// The mean W of 10,000 z from RandomState(123), the projector's own
    /// estimate, for files that do not store the tracked average
    /// (rosinality training checkpoints).
    fn estimate_w_avg(&self) -> Result<Tensor> {
        let device = self.blocks[0].filter.device();
        let z = crate::seed::projector_z(self.info.z_dim)?.to_device(device);
        let ws = tch::no_grad(|| self.map(&z, None, Truncation::default()));
        Ok(ws.select(1, 0).mean_dim([0i64].as_slice(), false, None::<Kind>))
    }

    fn load_block(w: &mut Weights, cfg: &Config, res: usize, half: bool) -> Result<Block> {
        let name = format!("synthesis.b{res}");
        let cout = cfg.channels(res);
        let (constant, conv0, cin) = if res == 4 {
            let c = w.take(&format!("{name}.const"), &[cout as i64, 4, 4])?;
            (Some(c), None, cout)
        } else {
            let cin = cfg.channels(res / 2);
            let conv0 = SynthesisLayer::load(w, &format!("{name}.conv0"), cfg, (cin, cout), res, true)?;
            (None, Some(conv0), cout)
        };
        let conv1 = SynthesisLayer::load(w, &format!("{name}.conv1"), cfg, (cin, cout), res, false)?;
        let torgb = ToRgb::load(w, &format!("{name}.torgb"), cfg, cout)?;
        let filter = load_filter(w, &format!("{name}.resample_filter"), cfg)?;
        let half = half && cfg.is_fp16_block(res);
        Ok(Block { resolution: res, constant, conv0, conv1, torgb, filter, half, numerics: cfg.numerics })
    }

    fn load_mapping(w: &mut Weights, cfg: &Config) -> Result<(Vec<Dense>, Option<Dense>, Option<Tensor>)> {
        let m = &cfg.mapping_kwargs;
        let embed_features = if cfg.c_dim > 0 { m.embed_features.unwrap_or(cfg.w_dim) } else { 0 };
        let embed = if cfg.c_dim > 0 {
            Some(Dense::load(w, "mapping.embed", (cfg.c_dim, embed_features), 1.0, false, cfg.numerics)?)
        } else {
            None
        };
        let hidden = m.layer_features.unwrap_or(cfg.w_dim);
        let mut widths = vec![cfg.z_dim + embed_features];
        widths.extend(std::iter::repeat_n(hidden, m.num_layers - 1));
        widths.push(cfg.w_dim);
        let layers = (0..m.num_layers)
            .map(|i| Dense::load(w, &format!("mapping.fc{i}"), (widths[i], widths[i + 1]), m.lr_multiplier, true, cfg.numerics))
            .collect::<Result<Vec<_>>>()?;
        let w_avg = match cfg.estimate_w_avg {
            true => None,
            false => Some(w.take("mapping.w_avg", &[cfg.w_dim as i64])?),
        };
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
        let truncate = |x: &Tensor| match self.numerics {
            Numerics::Nvlabs => self.w_avg.lerp(x, truncation.psi),
            Numerics::Rosinality => &self.w_avg + (x - &self.w_avg) * truncation.psi,
        };
        match truncation.cutoff.map(|c| (c as i64).min(num_ws)) {
            None => truncate(&x),
            Some(cut) => Tensor::cat(&[truncate(&x.narrow(1, 0, cut)), x.narrow(1, cut, num_ws - cut)], 1),
        }
    }

    fn synthesize(&self, ws: &Tensor, noise: Noise<'_>, features: bool) -> (Tensor, Vec<Feature>) {
        let n = ws.size()[0];
        if ws.device() == Device::Cpu && n > self.micro_batch {
            let parts: Vec<(Tensor, Vec<Feature>)> =
                ws.split(self.micro_batch, 0).iter().map(|part| self.synthesize_pass(part, noise, features)).collect();
            let images = Tensor::cat(&parts.iter().map(|(img, _)| img).collect::<Vec<_>>(), 0);
            let feats = (0..parts[0].1.len())
                .map(|b| Feature {
                    name: parts[0].1[b].name.clone(),
                    map: Tensor::cat(&parts.iter().map(|(_, f)| &f[b].map).collect::<Vec<_>>(), 0),
                })
                .collect();
            return (images, feats);
        }
        self.synthesize_pass(ws, noise, features)
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

    fn tunable(&self) -> Vec<Tunable> {
        let mut out = Vec::new();
        for block in &mut self.share().blocks {
            block.visit_tunable(&mut |name, t, lr_scale| out.push(Tunable { name, value: t.shallow_clone(), lr_scale }));
        }
        out
    }

    fn with_params(&self, params: &HashMap<String, Tensor>) -> Box<dyn Generator> {
        let mut copy = self.share();
        for block in &mut copy.blocks {
            block.visit_tunable(&mut |name, slot, _| {
                if let Some(t) = params.get(&name) {
                    *slot = t.shallow_clone();
                }
            });
            block.conv0.iter_mut().chain(std::iter::once(&mut block.conv1)).for_each(SynthesisLayer::refresh);
        }
        Box::new(copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthesis layer with random weights, noise strength 0.3 and a
    /// random constant noise map, as NVlabs computes it.
    fn random_layer(channels: (i64, i64), w_dim: i64, res: i64, up: bool, clamp: Option<f64>) -> SynthesisLayer {
        let cpu = tch::kind::FLOAT_CPU;
        let (i, o) = channels;
        let taps = Tensor::from_slice(&[1f32, 3., 3., 1.]);
        let weight = Tensor::randn([o, i, 3, 3], cpu);
        SynthesisLayer {
            affine: Dense { weight: Tensor::randn([i, w_dim], cpu) * 0.3, bias: Tensor::ones([i], cpu), lrelu: false },
            weight_sq: kernel_square_sums(&weight),
            weight,
            winograd_weight: OnceCell::new(),
            bias: Tensor::randn([o], cpu),
            noise_strength: Tensor::from(0.3f32),
            noise_const: Tensor::randn([res, res], cpu),
            filter: taps.outer(&taps) / 64.0,
            up,
            resolution: res,
            clamp,
            numerics: Numerics::Nvlabs,
        }
    }

    /// |a - b| / |b| over all entries.
    fn rel(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).norm().double_value(&[]) / b.norm().double_value(&[])
    }

    /// The official fused layer, written out: modulated convolution, noise,
    /// then `bias_act`.
    fn fused_layer(layer: &SynthesisLayer, x: &Tensor, w: &Tensor) -> Tensor {
        let styles = layer.affine.forward(w);
        let y = modulated_conv2d(x, &layer.weight, &styles, true, layer.up, &layer.filter, Numerics::Nvlabs);
        let y = y + &layer.noise_const * &layer.noise_strength;
        bias_act(y, &layer.bias, true, SQRT_2, layer.clamp)
    }

    /// A whole synthesis layer in its non-fused form (CUDA batches and
    /// gradients) against the fused form, with noise, both resampling cases
    /// and a clamp that bites: in a render (in place), and with gradients
    /// through the input and through the latent (where `forward` itself
    /// takes the non-fused form). On the CPU, so that a slip shows up
    /// without a GPU.
    #[test]
    fn non_fused_layer_matches_fused_layer() {
        tch::manual_seed(11);
        let cpu = tch::kind::FLOAT_CPU;
        let (n, i, o, w_dim) = (3, 5, 4, 6);
        for (up, clamp) in [(false, None), (true, Some(0.5))] {
            let res = if up { 16 } else { 8 };
            let layer = random_layer((i, o), w_dim, res, up, clamp);
            let x = Tensor::randn([n, i, 8, 8], cpu);
            let w = Tensor::randn([n, w_dim], cpu);
            let noise = &layer.noise_const * &layer.noise_strength;
            let non_fused = |x: &Tensor, w: &Tensor| layer.forward_non_fused(x, &layer.affine.forward(w), Some(&noise));
            // A CPU render takes the fused form.
            let fused = tch::no_grad(|| layer.forward(&x, &w, NoiseMode::Const, None));
            let render = tch::no_grad(|| non_fused(&x, &w));
            assert_eq!(render.size(), fused.size());
            assert!(rel(&render, &fused) < 1e-6, "render, up={up}: {:e}", rel(&render, &fused));
            let grad = |input: &Tensor, f: &dyn Fn(&Tensor) -> Tensor| {
                let input = input.detach().set_requires_grad(true);
                f(&input).square().sum(Kind::Float).backward();
                input.grad()
            };
            let g_fused = grad(&x, &|x| fused_layer(&layer, x, &w));
            let g_non_fused = grad(&x, &|x| non_fused(x, &w));
            assert!(rel(&g_non_fused, &g_fused) < 1e-5, "input gradient, up={up}: {:e}", rel(&g_non_fused, &g_fused));
            let g_fused = grad(&w, &|w| fused_layer(&layer, &x, w));
            let g_forward = grad(&w, &|w| layer.forward(&x, w, NoiseMode::Const, None));
            assert!(rel(&g_forward, &g_fused) < 1e-5, "latent gradient, up={up}: {:e}", rel(&g_forward, &g_fused));
        }
    }

    /// A CPU render of a layer large enough for the Winograd convolution
    /// takes it (the transformed weight gets made) and stays the official
    /// fused layer to float rounding; with a gradient the layer keeps the
    /// official path.
    #[test]
    fn winograd_layer_matches_fused_layer() {
        tch::manual_seed(5);
        let cpu = tch::kind::FLOAT_CPU;
        let (n, c, w_dim, res) = (2, 128, 8, 16);
        let layer = random_layer((c, c), w_dim, res, false, Some(0.5));
        let x = Tensor::randn([n, c, res, res], cpu);
        let w = Tensor::randn([n, w_dim], cpu);
        let official = fused_layer(&layer, &x, &w);
        let with_grad = layer.forward(&x.detach().set_requires_grad(true), &w, NoiseMode::Const, None);
        assert!(layer.winograd_weight.get().is_none(), "a gradient takes the official path");
        assert!(rel(&with_grad, &official) < 1e-6, "official path: {:e}", rel(&with_grad, &official));
        let render = tch::no_grad(|| layer.forward(&x, &w, NoiseMode::Const, None));
        assert!(layer.winograd_weight.get().is_some(), "a render takes the Winograd path");
        assert!(rel(&render, &official) < 1e-6, "Winograd: {:e}", rel(&render, &official));
    }

    /// The non-fused form is the fused form to float rounding; checked here
    /// on the CPU so that a shape or scaling slip shows up without a GPU.
    #[test]
    fn non_fused_modulated_conv_matches_fused() {
        tch::manual_seed(7);
        let (n, i, o) = (3, 5, 4);
        let taps = Tensor::from_slice(&[1f32, 3., 3., 1.]);
        let filter = taps.outer(&taps) / 64.0;
        for (up, kernel, demodulate) in [(false, 3, true), (true, 3, true), (false, 1, false)] {
            let x = Tensor::randn([n, i, 8, 8], tch::kind::FLOAT_CPU);
            let weight = Tensor::randn([o, i, kernel, kernel], tch::kind::FLOAT_CPU);
            let styles = Tensor::randn([n, i], tch::kind::FLOAT_CPU) + 1.5;
            let weight_sq = kernel_square_sums(&weight);
            let fused = modulated_conv2d(&x, &weight, &styles, demodulate, up, &filter, Numerics::Nvlabs);
            let non_fused = modulated_conv2d_non_fused(&x, &weight, demodulate.then_some(&weight_sq), &styles, up, &filter);
            assert_eq!(fused.size(), non_fused.size());
            let err = rel(&non_fused, &fused);
            assert!(err < 1e-6, "up={up} kernel={kernel}: relative error {err:e}");
        }
    }
}
