//! The paper's equations (docs/method.md sections 1, 3 and 4), each in one
//! place, on flattened W+ latents. Dot products and norms run in float64 so
//! that the hyperplane invariant holds to float32 rounding.

/// Section 1, the naive direction: dw = w0' - w0, restricted to the rows
/// the edit may touch (other rows keep each image's own values).
pub fn naive_direction(example: &[f32], edited: &[f32], mask: &RowMask) -> Vec<f32> {
    let mut dw: Vec<f32> = edited.iter().zip(example).map(|(e, x)| e - x).collect();
    mask.zero_outside(&mut dw);
    dw
}

/// Section 3: n = d* / ||d*||; None when d* is zero.
pub fn unit_direction(d: &[f32]) -> Option<Vec<f32>> {
    let norm = dot(d, d).sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| d.iter().map(|&x| (x as f64 / norm) as f32).collect())
}

/// Section 3: alpha_i = (w0' - w_i) . n, written as t - w_i . n where
/// t = w0' . n is the example's hyperplane offset.
pub fn alpha(offset: f64, n: &[f32], w: &[f32]) -> f64 {
    alpha_from_projection(offset, dot(w, n))
}

/// [`alpha`] from the projection w_i . n computed earlier: a slider that
/// moves t changes every alpha by one subtraction.
pub fn alpha_from_projection(offset: f64, projection: f64) -> f64 {
    offset - projection
}

/// Section 3, the transfer: w_i' = w_i + alpha_i n.
pub fn transfer(w: &[f32], alpha: f64, n: &[f32]) -> Vec<f32> {
    w.iter().zip(n).map(|(&x, &d)| (x as f64 + alpha * d as f64) as f32).collect()
}

/// Section 4, interactive strength: the example moved by a along n lies on
/// the hyperplane t = (w0 + a n) . n = w0 . n + a (n is a unit vector).
pub fn interactive_offset(example: &[f32], n: &[f32], strength: f64) -> f64 {
    dot(example, n) + strength
}

/// Float64 dot product of two float32 vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Which W+ rows an edit may change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowMask {
    rows: Vec<bool>,
    w_dim: usize,
}

impl RowMask {
    /// Every row of a num_ws x w_dim latent.
    pub fn all(num_ws: usize, w_dim: usize) -> Self {
        RowMask { rows: vec![true; num_ws], w_dim }
    }

    /// The first k rows (k = 0 or k >= num_ws means all), as in the
    /// authors' demo code, which edits rows 0..5.
    pub fn first(k: usize, num_ws: usize, w_dim: usize) -> Self {
        let k = if k == 0 { num_ws } else { k.min(num_ws) };
        RowMask { rows: (0..num_ws).map(|r| r < k).collect(), w_dim }
    }

    /// A mask from explicit per-row flags; None when no row is editable.
    pub fn from_rows(rows: Vec<bool>, w_dim: usize) -> Option<Self> {
        rows.iter().any(|&r| r).then_some(RowMask { rows, w_dim })
    }

    /// Per-row flags.
    pub fn rows(&self) -> &[bool] {
        &self.rows
    }

    /// Indices of the editable rows.
    pub fn row_indices(&self) -> Vec<i64> {
        (0..self.rows.len()).filter(|&r| self.rows[r]).map(|r| r as i64).collect()
    }

    /// Sets every element of a flattened latent outside the mask to zero.
    pub fn zero_outside(&self, v: &mut [f32]) {
        for (r, chunk) in v.chunks_mut(self.w_dim).enumerate() {
            if !self.rows[r] {
                chunk.fill(0.0);
            }
        }
    }
}
