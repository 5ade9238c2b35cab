//! An example edit and its transfer to other images (docs/method.md).
//!
//! An [`Edit`] holds the example's latent w0, its final edited state w0',
//! the rows it may touch, and the unit direction n it transfers along:
//! the naive direction until [`optimize`] has computed d*. Latents are
//! flattened W+ (num_ws * w_dim floats).

pub mod drag;
pub mod method;
pub mod optimize;
pub mod preset;
pub mod sefa;

use crate::error::{Error, Result};
use crate::model::weights::{fnv1a64, fnv1a64_continue};
use method::RowMask;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
pub use optimize::{Init, LossObserver, Objective, OptimizeOptions, OptimizeReport};

/// The shape of a model's W+ latent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatentShape {
    /// Rows.
    pub num_ws: usize,
    /// Row length.
    pub w_dim: usize,
}

impl LatentShape {
    /// The latent shape of a model.
    pub fn of(info: &crate::model::ModelInfo) -> Self {
        LatentShape { num_ws: info.num_ws, w_dim: info.w_dim }
    }

    /// Floats in one flattened W+ latent.
    pub fn len(&self) -> usize {
        self.num_ws * self.w_dim
    }

    /// Always false: a model has at least one row of at least one float.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Accepts a W (one row, repeated to every row) or a W+ vector.
    pub fn to_wplus(&self, v: &[f32], what: &str) -> Result<Vec<f32>> {
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid(format!("{what} contains NaN or Inf")));
        }
        if v.len() == self.len() {
            Ok(v.to_vec())
        } else if v.len() == self.w_dim {
            Ok(v.repeat(self.num_ws))
        } else {
            Err(Error::invalid(format!(
                "{what} has {} floats; expected {} (W) or {} (W+ = {} x {})",
                v.len(),
                self.w_dim,
                self.len(),
                self.num_ws,
                self.w_dim
            )))
        }
    }
}

/// How an edit carries over to another latent: the method, or one of the
/// paper's two baselines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// w_i + alpha_i n: every image ends on the example's hyperplane.
    Editone,
    /// w_i + dw: the example's offset added to every image.
    Naive,
    /// w_i + d*: the optimised direction without per-image strength.
    Unscaled,
}

/// An example edit, ready to transfer.
#[derive(Clone, Debug, PartialEq)]
pub struct Edit {
    shape: LatentShape,
    example: Vec<f32>,
    edited: Vec<f32>,
    mask: RowMask,
    /// d*, or the naive direction dw before optimisation.
    direction: Vec<f32>,
    /// n = direction / |direction|.
    unit: Vec<f32>,
    strength: f64,
    optimized: Option<(OptimizeOptions, OptimizeReport)>,
}

impl Edit {
    /// An edit from the example w0 and its edited state w0' (both W+).
    pub fn from_latents(shape: LatentShape, example: &[f32], edited: &[f32]) -> Result<Edit> {
        let example = shape.to_wplus(example, "example latent")?;
        let edited = shape.to_wplus(edited, "edited latent")?;
        Edit::naive(shape, example, edited, RowMask::all(shape.num_ws, shape.w_dim))
    }

    /// An edit that moves the example by `strength` along `direction`
    /// (W or W+): w0' = w0 + s d.
    pub fn from_direction(shape: LatentShape, example: &[f32], direction: &[f32], strength: f32) -> Result<Edit> {
        let example = shape.to_wplus(example, "example latent")?;
        let edited = Edit::moved(shape, &example, direction, strength)?;
        Edit::naive(shape, example, edited, RowMask::all(shape.num_ws, shape.w_dim))
    }

    fn moved(shape: LatentShape, from: &[f32], direction: &[f32], strength: f32) -> Result<Vec<f32>> {
        if !strength.is_finite() {
            return Err(Error::invalid("strength must be finite"));
        }
        let d = shape.to_wplus(direction, "direction")?;
        let moved: Vec<f32> = from.iter().zip(&d).map(|(w, d)| w + strength * d).collect();
        if moved.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid(format!("the direction times the strength {strength} overflows float32")));
        }
        Ok(moved)
    }

    fn naive(shape: LatentShape, example: Vec<f32>, edited: Vec<f32>, mask: RowMask) -> Result<Edit> {
        let direction = method::naive_direction(&example, &edited, &mask);
        if direction.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid("the edited latent minus the example overflows float32"));
        }
        let unit = method::unit_direction(&direction).ok_or_else(|| {
            Error::invalid("the edit changes nothing: the edited latent equals the example on the editable rows")
        })?;
        let strength = method::dot(&direction, &unit);
        Ok(Edit { shape, example, edited, mask, direction, unit, strength, optimized: None })
    }

    /// A further edit of the example's current final state to `edited`;
    /// only the final state transfers, so d* is reset to the naive direction.
    pub fn push_latent(&mut self, edited: &[f32]) -> Result<()> {
        let edited = self.shape.to_wplus(edited, "edited latent")?;
        *self = Edit::naive(self.shape, self.example.clone(), edited, self.mask.clone())?;
        Ok(())
    }

    /// A further move of the final state along `direction` by `strength`.
    pub fn push_direction(&mut self, direction: &[f32], strength: f32) -> Result<()> {
        let edited = Edit::moved(self.shape, &self.edited, direction, strength)?;
        self.push_latent(&edited)
    }

    /// Restricts the edit to `mask`; the final state outside it reverts to
    /// the example's own rows, and d* is reset to the naive direction.
    pub fn set_mask(&mut self, mask: RowMask) -> Result<()> {
        if mask.rows().len() != self.shape.num_ws {
            return Err(Error::invalid("edit mask has the wrong number of rows"));
        }
        *self = Edit::naive(self.shape, self.example.clone(), self.edited.clone(), mask)?;
        Ok(())
    }

    /// Installs an optimised direction d* (zero outside the mask).
    pub fn set_optimized(&mut self, d_star: Vec<f32>, options: OptimizeOptions, report: OptimizeReport) -> Result<()> {
        let unit = method::unit_direction(&d_star)
            .ok_or_else(|| Error::invalid("optimisation produced a zero direction; try more iterations or the naive init"))?;
        self.strength = method::dot(&method::naive_direction(&self.example, &self.edited, &self.mask), &unit);
        self.direction = d_star;
        self.unit = unit;
        self.optimized = Some((options, report));
        Ok(())
    }

    /// The latent shape.
    pub fn shape(&self) -> LatentShape {
        self.shape
    }

    /// w0.
    pub fn example(&self) -> &[f32] {
        &self.example
    }

    /// w0', the example's final state as the user made it.
    pub fn edited(&self) -> &[f32] {
        &self.edited
    }

    /// The editable rows.
    pub fn mask(&self) -> &RowMask {
        &self.mask
    }

    /// d* (or dw before optimisation), unnormalised.
    pub fn direction(&self) -> &[f32] {
        &self.direction
    }

    /// n, the unit transfer direction.
    pub fn unit_direction(&self) -> &[f32] {
        &self.unit
    }

    /// The naive direction dw (the baseline "w_i + dw").
    pub fn naive_direction(&self) -> Vec<f32> {
        method::naive_direction(&self.example, &self.edited, &self.mask)
    }

    /// Options and outcome of the optimisation, if it has run.
    pub fn optimized(&self) -> Option<&(OptimizeOptions, OptimizeReport)> {
        self.optimized.as_ref()
    }

    /// The example's own strength a (alpha_0 of the example).
    pub fn strength(&self) -> f64 {
        self.strength
    }

    /// Sets a; every image's alpha moves by the same amount.
    pub fn set_strength(&mut self, strength: f64) -> Result<()> {
        if !strength.is_finite() {
            return Err(Error::invalid("strength must be finite"));
        }
        self.strength = strength;
        Ok(())
    }

    /// The hyperplane offset t every edited latent ends on.
    pub fn offset(&self) -> f64 {
        method::interactive_offset(&self.example, &self.unit, self.strength)
    }

    /// alpha_i for a W+ latent.
    pub fn alpha(&self, w: &[f32]) -> Result<f64> {
        self.check_len(w)?;
        Ok(method::alpha(self.offset(), &self.unit, w))
    }

    /// The edited latent w_i + alpha_i n, and alpha_i.
    pub fn apply(&self, w: &[f32]) -> Result<(Vec<f32>, f64)> {
        let alpha = self.alpha(w)?;
        Ok((method::transfer(w, alpha, &self.unit), alpha))
    }

    /// The edited latent of `w` in `mode`, and the alpha used where the
    /// mode has one (the method's own).
    pub fn transfer(&self, mode: Transfer, w: &[f32]) -> Result<(Vec<f32>, Option<f64>)> {
        match mode {
            Transfer::Editone => self.apply(w).map(|(w, alpha)| (w, Some(alpha))),
            Transfer::Naive => self.apply_naive(w).map(|w| (w, None)),
            Transfer::Unscaled => self.apply_unscaled(w).map(|w| (w, None)),
        }
    }

    /// Baseline: the same offset dw for every image, scaled as the
    /// example's strength was moved ([`Edit::strength_scale`]).
    pub fn apply_naive(&self, w: &[f32]) -> Result<Vec<f32>> {
        self.check_len(w)?;
        let dw = self.naive_direction();
        Ok(method::transfer(w, self.scale_for(&dw), &dw))
    }

    /// Baseline: d* without per-image strength, scaled as the example's
    /// strength was moved.
    pub fn apply_unscaled(&self, w: &[f32]) -> Result<Vec<f32>> {
        self.check_len(w)?;
        Ok(method::transfer(w, self.strength_scale(), &self.direction))
    }

    /// The example's strength over the strength the edit was made with
    /// (dw . n): 1 until the host moves it, so that the baselines are the
    /// paper's (w + dw, w + d*) and follow a strength slider as the method
    /// does.
    pub fn strength_scale(&self) -> f64 {
        self.scale_for(&self.naive_direction())
    }

    /// [`Edit::strength_scale`] with the naive direction dw already made.
    fn scale_for(&self, dw: &[f32]) -> f64 {
        let made = method::dot(dw, &self.unit);
        if made.abs() > f64::EPSILON {
            self.strength / made
        } else {
            1.0
        }
    }

    fn check_len(&self, w: &[f32]) -> Result<()> {
        if w.len() != self.shape.len() {
            return Err(Error::invalid(format!("latent has {} floats; this edit needs {}", w.len(), self.shape.len())));
        }
        Ok(())
    }

    /// Rebuilds an edit from saved parts (presets); checks every invariant.
    pub(crate) fn from_parts(
        shape: LatentShape,
        example: Vec<f32>,
        edited: Vec<f32>,
        mask: RowMask,
        direction: Vec<f32>,
        strength: f64,
        optimized: Option<(OptimizeOptions, OptimizeReport)>,
    ) -> Result<Edit> {
        let mut edit = Edit::naive(shape, example, edited, mask)?;
        let d_len_ok = direction.len() == shape.len() && direction.iter().all(|x| x.is_finite());
        let outside_mask_zero = {
            let mut masked = direction.clone();
            edit.mask.zero_outside(&mut masked);
            masked == direction
        };
        if !d_len_ok || !outside_mask_zero {
            return Err(Error::format("direction has the wrong length, non-finite values, or values outside the mask"));
        }
        edit.unit = method::unit_direction(&direction).ok_or_else(|| Error::format("direction is zero"))?;
        edit.direction = direction;
        edit.optimized = optimized;
        edit.set_strength(strength).map_err(|e| Error::format(e.message))?;
        Ok(edit)
    }
}

/// Projections w_i . n of latents on an edit's unit direction, kept by a
/// key of the caller's (a handle id, an index), so that after a strength
/// change every alpha is one subtraction away: a slider over 100,000
/// images. The projections belong to one direction; a new direction
/// (optimised, pushed) starts the table afresh.
pub struct AlphaTable<K> {
    direction: u64,
    projections: HashMap<K, f64, BuildHasherDefault<IdHasher>>,
}

impl<K> Default for AlphaTable<K> {
    fn default() -> Self {
        AlphaTable { direction: 0, projections: HashMap::default() }
    }
}

/// Hashes integer keys (handle ids, indices) with one multiplication:
/// a slider looks up every image's key, and these keys are not chosen by
/// an attacker, so SipHash's protection would only cost time.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, id: usize) {
        self.write_u64(id as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl<K: Hash + Eq + Copy> AlphaTable<K> {
    /// alpha_i of `edit` for each of `keys`, in order. `latent(i)` gives
    /// the latent of keys[i]; it is asked only for keys not projected on
    /// this direction yet.
    pub fn alphas<W: AsRef<[f32]>>(&mut self, edit: &Edit, keys: &[K], mut latent: impl FnMut(usize) -> Result<W>) -> Result<Vec<f64>> {
        let direction = edit.unit.iter().fold(fnv1a64(&[]), |h, v| fnv1a64_continue(h, &v.to_le_bytes()));
        // Keys of latents a host has released would pile up: start afresh
        // when the table is far larger than what is asked for.
        if direction != self.direction || self.projections.len() > 4 * keys.len() + 4096 {
            *self = AlphaTable { direction, projections: HashMap::default() };
        }
        let offset = edit.offset();
        let mut alphas = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let projection = match self.projections.get(key) {
                Some(&p) => p,
                None => {
                    let w = latent(i)?;
                    edit.check_len(w.as_ref())?;
                    let p = method::dot(w.as_ref(), &edit.unit);
                    self.projections.insert(*key, p);
                    p
                }
            };
            alphas.push(method::alpha_from_projection(offset, projection));
        }
        Ok(alphas)
    }
}
