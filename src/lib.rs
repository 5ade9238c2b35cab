//! editone: interactive batch image editing with generative models
//! ("Edit One for All", CVPR 2024), as a Rust library with a C ABI.
//!
//! Module map:
//! - [`engine`]: the process-wide device and thread settings.
//! - [`model`]: the generator trait, native StyleGAN2, model files.
//! - [`edit`]: the paper's method: example edits, d*, transfer, presets.
//! - [`progress`]: progress callbacks and cancellation.
//! - [`profile`]: where work spends its time, from libtorch's profiler.
//! - [`invert`]: projecting photos into the latent space; residual rendering.
//! - [`seed`]: latent seeds identical to the official scripts' numpy draws.
//! - [`render`]: generator output to pixels and image files.
//! - [`ffi`]: the C API (include/editone.h); translation and checks only.
//! - [`files`]: bounded reads and atomic writes of the user's files.
//! - [`error`]: the error type every layer returns.

// Tensor code writes `x = x * y`, not `x *= y`: tch's compound operators
// run in place and would overwrite tensors that autograd still needs.
#![allow(clippy::assign_op_pattern)]
// Every unsafe operation sits in its own block with a SAFETY note, unsafe fns included.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod edit;
pub mod engine;
pub mod invert;
pub mod error;
pub mod faces;
mod ffi;
pub mod files;
pub mod model;
pub mod profile;
pub mod progress;
pub mod render;
pub mod seed;
pub mod tune;

pub use engine::{Engine, EngineOptions};
pub use error::{Error, ErrorKind, Result};
pub use model::{Model, ModelInfo, NoiseMode, Truncation};
