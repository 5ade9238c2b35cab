//! DCGAN generator (the PyTorch DCGAN tutorial architecture): z -> five
//! transposed convolutions with BatchNorm (inference form) and ReLU, then
//! tanh. The latent is z itself: W = W+ with one row of nz floats, and
//! truncation pulls z toward the prior's mean, zero.

use super::weights::Weights;
use super::{convolution, Feature, Generator, ModelInfo, Noise, Truncation, Tunable};
use std::collections::HashMap;
use crate::error::{Error, Result};
use serde::Deserialize;
use tch::{Kind, Tensor};

/// The converted model's config (tools/convert_default_model.py).
#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    /// Latent size.
    pub nz: usize,
    /// Base feature-map width.
    pub ngf: usize,
    /// Output channels.
    pub nc: usize,
    /// Output resolution (64 for the tutorial architecture).
    pub resolution: usize,
    /// BatchNorm epsilon.
    #[serde(default = "default_eps")]
    pub batchnorm_eps: f64,
}

fn default_eps() -> f64 {
    1e-5
}

/// One stage: transposed conv, then BatchNorm + ReLU (or tanh at the end).
struct Stage {
    weight: Tensor,
    norm: Option<[Tensor; 4]>,
    stride: i64,
    padding: i64,
}

/// A DCGAN generator with its weights on the engine's device.
pub struct Dcgan {
    info: ModelInfo,
    stages: Vec<Stage>,
    eps: f64,
}

// SAFETY: the tensors are created at load time and only read afterwards;
// libtorch allows concurrent reads of a tensor from several threads.
unsafe impl Sync for Dcgan {}

impl Dcgan {
    /// Builds the generator from its config and weight file.
    pub fn load(config: &serde_json::Value, label: &str, mut w: Weights<'_>) -> Result<Dcgan> {
        let cfg: Config =
            serde_json::from_value(config.clone()).map_err(|e| Error::format(format!("{label}: config: {e}")))?;
        if cfg.resolution != 64 || !(1..=4096).contains(&cfg.nz) || !(1..=4096).contains(&cfg.ngf) || !(1..=4).contains(&cfg.nc) {
            return Err(Error::format(format!(
                "{label}: DCGAN needs resolution 64 and nz, ngf, nc in range"
            )));
        }
        let widths = [cfg.nz, cfg.ngf * 8, cfg.ngf * 4, cfg.ngf * 2, cfg.ngf, cfg.nc];
        let stages = (0..5).map(|i| Dcgan::load_stage(&mut w, i, widths[i], widths[i + 1])).collect::<Result<Vec<_>>>()?;
        w.finish()?;
        let info = ModelInfo {
            architecture: "dcgan".into(),
            resolution: cfg.resolution,
            channels: cfg.nc,
            z_dim: cfg.nz,
            c_dim: 0,
            w_dim: cfg.nz,
            num_ws: 1,
        };
        Ok(Dcgan { info, stages, eps: cfg.batchnorm_eps })
    }

    fn load_stage(w: &mut Weights, i: usize, cin: usize, cout: usize) -> Result<Stage> {
        let conv = format!("main.{}", 3 * i);
        let weight = w.take(&format!("{conv}.weight"), &[cin as i64, cout as i64, 4, 4])?;
        let norm = if i < 4 {
            let bn = format!("main.{}", 3 * i + 1);
            let mut take = |p: &str| w.take(&format!("{bn}.{p}"), &[cout as i64]);
            Some([take("weight")?, take("bias")?, take("running_mean")?, take("running_var")?])
        } else {
            None
        };
        let (stride, padding) = if i == 0 { (1, 0) } else { (2, 1) };
        Ok(Stage { weight, norm, stride, padding })
    }

    /// Calls `f` with the name and a slot of every tensor tuning changes:
    /// each convolution's weight and each BatchNorm's scale and shift (the
    /// running statistics stay: the generator computes in inference form).
    fn visit_tunable(&mut self, f: &mut dyn FnMut(String, &mut Tensor)) {
        for (i, stage) in self.stages.iter_mut().enumerate() {
            f(format!("main.{}.weight", 3 * i), &mut stage.weight);
            if let Some([weight, bias, _, _]) = &mut stage.norm {
                f(format!("main.{}.weight", 3 * i + 1), weight);
                f(format!("main.{}.bias", 3 * i + 1), bias);
            }
        }
    }

    /// A copy sharing every tensor.
    fn share(&self) -> Dcgan {
        let stages = self
            .stages
            .iter()
            .map(|s| Stage {
                weight: s.weight.shallow_clone(),
                norm: s.norm.as_ref().map(|n| n.each_ref().map(Tensor::shallow_clone)),
                stride: s.stride,
                padding: s.padding,
            })
            .collect();
        Dcgan { info: self.info.clone(), stages, eps: self.eps }
    }
}

impl Generator for Dcgan {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn map(&self, z: &Tensor, _c: Option<&Tensor>, truncation: Truncation) -> Tensor {
        let z = z.unsqueeze(1);
        if truncation.psi == 1.0 {
            z
        } else {
            z * truncation.psi
        }
    }

    fn synthesize(&self, ws: &Tensor, _noise: Noise<'_>, features: bool) -> (Tensor, Vec<Feature>) {
        let n = ws.size()[0];
        let mut x = ws.reshape([n, self.info.z_dim as i64, 1, 1]);
        let mut feats = Vec::new();
        for stage in &self.stages {
            x = convolution(&x, &stage.weight, stage.stride, [stage.padding; 2], true, 1);
            x = match &stage.norm {
                Some([weight, bias, mean, var]) => {
                    x.batch_norm(Some(weight), Some(bias), Some(mean), Some(var), false, 0.1, self.eps, true).relu()
                }
                None => x.tanh(),
            };
            if features && stage.norm.is_some() {
                feats.push(Feature { name: format!("stage{}", x.size()[2]), map: x.shallow_clone() });
            }
        }
        (x, feats)
    }

    fn w_avg(&self) -> Tensor {
        Tensor::zeros([self.info.w_dim as i64], (Kind::Float, self.stages[0].weight.device()))
    }

    /// The first transposed convolution, [nz, C, 4, 4], flattened over its
    /// outputs and transposed to [C * 16, nz]. There is one row only.
    fn latent_weights(&self, _rows: std::ops::Range<usize>) -> Tensor {
        self.stages[0].weight.flatten(1, -1).tr()
    }

    /// The DCGAN applies no gain at load: every scale is 1.
    fn tunable(&self) -> Vec<Tunable> {
        let mut out = Vec::new();
        self.share().visit_tunable(&mut |name, t| out.push(Tunable { name, value: t.shallow_clone(), lr_scale: 1.0 }));
        out
    }

    fn with_params(&self, params: &HashMap<String, Tensor>) -> Box<dyn Generator> {
        let mut copy = self.share();
        copy.visit_tunable(&mut |name, slot| {
            if let Some(t) = params.get(&name) {
                *slot = t.shallow_clone();
            }
        });
        Box::new(copy)
    }
}
