//! Optimising the globally consistent direction d* (docs/method.md
//! section 2): the paper objective and the demo code's batch objective.

use super::method::RowMask;
use super::{Edit, LatentShape};
use crate::error::{Error, Result};
use crate::model::{Model, NoiseMode, Truncation};
use crate::progress::{report, Progress};
use crate::seed::LegacyRandomState;
use serde::{Deserialize, Serialize};
use tch::nn::OptimizerConfig;
use tch::{nn, Kind, Tensor};

/// Which loss d* minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// ||G(w0 + dw) - G(w0 + d*)||_2 + lambda |(w0 + d*) . d*|, on the example alone.
    Paper,
    /// Demo code: mean_k MSE(G(w_k + a_k dw), G(w_k + a_k d*)) + the same
    /// regulariser, over seeded latents (row 0 the example) with a_k ~ U(-1, 1).
    Batch,
}

/// Where d* starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Zeros for the paper objective, dw for the batch objective.
    Auto,
    /// Zeros (the paper).
    Zero,
    /// The naive direction dw (the demo code).
    Naive,
}

/// Largest learning rate [`OptimizeOptions::validate`] accepts.
pub const MAX_LEARNING_RATE: f64 = 10.0;
/// Largest hyperplane weight [`OptimizeOptions::validate`] accepts.
pub const MAX_LAMBDA: f64 = 1e6;

/// Optimisation settings; defaults are the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizeOptions {
    /// AdamW steps at most.
    pub iterations: u32,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Weight of the hyperplane regulariser.
    pub lambda: f64,
    /// The loss.
    pub objective: Objective,
    /// Latents per step for the batch objective (the example included).
    pub batch_size: u32,
    /// Editable W+ rows: 0 keeps the edit's mask, k > 0 the first k rows.
    pub edit_rows: u32,
    /// Starting point.
    pub init: Init,
    /// Seed of the batch objective's latents and strengths.
    pub seed: u64,
    /// Stop after this many steps without a better loss (0: never).
    pub patience: u32,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        OptimizeOptions {
            iterations: 1000,
            learning_rate: 1e-3,
            lambda: 0.02,
            objective: Objective::Paper,
            batch_size: 16,
            edit_rows: 0,
            init: Init::Auto,
            seed: 0,
            patience: 100,
        }
    }
}

impl OptimizeOptions {
    /// The interactive preset: the paper's objective with a 20x learning
    /// rate and at most 100 steps. On the default model it reaches the loss
    /// of the paper's 1000 steps in about 80 (README, performance).
    pub fn fast() -> Self {
        OptimizeOptions { iterations: 100, learning_rate: 0.02, patience: 20, ..OptimizeOptions::default() }
    }

    /// Refuses options that cannot give a meaningful d* for a latent of
    /// `shape`. The learning rate and lambda are bounded far above any
    /// useful value (the paper's 1e-3 and 0.02, the interactive 0.02):
    /// beyond that, AdamW's steps leave every float32 range and the loss
    /// becomes NaN.
    pub fn validate(&self, shape: LatentShape) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(format!("optimize options: {m}")));
        if self.iterations == 0 || self.iterations > 1_000_000 {
            return bad("iterations must be 1..=1000000".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= MAX_LEARNING_RATE) {
            return bad(format!("learning_rate {} must be above 0 and at most {MAX_LEARNING_RATE}", self.learning_rate));
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0 && self.lambda <= MAX_LAMBDA) {
            return bad(format!("lambda {} must be 0 to {MAX_LAMBDA}", self.lambda));
        }
        if self.edit_rows as usize > shape.num_ws {
            return bad(format!("edit_rows {} is more than the model's {} W+ rows", self.edit_rows, shape.num_ws));
        }
        if self.objective == Objective::Batch && !(1..=256).contains(&self.batch_size) {
            return bad("batch_size must be 1..=256".into());
        }
        Ok(())
    }

    fn starts_at_naive(&self) -> bool {
        match self.init {
            Init::Auto => self.objective == Objective::Batch,
            Init::Zero => false,
            Init::Naive => true,
        }
    }
}

/// Called with each optimisation step (from 1) and its loss.
pub type LossObserver<'a> = &'a mut dyn FnMut(u32, f64);

/// What the optimisation did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizeReport {
    /// Steps taken.
    pub iterations: u32,
    /// True when it stopped because the loss stopped improving.
    pub stopped_early: bool,
    /// Loss at the first step.
    pub initial_loss: f64,
    /// The best loss seen; d* is the direction that reached it.
    pub best_loss: f64,
}

impl Edit {
    /// Computes d* and installs it. On error or cancellation the edit is
    /// left exactly as it was.
    pub fn optimize(&mut self, model: &Model, options: &OptimizeOptions, progress: Option<Progress<'_>>) -> Result<OptimizeReport> {
        self.optimize_observed(model, options, progress, None)
    }

    /// [`Edit::optimize`], also handing every step's loss to `on_loss`
    /// (for loss curves).
    pub fn optimize_observed(
        &mut self,
        model: &Model,
        options: &OptimizeOptions,
        progress: Option<Progress<'_>>,
        on_loss: Option<LossObserver<'_>>,
    ) -> Result<OptimizeReport> {
        let info = model.info();
        if info.num_ws != self.shape.num_ws || info.w_dim != self.shape.w_dim {
            return Err(Error::invalid("the edit was made for a model with another latent shape"));
        }
        options.validate(self.shape)?;
        let mut next = self.clone();
        if options.edit_rows > 0 {
            next.set_mask(RowMask::first(options.edit_rows as usize, self.shape.num_ws, self.shape.w_dim))?;
        }
        let (d_star, report) = Optimizer::new(model, &next, options)?.run(progress, on_loss)?;
        next.set_optimized(d_star, options.clone(), report.clone())?;
        *self = next;
        Ok(report)
    }
}

/// One optimisation run: d* lives only in the editable rows, so it stays
/// exactly zero elsewhere whatever AdamW's weight decay does.
struct Optimizer<'a> {
    model: &'a Model,
    options: &'a OptimizeOptions,
    shape: [i64; 3],
    rows: Tensor,
    example: Tensor,
    naive: Tensor,
}

impl<'a> Optimizer<'a> {
    fn new(model: &'a Model, edit: &Edit, options: &'a OptimizeOptions) -> Result<Self> {
        let device = model.device();
        let shape = [1, edit.shape.num_ws as i64, edit.shape.w_dim as i64];
        let as_tensor = |v: &[f32]| Tensor::from_slice(v).reshape(shape).to_device(device);
        Ok(Optimizer {
            model,
            options,
            shape,
            rows: Tensor::from_slice(&edit.mask.row_indices()).to_device(device),
            example: as_tensor(edit.example()),
            naive: as_tensor(&edit.naive_direction()),
        })
    }

    fn run(&self, mut progress: Option<Progress<'_>>, mut on_loss: Option<LossObserver<'_>>) -> Result<(Vec<f32>, OptimizeReport)> {
        let device = self.example.device();
        let vs = nn::VarStore::new(device);
        let start = if self.options.starts_at_naive() {
            self.naive.index_select(1, &self.rows).squeeze_dim(0)
        } else {
            Tensor::zeros([self.rows.size()[0], self.shape[2]], (Kind::Float, device))
        };
        let free = vs.root().var_copy("d_star", &start);
        let mut opt = nn::AdamW::default().build(&vs, self.options.learning_rate)?;
        let batch = self.batch_latents()?;
        let mut rng = LegacyRandomState::from_u64(self.options.seed.wrapping_add(1));
        let target = match &batch {
            None => Some(tch::no_grad(|| self.model.synthesize(&(&self.example + &self.naive), NoiseMode::Const))?),
            Some(_) => None,
        };
        let (mut best, mut best_d, mut initial, mut since_best) = (f64::INFINITY, None, f64::NAN, 0u32);
        let mut steps = 0;
        for step in 0..self.options.iterations {
            let d = self.full_direction(&free);
            let loss = match (&batch, &target) {
                (Some(w), _) => self.batch_loss(w, &d, &mut rng)?,
                (None, Some(t)) => self.paper_loss(t, &d)?,
                (None, None) => unreachable!("the paper objective has a target"),
            };
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                return Err(Error::new(crate::ErrorKind::Internal, format!("the loss became {value} at step {step}")));
            }
            if step == 0 {
                initial = value;
            }
            if let Some(observe) = on_loss.as_mut() {
                observe(step + 1, value);
            }
            // Improvements below float32 noise do not count as progress. On
            // CUDA the same loss differs from one evaluation to the next by
            // about 1.5e-6 relative (reductions in varying order, H100).
            let improved = best_d.is_none() || value < best - 1e-5 * best.abs();
            if improved {
                (best, best_d, since_best) = (value, Some(d.detach().copy()), 0);
            } else {
                since_best += 1;
            }
            steps = step + 1;
            report(&mut progress, "optimize", steps as u64, self.options.iterations as u64)?;
            if self.options.patience > 0 && since_best >= self.options.patience {
                break;
            }
            opt.backward_step(&loss);
        }
        let d = best_d.expect("at least one step ran");
        let report = OptimizeReport {
            iterations: steps,
            stopped_early: steps < self.options.iterations,
            initial_loss: initial,
            best_loss: best,
        };
        Ok((Vec::<f32>::try_from(d.flatten(0, -1).to_device(tch::Device::Cpu))?, report))
    }

    /// d* as a full [1, num_ws, w_dim] latent offset, zero outside the mask.
    fn full_direction(&self, free: &Tensor) -> Tensor {
        let zeros = Tensor::zeros(self.shape, (Kind::Float, free.device()));
        zeros.index_copy(1, &self.rows, &free.unsqueeze(0))
    }

    /// lambda |(w0 + d*) . d*|: puts the edited example on the hyperplane
    /// through the origin with normal d*.
    fn hyperplane_term(&self, d: &Tensor) -> Tensor {
        ((&self.example + d) * d).sum(Kind::Float).abs() * self.options.lambda
    }

    /// Section 2, paper objective.
    fn paper_loss(&self, target: &Tensor, d: &Tensor) -> Result<Tensor> {
        let img = self.model.synthesize(&(&self.example + d), NoiseMode::Const)?;
        Ok((img - target).norm() + self.hyperplane_term(d))
    }

    /// Section 2, the demo code's batch objective.
    fn batch_loss(&self, latents: &Tensor, d: &Tensor, rng: &mut LegacyRandomState) -> Result<Tensor> {
        let k = latents.size()[0];
        let a: Vec<f32> = (0..k).map(|_| (2.0 * rng.next_f64() - 1.0) as f32).collect();
        let a = Tensor::from_slice(&a).reshape([k, 1, 1]).to_device(latents.device());
        let target = tch::no_grad(|| self.model.synthesize(&(latents + &a * &self.naive), NoiseMode::Const))?;
        let img = self.model.synthesize(&(latents + &a * d), NoiseMode::Const)?;
        Ok((img - target).square().mean(Kind::Float) + self.hyperplane_term(d))
    }

    /// The batch objective's latents: the example, then seeded draws mapped
    /// without truncation. None for the paper objective.
    fn batch_latents(&self) -> Result<Option<Tensor>> {
        if self.options.objective != Objective::Batch {
            return Ok(None);
        }
        let info = self.model.info();
        let others = self.options.batch_size as usize - 1;
        if others == 0 {
            return Ok(Some(self.example.shallow_clone()));
        }
        if info.c_dim > 0 {
            return Err(Error::invalid("the batch objective needs an unconditional model"));
        }
        let mut rng = LegacyRandomState::from_u64(self.options.seed);
        let z = rng.randn_tensor(&[others as i64, info.z_dim as i64], tch::Device::Cpu);
        let ws = tch::no_grad(|| self.model.map(&z, None, Truncation::default()))?;
        Ok(Some(Tensor::cat(&[self.example.shallow_clone(), ws], 0)))
    }
}
