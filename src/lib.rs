//! editone: interactive batch image editing with generative models
//! ("Edit One for All", CVPR 2024), as a Rust library with a C ABI.
//!
//! Module map:
//! - [`engine`]: the process-wide device and thread settings.
//! - [`model`]: the generator trait, native StyleGAN2, model files.
//! - [`seed`]: latent seeds identical to the official scripts' numpy draws.
//! - [`error`]: the error type every layer returns.

pub mod engine;
pub mod error;
pub mod model;
pub mod seed;

pub use engine::{Engine, EngineOptions};
pub use error::{Error, ErrorKind, Result};
pub use model::{Model, ModelInfo, NoiseMode, Truncation};
