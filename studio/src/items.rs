//! The images a page edits: seeds of the model, or a folder of latents
//! (raw `.f32` files, with the photos `editone invert` wrote beside them)
//! and photos, whose faces are found and inverted when the studio starts.

use crate::inverted;
use crate::refusal::Refusal;
use editone::faces::align::Similarity;
use editone::faces::mtcnn::{DetectOptions, Detector};
use editone::faces::{self, Face};
use editone::invert::{InvertOptions, Photo, PhotoFace};
use editone::model::Model;
use image::RgbImage;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Longest side of the composited photos the page shows while editing:
/// whatever the photo's size, a slider step composites and encodes at most
/// this many pixels a side. The zip export has the photos at full size.
pub const DISPLAY_SIDE: u32 = 1024;

/// One image of a page.
pub struct Item {
    /// Shown on the page: "seed 3", the file's name, or "NAME face 2".
    pub label: String,
    /// Its name in the zip export, without ".png".
    pub file_stem: String,
    /// How the alphas file names it: {"seed": 3}, {"photo": "NAME"},
    /// {"latent": "NAME"} as `editone apply --json` does, or {"photo":
    /// "NAME", "face": 2} for a face of a photo.
    pub key: Value,
    /// Flattened W+.
    pub w: Vec<f32>,
    /// The photo it was inverted from, rendered residually; it keeps its
    /// own latent's render, so each update renders only the edited latent.
    /// For a face, the whole photo with this face's place in it.
    pub photo: Option<Photo>,
    /// For a face of a photo: the photo as the page shows it, and the face
    /// as the model sees it.
    pub face: Option<FaceOf>,
}

/// A face of a photo in the folder.
pub struct FaceOf {
    /// The photo, shared by the items of all its faces.
    pub picture: Arc<Picture>,
    /// The face's number in the photo, from 1, largest first (the
    /// detector's order).
    pub number: usize,
    /// The face's aligned crop, as the model sees it: [3, R, R] in [-1, 1],
    /// flattened. Its tile is this crop plus the edit's change, so drag
    /// points on it are model pixels.
    pub aligned: Vec<f32>,
    /// The face on the photo's display copy ([`Picture::display`]): the
    /// page's composited photo pastes it there.
    pub shown: Photo,
}

/// A photo of the folder whose faces are items.
pub struct Picture {
    /// Its file name without the extension.
    pub name: String,
    /// Its size in pixels.
    pub size: (u32, u32),
    /// Faces the detector found in it; fewer are items when the folder
    /// holds more faces than a page shows.
    pub faces_found: usize,
    /// The photo scaled to fit [`DISPLAY_SIDE`] (the photo itself when it
    /// fits), shared by the faces' `shown` photos.
    pub display: Arc<RgbImage>,
}

/// Where a page's images come from.
pub enum Source {
    /// The example is the first seed, the batch the next; `class` for
    /// conditional models.
    Seeds { seeds: Vec<u64>, class: Option<usize> },
    /// The example is the folder's first item, the batch the next.
    Folder(Folder),
}

/// The items of a `--folder`, and what the page should be told about them.
pub struct Folder {
    /// Latents, faces and whole photos, in the order the page shows them.
    pub items: Vec<Arc<Item>>,
    /// The model every item of the folder renders through: the studio's
    /// model, or with `--tune` the generator tuned on the folder's photos
    /// (its latent space is the studio model's, so latents and edits mean
    /// the same on both).
    pub renders: Arc<Model>,
    /// Sentences for the page and the log: photos without a face, faces
    /// left out.
    pub notes: Vec<String>,
}

impl Source {
    /// The example and up to `count` batch images (a folder may hold fewer).
    pub fn items(&self, model: &Model, count: usize) -> Result<Vec<Arc<Item>>, Refusal> {
        match self {
            Source::Folder(folder) => Ok(folder.items.iter().take(count + 1).cloned().collect()),
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

    /// The model the images render through: `base` (the studio's model)
    /// for seeds, the folder's for a folder.
    pub fn renders<'a>(&'a self, base: &'a Arc<Model>) -> &'a Arc<Model> {
        match self {
            Source::Folder(folder) => &folder.renders,
            Source::Seeds { .. } => base,
        }
    }

    /// What the page should be told about the images.
    pub fn notes(&self) -> &[String] {
        match self {
            Source::Folder(folder) => &folder.notes,
            Source::Seeds { .. } => &[],
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
        face: None,
    }))
}

/// A file of a folder that becomes items.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    /// `NAME.f32`: a latent (with `NAME-photo.png` as its photo if there).
    Latent(String),
    /// A PNG or JPEG that no latent claims: its faces, or the whole photo.
    Photo { file: String, name: String },
    /// `NAME.faces.f32`, the faces `editone invert --faces` inverted, read
    /// back with `NAME.json` and `NAME-photo.png` ([`inverted`]).
    FaceSet(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Latent(name) | Entry::Photo { name, .. } | Entry::FaceSet(name) => name,
        }
    }

    /// The file it is named for.
    fn file(&self) -> String {
        match self {
            Entry::Latent(name) => format!("{name}.f32"),
            Entry::FaceSet(name) => format!("{name}.faces.f32"),
            Entry::Photo { file, .. } => file.clone(),
        }
    }
}

/// The folder's latents and photos by name, as `editone invert` leaves
/// them: `NAME-photo.png` and `NAME-reconstruction.png` beside a
/// `NAME.f32` belong to that latent, not photos of their own, and so do
/// those beside a `NAME.faces.f32` (`--faces`). Hidden files (the
/// temporary names of a write under way) are skipped.
fn entries(files: &[String]) -> Vec<Entry> {
    let visible = || files.iter().filter(|f| !f.starts_with('.'));
    let named = |suffix: &'static str| visible().filter_map(move |f| f.strip_suffix(suffix)).filter(|n| !n.is_empty());
    let sets: Vec<&str> = named(".faces.f32").collect();
    let latents: Vec<&str> = named(".f32").filter(|n| !n.ends_with(".faces")).collect();
    let owner = |stem: &str, suffix: &str, of: &[&str]| stem.strip_suffix(suffix).is_some_and(|o| of.contains(&o));
    let mut found: Vec<Entry> = latents.iter().map(|n| Entry::Latent(n.to_string())).collect();
    found.extend(sets.iter().map(|n| Entry::FaceSet(n.to_string())));
    for file in visible() {
        let Some((stem, ext)) = file.rsplit_once('.') else { continue };
        if stem.is_empty() || !["png", "jpg", "jpeg"].iter().any(|e| ext.eq_ignore_ascii_case(e)) {
            continue;
        }
        let claimed = [&latents, &sets].iter().any(|of| owner(stem, "-photo", of) || owner(stem, "-reconstruction", of));
        if !claimed {
            found.push(Entry::Photo { file: file.clone(), name: stem.to_string() });
        }
    }
    let rank = |e: &Entry| match e {
        Entry::Latent(_) => 0,
        Entry::FaceSet(_) => 1,
        Entry::Photo { .. } => 2,
    };
    found.sort_by(|a, b| (a.name(), rank(a)).cmp(&(b.name(), rank(b))));
    found
}

/// How a folder's photos are inverted.
pub struct FolderOptions {
    /// Items a page can show at most: the folder's first ones are loaded.
    pub limit: usize,
    /// Projector steps per photo; None for the model's default.
    pub invert_steps: Option<u32>,
    /// Whether the caller tunes a generator on the folder's images itself
    /// (`--tune`): a tuned model the folder holds is then not used.
    pub retune: bool,
}

/// The first `options.limit` items of `dir`, in name order:
/// - each `NAME.f32` is a W or W+ latent of `model`, with
///   `NAME-photo.png` as its photo when present (what `editone invert
///   --out DIR` writes);
/// - every other PNG or JPEG is searched for faces; each face becomes an
///   item ("NAME face 2"), the faces of one photo inverted together and
///   sharing it. A photo without a face is inverted whole (its centred
///   square) and edited as today's photos are, with a note saying so.
///
/// - each `NAME.faces.f32` with its `NAME.json` and `NAME-photo.png`
///   ('editone invert --faces') gives the faces of that photo, read back
///   rather than found and inverted again.
///
/// At least two items are needed: an example and a batch. `log` hears
/// about each photo as it is inverted (a start can take a while).
/// Its items render through `model`, or through the folder's tuned model
/// ('editone invert --faces --tune') when its manifest vouches for every
/// item, unless `options.retune`.
pub fn load_folder(model: &Arc<Model>, dir: &Path, options: &FolderOptions, log: &mut dyn FnMut(&str)) -> Result<Folder, String> {
    let listing = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let files: Vec<String> = listing.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    let entries = entries(&files);
    let mut folder = Folder { items: Vec::new(), notes: Vec::new(), renders: Arc::clone(model) };
    let mut detector = None;
    // The faces a tuned model of the folder must have been tuned on.
    let mut sets = Vec::new();
    let tuned_run = !options.retune && inverted::has_tuned_files(dir);
    if let Some(other) = entries.iter().find(|e| tuned_run && !matches!(e, Entry::FaceSet(_))) {
        let what = format!("'{}' is not one of the faces its tuned model was tuned on", other.file());
        return Err(inverted::not_tuned_together(dir, &what));
    }
    for entry in &entries {
        let room = options.limit.saturating_sub(folder.items.len());
        if room == 0 {
            break;
        }
        match entry {
            Entry::Latent(name) => folder.items.push(Arc::new(folder_item(model, dir, name)?)),
            Entry::FaceSet(name) => {
                let set = inverted::read_face_set(model, dir, name)?;
                let taken = set.faces.len().min(room);
                note_left_out(&mut folder, log, &format!("{name}.faces.f32"), set.faces.len(), taken, options.limit);
                let resolution = model.info().resolution as u32;
                let placed = &set.faces[..taken];
                let photos = placed.iter().zip(&set.latents).map(|(face, w)| Photo::of_face(Arc::clone(&set.image), *face, resolution, w.clone()));
                let items = items_of_faces(model, Arc::clone(&set.image), name, placed, photos.collect(), set.faces_found)
                    .map_err(|e| format!("{}: {e}", dir.join(format!("{name}.faces.f32")).display()))?;
                log(&format!("{name}.faces.f32: {} face{} read back ('editone invert --faces')", items.len(), if items.len() == 1 { "" } else { "s" }));
                folder.items.extend(items.into_iter().map(Arc::new));
                sets.push(set);
            }
            Entry::Photo { file, name } => {
                if detector.is_none() {
                    let loaded = Detector::load_default(model.device());
                    detector = Some(loaded.map_err(|e| format!("{e} (--folder finds the faces in its photos with it)"))?);
                }
                let detector = detector.as_ref().expect("loaded above");
                let path = dir.join(file);
                let failed = |e: editone::Error| format!("{}: {e}", path.display());
                let image = editone::render::load(&path).map_err(failed)?;
                let rgb = image.to_rgb8();
                let found = find_faces(detector, &rgb).map_err(failed)?;
                if found.is_empty() {
                    let note = format!("{file}: no face found; it is edited as a whole photo (its centred square)");
                    log(&note);
                    folder.notes.push(note);
                    let t0 = Instant::now();
                    folder.items.push(Arc::new(whole_photo_item(model, &image, name, options).map_err(failed)?));
                    log(&format!("{file}: inverted in {:.1} s", t0.elapsed().as_secs_f64()));
                    continue;
                }
                let taken = found.len().min(room);
                note_left_out(&mut folder, log, file, found.len(), taken, options.limit);
                let steps = options.invert_steps.unwrap_or_else(|| editone::invert::default_steps(model));
                log(&format!("{file}: inverting {taken} face{} ({steps} steps)…", if taken == 1 { "" } else { "s" }));
                let t0 = Instant::now();
                let items = face_items(model, rgb, name, &found[..taken], found.len(), options).map_err(failed)?;
                let plural = if items.len() == 1 { "" } else { "s" };
                log(&format!("{file}: {} face{plural} inverted in {:.1} s", items.len(), t0.elapsed().as_secs_f64()));
                folder.items.extend(items.into_iter().map(Arc::new));
            }
        }
    }
    if options.retune {
        if inverted::has_tuned_files(dir) {
            let note = format!("{}: not used: --tune tunes anew on every image of the folder", inverted::TUNED_MODEL);
            log(&note);
            folder.notes.push(note);
        }
    } else if let Some(tuned) = inverted::tuned_model(model, dir, &sets)? {
        log(&format!("{}: the faces render through the generator 'editone invert --tune' tuned on them", inverted::TUNED_MODEL));
        folder.renders = Arc::new(tuned);
    }
    if folder.items.len() < 2 {
        return Err(format!(
            "{}: holds {} image{} to edit (.f32 latents, faces in PNG or JPEG photos, photos); give at least 2 (the first is the example)",
            dir.display(),
            folder.items.len(),
            if folder.items.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(folder)
}

/// The faces of `image`, largest first; none in a picture too small to
/// hold one.
fn find_faces(detector: &Detector, image: &RgbImage) -> editone::Result<Vec<Face>> {
    let side = editone::faces::mtcnn::MIN_IMAGE_SIDE;
    if image.width() < side || image.height() < side {
        return Ok(Vec::new());
    }
    detector.detect(image, &DetectOptions::default())
}

fn invert_options(options: &FolderOptions) -> InvertOptions {
    InvertOptions { steps: options.invert_steps, ..InvertOptions::default() }
}

/// A note when a photo holds more faces than the page has room for.
fn note_left_out(folder: &mut Folder, log: &mut dyn FnMut(&str), file: &str, found: usize, taken: usize, limit: usize) {
    if taken < found {
        let note = format!("{file}: {found} faces found; the page shows the first {taken} (at most {limit} images in all)");
        log(&note);
        folder.notes.push(note);
    }
}

/// An item per face of the photo `image` named `name`, inverted together.
fn face_items(model: &Model, image: RgbImage, name: &str, faces: &[Face], found: usize, options: &FolderOptions) -> editone::Result<Vec<Item>> {
    let placed = faces::place(model, faces, model.face_alignment())?;
    let image = Arc::new(image);
    let photos = faces::invert_faces(model, Arc::clone(&image), &placed, &invert_options(options), None)?;
    items_of_faces(model, image, name, &placed, photos, found)
}

/// An item per face of the photo `image` named `name`: `photos` are the
/// faces' inverted latents at their `placed` places, `found` the faces the
/// photo holds.
fn items_of_faces(model: &Model, image: Arc<RgbImage>, name: &str, placed: &[PhotoFace], photos: Vec<Photo>, found: usize) -> editone::Result<Vec<Item>> {
    let resolution = model.info().resolution;
    let aligned = faces::targets(&image, placed, resolution as u32);
    let (display, to_display) = display_copy(&image);
    let picture = Arc::new(Picture { name: name.to_string(), size: image.dimensions(), faces_found: found, display: Arc::new(display) });
    photos
        .into_iter()
        .zip(placed)
        .enumerate()
        .map(|(k, (photo, place))| {
            let number = k + 1;
            let shown = Photo::of_face(Arc::clone(&picture.display), on_display(place, &to_display), resolution as u32, photo.base().to_vec());
            // Rendered now, so that a bad model fails at start, not on the page.
            let _rendered = photo.base_render(model)?;
            Ok(Item {
                label: format!("{name} face {number}"),
                file_stem: format!("{name}-face{number}"),
                key: json!({"photo": name, "face": number}),
                w: photo.base().to_vec(),
                face: Some(FaceOf {
                    picture: Arc::clone(&picture),
                    number,
                    aligned: Vec::<f32>::try_from(aligned.get(k as i64).flatten(0, -1))?,
                    shown,
                }),
                photo: Some(photo),
            })
        })
        .collect()
}

/// `image` scaled to fit [`DISPLAY_SIDE`], and the map from its pixels to
/// the display copy's (pixel centres to pixel centres).
fn display_copy(image: &RgbImage) -> (RgbImage, Similarity) {
    let (w, h) = image.dimensions();
    if w.max(h) <= DISPLAY_SIDE {
        return (image.clone(), Similarity { a: 1.0, b: 0.0, tx: 0.0, ty: 0.0 });
    }
    let (dw, dh) = editone::render::fit_within(w, h, DISPLAY_SIDE);
    let copy = image::imageops::resize(image, dw, dh, image::imageops::FilterType::Triangle);
    // One scale for both axes (a similarity); the sides' rounding differs
    // by under half a display pixel.
    let s = dw as f64 / w as f64;
    (copy, Similarity { a: s, b: 0.0, tx: 0.5 * s - 0.5, ty: 0.5 * s - 0.5 })
}

/// A face's place in the photo, moved onto the display copy.
fn on_display(place: &PhotoFace, to_display: &Similarity) -> PhotoFace {
    let map = |[x, y]: [f32; 2]| {
        let [x, y] = to_display.apply([x as f64, y as f64]);
        [x as f32, y as f32]
    };
    let face = place.face;
    let [x0, y0] = map([face.bbox[0], face.bbox[1]]);
    let [x1, y1] = map([face.bbox[2], face.bbox[3]]);
    let face = Face { bbox: [x0, y0, x1, y1], score: face.score, landmarks: face.landmarks.map(map) };
    PhotoFace { face, to_crop: to_display.inverse().then(&place.to_crop) }
}

/// A photo without a face, projected whole (its centred square), as
/// `editone invert` does.
fn whole_photo_item(model: &Model, image: &image::DynamicImage, name: &str, options: &FolderOptions) -> editone::Result<Item> {
    let resolution = model.info().resolution as u32;
    let rgb = image.to_rgb8();
    let crop = editone::invert::centre_crop(rgb.width(), rgb.height());
    if crop[2] < 8 {
        return Err(editone::Error::invalid(format!("a {}x{} image is too small to invert (8x8 at least)", rgb.width(), rgb.height())));
    }
    let target = editone::invert::target_tensor(&rgb, crop, resolution)?;
    let w = editone::invert::invert(model, &target, &invert_options(options), None)?.remove(0);
    let photo = editone::invert::photo(image, w.clone())?;
    let _rendered = photo.base_render(model)?;
    Ok(Item { label: format!("{name} (no face)"), file_stem: name.to_string(), key: json!({"photo": name}), w, photo: Some(photo), face: None })
}

/// The little-endian float32 values of a latent file, when its bytes are
/// whole values and all of them finite.
pub fn finite_f32s(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let floats: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    floats.iter().all(|x| x.is_finite()).then_some(floats)
}

fn folder_item(model: &Model, dir: &Path, name: &str) -> Result<Item, String> {
    let info = model.info();
    let path = dir.join(format!("{name}.f32"));
    let shape = editone::edit::LatentShape::of(info);
    // A W+ latent at most: a larger file is not one of this model's.
    let bytes = editone::files::read_capped(&path, "latent", shape.len() as u64 * 4).map_err(|e| e.to_string())?;
    let w = finite_f32s(&bytes).and_then(|floats| shape.to_wplus(&floats, "latent").ok()).ok_or_else(|| {
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
    Ok(Item { label: name.to_string(), file_stem: name.to_string(), key, w, photo, face: None })
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

    const OPTIONS: FolderOptions = FolderOptions { limit: 49, invert_steps: Some(2), retune: false };

    #[test]
    fn latents_claim_what_editone_invert_wrote_beside_them_and_other_pictures_are_photos() {
        let files: Vec<String> = [
            "b.f32", "b-photo.png", "b-reconstruction.png", "b.json", "a-photo.png", "group.JPG", ".group.png.tmp", ".hidden.png",
            "notes.txt", "c.jpeg", "b.png", ".png", "d.f32.png", "e.faces.f32", "e-photo.png", "e-reconstruction.png", "e.json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let photo = |file: &str, name: &str| Entry::Photo { file: file.into(), name: name.into() };
        assert_eq!(
            entries(&files),
            [
                // a-photo.png has no a.f32: it is a photo of its own.
                photo("a-photo.png", "a-photo"),
                Entry::Latent("b".into()),
                photo("b.png", "b"),
                photo("c.jpeg", "c"),
                photo("d.f32.png", "d.f32"),
                // 'editone invert --faces' output: its photo and
                // reconstruction belong to it.
                Entry::FaceSet("e".into()),
                photo("group.JPG", "group"),
            ]
        );
    }

    #[test]
    fn the_display_copy_maps_pixel_centres() {
        let big = RgbImage::new(4096, 2000);
        let (copy, map) = display_copy(&big);
        assert_eq!(copy.dimensions(), (DISPLAY_SIDE, 500));
        // The photo's corner pixels' outer edges land on the copy's.
        assert_eq!(map.apply([-0.5, -0.5]), [-0.5, -0.5]);
        let [x, y] = map.apply([4095.5, 1999.5]);
        assert!((x - 1023.5).abs() < 1e-9 && (y - 499.5).abs() < 1e-9, "{x} {y}");
        let small = RgbImage::new(300, 200);
        let (copy, map) = display_copy(&small);
        assert_eq!((copy.dimensions(), map.apply([7.0, 9.0])), ((300, 200), [7.0, 9.0]));
    }

    fn write_latent(dir: &Path, name: &str, floats: &[f32]) {
        let bytes: Vec<u8> = floats.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(dir.join(format!("{name}.f32")), bytes).unwrap();
    }

    #[test]
    fn folders_of_latents_and_photos_load_and_bad_ones_are_refused() {
        let model = Arc::new(Model::load_default(editone::Engine::get().unwrap().placement()).expect("make setup installs the default model"));
        let w_dim = model.info().w_dim;
        let dir = std::env::temp_dir().join(format!("editone-studio-items-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_latent(&dir, "a", &model.latent_from_seed(1, None, 1.0).unwrap());
        write_latent(&dir, "b", &vec![0.5; w_dim]);
        let photo = image::RgbImage::from_pixel(90, 60, image::Rgb([200, 100, 50]));
        photo.save(dir.join("b-photo.png")).unwrap();

        let items = load_folder(&model, &dir, &OPTIONS, &mut |_| {}).unwrap().items;
        assert_eq!(items.iter().map(|i| i.label.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(items[0].key, json!({"latent": "a"}));
        assert_eq!(items[1].key, json!({"photo": "b"}));
        let photo = items[1].photo.as_ref().expect("b has a photo");
        assert_eq!(photo.crop, [15, 0, 60, 60]);
        assert_eq!(photo.base_render(&model).unwrap().size(), [3, 64, 64]);

        write_latent(&dir, "c", &[1.0, 2.0, 3.0]);
        let err = load_folder(&model, &dir, &OPTIONS, &mut |_| {}).err().unwrap();
        assert!(err.contains("c.f32") && err.contains("not a latent of this model"), "{err}");
        write_latent(&dir, "c", &vec![f32::NAN; w_dim]);
        assert!(load_folder(&model, &dir, &OPTIONS, &mut |_| {}).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        let empty = load_folder(&model, &std::env::temp_dir().join("editone-no-such-folder"), &OPTIONS, &mut |_| {}).err().unwrap();
        assert!(empty.contains("editone-no-such-folder"), "{empty}");
    }
}
