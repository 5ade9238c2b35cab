//! Presets: an edit saved as JSON so it can be applied to new images in a
//! later session. Floats are stored as the float64 value of each float32,
//! which round-trips bit for bit.

use super::method::{self, RowMask};
use super::{Edit, LatentShape, OptimizeOptions, OptimizeReport};
use crate::error::{Error, ErrorKind, Result};
use crate::files::{self, Existing};
use crate::model::weights::fnv1a64;
use crate::model::Model;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

const FORMAT: &str = "editone-preset";
/// Version 2 added the checksum; version 1 presets still load, checked
/// by their geometry alone.
const VERSION: u32 = 2;
/// Presets are small (three latents); anything far larger is not one.
const MAX_BYTES: u64 = 64 << 20;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetFile {
    format: String,
    version: u32,
    model: ModelStamp,
    example: Vec<f64>,
    edited: Vec<f64>,
    mask: Vec<bool>,
    direction: Vec<f64>,
    offset: f64,
    strength: f64,
    optimized: Option<Optimized>,
    /// FNV-1a 64 of the preset's JSON without this field: a damaged or
    /// hand-edited value anywhere is caught, even where no invariant ties
    /// it to the others (w0' once d* is optimised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checksum: Option<String>,
}

#[derive(Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ModelStamp {
    fingerprint: String,
    architecture: String,
    num_ws: usize,
    w_dim: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Optimized {
    options: OptimizeOptions,
    report: OptimizeReport,
}

/// The model a preset is for: its latent space, so that a preset made on
/// a base model applies to every model tuned from it, and the reverse.
fn stamp(model: &Model) -> ModelStamp {
    let info = model.info();
    ModelStamp {
        fingerprint: model.latent_space().to_string(),
        architecture: info.architecture.clone(),
        num_ws: info.num_ws,
        w_dim: info.w_dim,
    }
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Narrows stored floats back to float32, refusing any that are not exactly
/// a float32 (a hand-edited or corrupted file).
fn narrow(v: &[f64], what: &str, len: usize) -> Result<Vec<f32>> {
    if v.len() != len {
        return Err(Error::format(format!("preset field '{what}' has {} values, expected {len}", v.len())));
    }
    v.iter()
        .map(|&x| {
            let y = x as f32;
            if y.is_finite() && y as f64 == x {
                Ok(y)
            } else {
                Err(Error::format(format!("preset field '{what}' holds {x}, which is not a finite float32")))
            }
        })
        .collect()
}

/// Writes `edit`, made with `model`, to `path` atomically; an existing
/// file is replaced only with [`Existing::Replace`].
pub fn save(edit: &Edit, model: &Model, path: &Path, existing: Existing) -> Result<()> {
    let text = to_json(edit, model)?;
    files::write_atomic(path, existing, |out| {
        out.write_all(text.as_bytes()).map_err(|e| Error::new(ErrorKind::Io, format!("preset '{}': {e}", path.display())))
    })
}

/// The preset file's text for `edit`, made with `model`.
pub fn to_json(edit: &Edit, model: &Model) -> Result<String> {
    let mut file = PresetFile {
        format: FORMAT.into(),
        version: VERSION,
        model: stamp(model),
        example: widen(edit.example()),
        edited: widen(edit.edited()),
        mask: edit.mask().rows().to_vec(),
        direction: widen(edit.direction()),
        offset: edit.offset(),
        strength: edit.strength(),
        optimized: edit.optimized().map(|(options, report)| Optimized { options: options.clone(), report: report.clone() }),
        checksum: None,
    };
    file.checksum = Some(checksum(&file)?);
    serde_json::to_string_pretty(&file).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))
}

/// The checksum of a preset's fields (`file.checksum` None): FNV-1a 64
/// over their compact JSON, which leaves out the absent checksum. Parsing
/// gives back the very floats that were written (float_roundtrip), so a
/// loaded preset hashes as it was saved.
fn checksum(file: &PresetFile) -> Result<String> {
    debug_assert!(file.checksum.is_none(), "the checksum is not part of what it sums");
    let text = serde_json::to_string(file).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
    Ok(format!("fnv1a64:{:016x}", fnv1a64(text.as_bytes())))
}

/// Reads a preset for `model`. A preset made for another model is
/// [`ErrorKind::Incompatible`]; anything malformed is [`ErrorKind::Format`].
pub fn load(model: &Model, path: &Path) -> Result<Edit> {
    let in_file = |e: Error| e.context(format!("preset '{}'", path.display()));
    let text = files::read_capped(path, "preset", MAX_BYTES)?;
    let mut file: PresetFile =
        serde_json::from_slice(&text).map_err(|e| in_file(Error::format(format!("not a valid preset: {e}"))))?;
    if file.format != FORMAT || !(1..=VERSION).contains(&file.version) {
        return Err(in_file(Error::format(format!(
            "format '{}' version {} is not '{FORMAT}' version 1 to {VERSION}",
            file.format, file.version
        ))));
    }
    let stored = file.checksum.take();
    if file.version >= 2 && stored.as_deref() != Some(&checksum(&file)?) {
        return Err(in_file(Error::format("it is damaged or was edited by hand: its checksum does not match its content")));
    }
    let ours = stamp(model);
    if file.model != ours {
        return Err(in_file(Error::new(
            ErrorKind::Incompatible,
            format!(
                "made for model {} ({}, {}x{}), not this one {} ({}, {}x{})",
                file.model.fingerprint,
                file.model.architecture,
                file.model.num_ws,
                file.model.w_dim,
                ours.fingerprint,
                ours.architecture,
                ours.num_ws,
                ours.w_dim
            ),
        )));
    }
    build(&file, LatentShape::of(model.info())).map_err(in_file)
}

/// Until d* is optimised the direction is the naive one, w0' - w0 on the
/// editable rows, as the edit computed it in float32: a preset whose three
/// latents disagree has been damaged.
fn check_naive_direction(example: &[f32], edited: &[f32], mask: &RowMask, direction: &[f32]) -> Result<()> {
    let naive = method::naive_direction(example, edited, mask);
    let scale = naive.iter().chain(direction).fold(0f32, |m, x| m.max(x.abs()));
    let worst = naive.iter().zip(direction).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    // NaN compares false: a NaN gap is a disagreement too.
    if worst.is_nan() || worst > 1e-6 * scale {
        return Err(Error::format(format!(
            "its fields disagree: 'direction' should be 'edited' minus 'example' on the editable rows (off by {worst:e})"
        )));
    }
    Ok(())
}

fn build(file: &PresetFile, shape: LatentShape) -> Result<Edit> {
    let example = narrow(&file.example, "example", shape.len())?;
    let edited = narrow(&file.edited, "edited", shape.len())?;
    let direction = narrow(&file.direction, "direction", shape.len())?;
    if file.mask.len() != shape.num_ws {
        return Err(Error::format(format!("mask has {} rows, expected {}", file.mask.len(), shape.num_ws)));
    }
    let mask = RowMask::from_rows(file.mask.clone(), shape.w_dim).ok_or_else(|| Error::format("mask selects no row"))?;
    let optimized = file.optimized.as_ref().map(|o| (o.options.clone(), o.report.clone()));
    if optimized.is_none() {
        check_naive_direction(&example, &edited, &mask, &direction)?;
    }
    let edit = Edit::from_parts(shape, example, edited, mask, direction, file.strength, optimized)
        .map_err(|e| Error::format(e.message))?;
    let offset = method::interactive_offset(edit.example(), edit.unit_direction(), edit.strength());
    if !file.offset.is_finite() || (offset - file.offset).abs() > 1e-9 * (1.0 + offset.abs()) {
        return Err(Error::format(format!("offset {} disagrees with the direction and strength ({offset})", file.offset)));
    }
    Ok(edit)
}
