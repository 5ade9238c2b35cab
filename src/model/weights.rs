//! Defensive reading of safetensors weight files: every tensor is checked
//! by name, dtype and shape before it becomes a libtorch tensor, and every
//! complaint names the file and the tensor.

use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Largest weights file read (a model folder's weights.safetensors).
const MAX_WEIGHT_BYTES: u64 = 4 << 30;

/// The raw bytes of a safetensors file, validated once.
pub struct WeightFile {
    path: PathBuf,
    bytes: Vec<u8>,
}

/// A model's named tensors, taken one by one; whatever is left at the end
/// is an error (an extra tensor means the config is wrong).
pub struct Weights<'a> {
    source: String,
    tensors: BTreeMap<String, Stored<'a>>,
    device: Device,
}

/// A tensor still in a safetensors file, or already read from a checkpoint.
enum Stored<'a> {
    View(safetensors::tensor::TensorView<'a>),
    Tensor(Tensor),
}

impl WeightFile {
    /// Reads `path` whole; the safetensors header is validated by [`Self::parse`].
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = crate::files::read_capped(path, "model file", MAX_WEIGHT_BYTES)?;
        Ok(WeightFile { path: path.to_path_buf(), bytes })
    }

    /// Wraps bytes already read from `path`.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Self {
        WeightFile { path: path.to_path_buf(), bytes }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The free-form metadata of the header (where single-file models keep
    /// their config).
    pub fn metadata(&self) -> Result<BTreeMap<String, String>> {
        let (_, meta) = SafeTensors::read_metadata(&self.bytes).map_err(|e| self.malformed(e))?;
        Ok(meta.metadata().clone().map(|m| m.into_iter().collect()).unwrap_or_default())
    }

    /// Validates the header and the data layout and indexes the tensors.
    pub fn parse(&self, device: Device) -> Result<Weights<'_>> {
        let tensors = SafeTensors::deserialize(&self.bytes).map_err(|e| self.malformed(e))?;
        let tensors = tensors.tensors().into_iter().map(|(name, view)| (name, Stored::View(view))).collect();
        Ok(Weights { source: format!("model file '{}'", self.path.display()), tensors, device })
    }

    /// The tensor data section: everything after the 8-byte header length
    /// and the header it gives.
    pub fn data(&self) -> Result<&[u8]> {
        let (header_len, _) = SafeTensors::read_metadata(&self.bytes).map_err(|e| self.malformed(e))?;
        Ok(&self.bytes[8 + header_len..])
    }

    /// A stable 64-bit fingerprint of the file's content (FNV-1a over the
    /// bytes), so presets can tell which model they were made for.
    pub fn fingerprint(&self) -> String {
        format!("fnv1a64:{:016x}", fnv1a64(&self.bytes))
    }

    fn malformed(&self, e: safetensors::SafeTensorError) -> Error {
        Error::format(format!("model file '{}' is not a valid safetensors file: {e:?}", self.path.display()))
    }
}

/// FNV-1a, 64 bit: simple, stable across platforms and Rust versions.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_continue(0xcbf2_9ce4_8422_2325, bytes)
}

/// FNV-1a 64 of `bytes` continued from the state `hash`, so that several
/// pieces hash as if they were one.
pub fn fnv1a64_continue(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

impl<'a> Weights<'a> {
    /// Tensors read from a checkpoint (CPU, any floating kind), described
    /// as `source` in messages.
    pub fn from_tensors(source: String, tensors: BTreeMap<String, Tensor>, device: Device) -> Weights<'static> {
        let tensors = tensors.into_iter().map(|(name, t)| (name, Stored::Tensor(t))).collect();
        Weights { source, tensors, device }
    }

    /// Removes tensor `name`, which must have exactly `shape`, and returns
    /// it as float32 on the engine's device.
    pub fn take(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let source = &self.source;
        let stored = self.tensors.remove(name).ok_or_else(|| Error::format(format!("{source}: tensor {name} is missing")))?;
        let found = stored.shape();
        if found != shape {
            return Err(Error::format(format!(
                "{source}: tensor {name} has shape {}, expected {}",
                fmt_shape(&found),
                fmt_shape(shape)
            )));
        }
        let tensor = match stored {
            Stored::Tensor(t) => t,
            Stored::View(view) => {
                let kind = match view.dtype() {
                    Dtype::F32 => Kind::Float,
                    Dtype::F16 => Kind::Half,
                    Dtype::BF16 => Kind::BFloat16,
                    Dtype::F64 => Kind::Double,
                    other => {
                        return Err(Error::format(format!(
                            "{source}: tensor {name} has dtype {other:?}; expected a floating-point type"
                        )))
                    }
                };
                Tensor::f_from_data_size(view.data(), shape, kind)?
            }
        };
        if !tensor.is_floating_point() {
            return Err(Error::format(format!("{source}: tensor {name} is not floating-point")));
        }
        let tensor = tensor.f_to_kind(Kind::Float)?.f_to_device(self.device)?;
        ensure_finite(&tensor).map_err(|_| Error::format(format!("{source}: tensor {name} contains NaN or Inf")))?;
        Ok(tensor)
    }

    /// Like [`Self::take`] for a tensor that older exports may omit.
    pub fn take_optional(&mut self, name: &str, shape: &[i64]) -> Result<Option<Tensor>> {
        if self.tensors.contains_key(name) {
            self.take(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The names and shapes of the tensors not taken yet.
    pub fn names_and_shapes(&self) -> Vec<(String, Vec<i64>)> {
        self.tensors.iter().map(|(name, t)| (name.clone(), t.shape())).collect()
    }

    /// The device taken tensors are placed on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Fails if any tensor was not taken: the file does not match its config.
    pub fn finish(self) -> Result<()> {
        match self.tensors.keys().next() {
            None => Ok(()),
            Some(first) => Err(Error::format(format!(
                "{}: unexpected tensor {first} ({} extra in all); the file does not match its config",
                self.source,
                self.tensors.len()
            ))),
        }
    }
}

impl Stored<'_> {
    fn shape(&self) -> Vec<i64> {
        match self {
            Stored::View(view) => view.shape().iter().map(|&d| d as i64).collect(),
            Stored::Tensor(t) => t.size(),
        }
    }
}

/// Fails unless every element of `t` is finite.
pub fn ensure_finite(t: &Tensor) -> Result<()> {
    let all_finite = t.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0;
    if all_finite {
        Ok(())
    } else {
        Err(Error::invalid("contains NaN or Inf"))
    }
}

/// `[a,b,c]`, the way the error messages print shapes.
pub fn fmt_shape(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(","))
}
