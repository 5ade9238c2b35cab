//! Latent seeds exactly as the official StyleGAN2 scripts draw them:
//! `numpy.random.RandomState(seed).randn(n, z_dim)` (docs/stylegan2.md section 1.12),
//! so that seed 42 here is seed 42 in `generate.py`.

use crate::error::{Error, Result};

const STATE_LEN: usize = 624;

/// numpy's legacy `RandomState`: MT19937 with its `randn` (polar method).
pub struct LegacyRandomState {
    key: [u32; STATE_LEN],
    pos: usize,
    cached_gauss: Option<f64>,
}

impl LegacyRandomState {
    /// Seeds the generator as `RandomState(seed)` does; numpy accepts
    /// seeds in 0..2^32 only, and so does this.
    pub fn new(seed: u64) -> Result<Self> {
        let seed = u32::try_from(seed)
            .map_err(|_| Error::invalid(format!("seed {seed} is out of range: numpy seeds are 0..=4294967295")))?;
        let mut key = [0u32; STATE_LEN];
        key[0] = seed;
        for pos in 1..STATE_LEN {
            let prev = key[pos - 1];
            key[pos] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(pos as u32);
        }
        Ok(LegacyRandomState { key, pos: STATE_LEN, cached_gauss: None })
    }

    /// A generator for any 64-bit seed: the seed's high half is folded
    /// into its low half, so seeds below 2^32 draw exactly as numpy's
    /// `RandomState(seed)` and larger ones still differ from each other.
    pub fn from_u64(seed: u64) -> Self {
        Self::new((seed ^ (seed >> 32)) & 0xffff_ffff).expect("a 32-bit seed is in range")
    }

    fn next_u32(&mut self) -> u32 {
        if self.pos == STATE_LEN {
            self.regenerate();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn regenerate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..STATE_LEN {
            let y = (self.key[i] & UPPER) | (self.key[(i + 1) % STATE_LEN] & LOWER);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.key[i] = self.key[(i + 397) % STATE_LEN] ^ (y >> 1) ^ mag;
        }
        self.pos = 0;
    }

    /// A double in [0, 1) with 53 random bits, as numpy's `random_sample`.
    pub fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// One standard normal sample, numpy's `legacy_gauss`.
    pub fn next_gauss(&mut self) -> f64 {
        if let Some(g) = self.cached_gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.next_f64() - 1.0;
            let x2 = 2.0 * self.next_f64() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.cached_gauss = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// `randn(len)` in C order.
    pub fn randn(&mut self, len: usize) -> Vec<f64> {
        (0..len).map(|_| self.next_gauss()).collect()
    }

    /// A float32 tensor of standard normal samples with `shape` on `device`.
    /// Optimisations draw their noise here rather than from libtorch's
    /// global generator, which every thread of the process shares: two
    /// inversions at once would otherwise take each other's numbers and
    /// neither would be reproducible.
    pub fn randn_tensor(&mut self, shape: &[i64], device: tch::Device) -> tch::Tensor {
        let len = shape.iter().product::<i64>().max(0) as usize;
        let samples: Vec<f32> = (0..len).map(|_| self.next_gauss() as f32).collect();
        tch::Tensor::from_slice(&samples).reshape(shape).to_device(device)
    }
}

/// The z samples the official projector estimates W statistics from:
/// 10,000 rows of RandomState(123), [10000, z_dim] float32 on the CPU.
pub fn projector_z(z_dim: usize) -> Result<tch::Tensor> {
    const SAMPLES: i64 = 10_000;
    Ok(LegacyRandomState::new(123)?.randn_tensor(&[SAMPLES, z_dim as i64], tch::Device::Cpu))
}

/// The latent z of `seed` for a model with `z_dim` inputs, in float64 as
/// numpy produces it (the mapping network casts it to float32).
pub fn z_from_seed(seed: u64, z_dim: usize) -> Result<Vec<f64>> {
    Ok(LegacyRandomState::new(seed)?.randn(z_dim))
}
