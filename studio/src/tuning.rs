//! `--folder DIR --tune` (issue 22): once the folder's photos are inverted,
//! one copy of the generator is tuned on all of them together (pivotal
//! tuning, `editone::tune`), and the folder's items render through it. The
//! latents, and so every direction, d* and alpha, stay the base model's: a
//! tuned generator shares its base's latent space and changes only pixels.

use crate::items::Item;
use editone::invert::{psnr, Photo};
use editone::model::Model;
use editone::tune::{self, TuneOptions};
use std::sync::Arc;
use std::time::Instant;

/// Progress lines a tuning logs between its first and last (one a tenth).
const PROGRESS_LINES: u64 = 10;

/// Photos rendered at once to measure the fit: bounds the memory a
/// folder of large photos' latents needs on a big model.
const MEASURE_CHUNK: usize = 8;

/// A generator tuned from `base` for `steps` steps on the photos of
/// `items` (their faces, whole photos, and latents that have a photo);
/// their latents are the pivots. `log` hears the start, every tenth of the
/// steps, and the photos' mean PSNR before and after, so that the user
/// sees what the wait bought. Interrupting the process stops it; nothing
/// is written.
pub fn tune_folder(base: &Model, items: &[Arc<Item>], steps: u32, log: &mut dyn FnMut(&str)) -> Result<Model, String> {
    let photos: Vec<&Photo> = items.iter().filter_map(|item| item.photo.as_ref()).collect();
    if photos.is_empty() {
        return Err("--tune: the folder holds no photos to tune on, only latents without a NAME-photo.png".into());
    }
    let failed = |e: editone::Error| format!("tuning: {e}");
    let before = mean_psnr(base, &photos).map_err(failed)?;
    let options = TuneOptions { steps, ..TuneOptions::default() };
    let plural = if photos.len() == 1 { "" } else { "s" };
    log(&format!("tuning the generator on {} photo{plural} together ({steps} steps)…", photos.len()));
    let t0 = Instant::now();
    let mut logged = 0;
    let mut progress = |_: &str, done: u64, total: u64| {
        let tenth = done * PROGRESS_LINES / total.max(1);
        if tenth > logged && done < total {
            logged = tenth;
            log(&format!("tuning: step {done} of {total} ({:.0} s)", t0.elapsed().as_secs_f64()));
        }
        true
    };
    let tuned = tune::tune(base, &photos, &options, Some(&mut progress)).map_err(failed)?;
    let seconds = t0.elapsed().as_secs_f64();
    let after = mean_psnr(&tuned, &photos).map_err(failed)?;
    log(&format!(
        "tuned in {seconds:.1} s: the photos' latents now render at {after:.1} dB mean PSNR against their photos ({before:.1} dB before)"
    ));
    Ok(tuned)
}

/// The mean PSNR of `model`'s renders of the photos' latents against what
/// they were inverted from (each face's aligned crop, each whole photo's
/// square), at the model's resolution.
fn mean_psnr(model: &Model, photos: &[&Photo]) -> editone::Result<f64> {
    let resolution = model.info().resolution as u32;
    let mut sum = 0.0;
    for chunk in photos.chunks(MEASURE_CHUNK) {
        let latents: Vec<&[f32]> = chunk.iter().map(|photo| photo.base()).collect();
        let renders = model.render(&latents)?;
        for (k, photo) in chunk.iter().enumerate() {
            sum += psnr(&renders.get(k as i64), &photo.target(resolution)?.get(0));
        }
    }
    Ok(sum / photos.len() as f64)
}
