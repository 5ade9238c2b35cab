//! Unsupervised directions by SeFa (Shen and Zhou, CVPR 2021;
//! docs/method.md section 7): the top eigenvectors of A^T A, where A holds
//! the weights that first act on the latent.

use crate::error::{Error, Result};
use crate::model::Model;
use std::ops::Range;
use tch::{Device, Kind};

/// A semantic direction in W and its eigenvalue.
#[derive(Clone, Debug, PartialEq)]
pub struct Direction {
    /// Unit vector of w_dim floats.
    pub vector: Vec<f32>,
    /// Eigenvalue of A^T A (how strongly the layers react to it).
    pub eigenvalue: f64,
}

/// The top `k` directions, strongest first, for the layers fed by W+ rows
/// `rows` (all when None). Each vector's sign is fixed so its largest
/// component is positive, which makes the result identical across runs.
pub fn directions(model: &Model, k: usize, rows: Option<Range<usize>>) -> Result<Vec<Direction>> {
    let w_dim = model.info().w_dim;
    if k == 0 || k > w_dim {
        return Err(Error::invalid(format!("k = {k}: ask for 1..={w_dim} directions")));
    }
    let a = model.latent_weights(rows)?.to_device(Device::Cpu).to_kind(Kind::Double);
    let gram = a.tr().matmul(&a);
    let (values, vectors) = gram.f_linalg_eigh("L")?;
    let values = Vec::<f64>::try_from(&values)?;
    (0..k)
        .map(|i| {
            let column = w_dim - 1 - i; // eigh sorts eigenvalues ascending
            let v = Vec::<f64>::try_from(vectors.select(1, column as i64))?;
            let largest = v.iter().copied().fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
            let sign = if largest < 0.0 { -1.0 } else { 1.0 };
            Ok(Direction { vector: v.iter().map(|x| (sign * x) as f32).collect(), eigenvalue: values[column] })
        })
        .collect()
}
