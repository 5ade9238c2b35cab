//! The images a page edits: seeds of the model, or a folder of latents
//! (raw `.f32` files) and photos inverted by `editone invert`.

use crate::refusal::Refusal;
use editone::invert::Photo;
use editone::model::Model;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

/// One image of a page.
pub struct Item {
    /// Shown on the page: "seed 3" or the file's name.
    pub label: String,
    /// Its name in the zip export, without ".png".
    pub file_stem: String,
    /// How the alphas file names it: {"seed": 3} or {"photo": "NAME"}, as
    /// `editone apply --json` does.
    pub key: Value,
    /// Flattened W+.
    pub w: Vec<f32>,
    /// The photo it was inverted from, rendered residually; it keeps its
    /// own latent's render, so each update renders only the edited latent.
    pub photo: Option<Photo>,
}

/// Where a page's images come from.
pub enum Source {
    /// The example is the first seed, the batch the next; `class` for
    /// conditional models.
    Seeds { seeds: Vec<u64>, class: Option<usize> },
    /// The example is the folder's first latent, the batch the next.
    Folder(Vec<Arc<Item>>),
}

impl Source {
    /// The example and up to `count` batch images (a folder may hold fewer).
    pub fn items(&self, model: &Model, count: usize) -> Result<Vec<Arc<Item>>, Refusal> {
        match self {
            Source::Folder(items) => Ok(items.iter().take(count + 1).cloned().collect()),
            Source::Seeds { seeds, class } => {
                let mut chosen: Vec<u64> = seeds.iter().copied().take(count + 1).collect();
                let mut next = seeds.iter().max().map_or(0, |m| m + 1);
                while chosen.len() < count + 1 {
                    chosen.push(next);
                    next += 1;
                }
                chosen.into_iter().map(|seed| seed_item(model, seed, *class)).collect()
            }
        }
    }
}

fn seed_item(model: &Model, seed: u64, class: Option<usize>) -> Result<Arc<Item>, Refusal> {
    Ok(Arc::new(Item {
        label: format!("seed {seed}"),
        file_stem: format!("seed{seed:04}"),
        key: json!({"seed": seed}),
        w: model.latent_from_seed(seed, class, 1.0)?,
        photo: None,
    }))
}

/// The first `limit` `NAME.f32` in `dir`, in name order (a page never
/// shows more): each a W or W+ latent of `model`, with `NAME-photo.png` as
/// its photo when present (what `editone invert --out DIR` writes). At
/// least two are needed: an example and a batch.
pub fn load_folder(model: &Model, dir: &Path, limit: usize) -> Result<Vec<Arc<Item>>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".f32").map(str::to_string))
        .collect();
    names.sort();
    if names.len() < 2 {
        return Err(format!("{}: holds {} .f32 latents; give at least 2 (the first is the example)", dir.display(), names.len()));
    }
    names.truncate(limit);
    names.iter().map(|name| folder_item(model, dir, name).map(Arc::new)).collect()
}

fn folder_item(model: &Model, dir: &Path, name: &str) -> Result<Item, String> {
    let info = model.info();
    let path = dir.join(format!("{name}.f32"));
    let shape = editone::edit::LatentShape::of(info);
    // A W+ latent at most: a larger file is not one of this model's.
    let bytes = editone::files::read_capped(&path, "latent", shape.len() as u64 * 4).map_err(|e| e.to_string())?;
    let floats: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let fits = bytes.len() % 4 == 0 && floats.iter().all(|x| x.is_finite());
    let w = if fits { shape.to_wplus(&floats, "latent").ok() } else { None }.ok_or_else(|| {
        format!(
            "{}: not a latent of this model ({} or {} little-endian float32, all finite)",
            path.display(),
            info.w_dim,
            info.num_ws * info.w_dim
        )
    })?;
    let photo_path = dir.join(format!("{name}-photo.png"));
    let photo = if photo_path.is_file() { Some(photo_item(model, &photo_path, &w)?) } else { None };
    let key = if photo.is_some() { json!({"photo": name}) } else { json!({"latent": name}) };
    Ok(Item { label: name.to_string(), file_stem: name.to_string(), key, w, photo })
}

/// The photo at `path` with `w` as its inverted latent; its latent is
/// rendered now, so that a bad model or photo fails at start, not on the page.
fn photo_item(model: &Model, path: &Path, w: &[f32]) -> Result<Photo, String> {
    let failed = |e: editone::Error| format!("{}: {e}", path.display());
    let image = editone::render::load(path).map_err(failed)?;
    let photo = editone::invert::photo(&image, w.to_vec()).map_err(failed)?;
    let _rendered = photo.base_render(model).map_err(failed)?;
    Ok(photo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_latent(dir: &Path, name: &str, floats: &[f32]) {
        let bytes: Vec<u8> = floats.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(dir.join(format!("{name}.f32")), bytes).unwrap();
    }

    #[test]
    fn folders_of_latents_and_photos_load_and_bad_ones_are_refused() {
        let model = Model::load_default(editone::Engine::get().unwrap().placement()).expect("make setup installs the default model");
        let w_dim = model.info().w_dim;
        let dir = std::env::temp_dir().join(format!("editone-studio-items-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_latent(&dir, "a", &model.latent_from_seed(1, None, 1.0).unwrap());
        write_latent(&dir, "b", &vec![0.5; w_dim]);
        let photo = image::RgbImage::from_pixel(90, 60, image::Rgb([200, 100, 50]));
        photo.save(dir.join("b-photo.png")).unwrap();

        let items = load_folder(&model, &dir, 49).unwrap();
        assert_eq!(items.iter().map(|i| i.label.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(items[0].key, json!({"latent": "a"}));
        assert_eq!(items[1].key, json!({"photo": "b"}));
        let photo = items[1].photo.as_ref().expect("b has a photo");
        assert_eq!(photo.crop, [15, 0, 60, 60]);
        assert_eq!(photo.base_render(&model).unwrap().size(), [3, 64, 64]);

        write_latent(&dir, "c", &[1.0, 2.0, 3.0]);
        let err = load_folder(&model, &dir, 49).err().unwrap();
        assert!(err.contains("c.f32") && err.contains("not a latent of this model"), "{err}");
        write_latent(&dir, "c", &vec![f32::NAN; w_dim]);
        assert!(load_folder(&model, &dir, 49).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        let empty = load_folder(&model, &std::env::temp_dir().join("editone-no-such-folder"), 49).err().unwrap();
        assert!(empty.contains("editone-no-such-folder"), "{empty}");
    }
}
