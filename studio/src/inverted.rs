//! A folder that `editone invert --faces [--tune]` wrote (README, "Photos
//! with faces"): per photo, NAME.json (each face's box, landmarks and
//! photo-to-crop transform, and checksums of the photo's pixels and of the
//! latents), NAME-photo.png and NAME.faces.f32, and after `--tune` one
//! tuned generator, tuned.safetensors, with tuned.manifest naming the
//! photos it was tuned on.
//!
//! The studio reads the faces back instead of finding and inverting them
//! again, and renders them through the tuned generator when its manifest
//! vouches for every image the page shows. It refuses what `editone apply
//! --inverted` refuses (host-examples/cli/faceset.c), in the same words: a
//! record beside another run's latents or photo, a tuned model of another
//! run, or an image the model was not tuned on.

use editone::faces::align::Similarity;
use editone::faces::Face;
use editone::invert::PhotoFace;
use editone::model::weights::fnv1a64;
use editone::model::Model;
use editone::ErrorKind;
use image::RgbImage;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;

/// The tuned generator's file and its manifest, as the CLI names them.
pub const TUNED_MODEL: &str = "tuned.safetensors";
pub const TUNED_MANIFEST: &str = "tuned.manifest";
/// The manifest's `format`.
const MANIFEST_FORMAT: &str = "editone-tuned-faces";
/// The largest record and manifest read, as the CLI caps them.
const MAX_RECORD_BYTES: u64 = 16 << 20;
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// NAME.json as the studio needs it; its other fields (the detector's
/// options, crops, PSNRs) are the CLI's.
#[derive(Deserialize)]
struct Record {
    width: u32,
    height: u32,
    faces_found: u32,
    photo_fnv1a64: String,
    latents_fnv1a64: String,
    faces: Vec<RecordedFace>,
}

#[derive(Deserialize)]
struct RecordedFace {
    index: u32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
    landmarks: [[f32; 2]; 5],
    transform: [f64; 6],
}

/// The faces of one photo, read back and checked against each other.
pub struct FaceSet {
    /// NAME: the photo's name, without `-photo.png`.
    pub name: String,
    /// The photo as `invert` read it (NAME-photo.png).
    pub image: Arc<RgbImage>,
    /// Each face and its photo-to-crop transform, in the record's order
    /// (largest first).
    pub faces: Vec<PhotoFace>,
    /// Each face's W+ latent, flattened.
    pub latents: Vec<Vec<f32>>,
    /// Faces the detector found in the photo (the record may hold fewer,
    /// after `--face K`).
    pub faces_found: usize,
    /// The record's checksums, which the manifest of a tuning lists.
    photo_hash: u64,
    latents_hash: u64,
}

/// A record's problem: the file and what was wrong.
fn bad_record(path: &Path, what: impl std::fmt::Display) -> String {
    format!("{}: {what}; the file is not the record 'editone invert --faces' wrote", path.display())
}

/// The mix of two runs that a stopped `invert --overwrite` can leave.
fn mixed_runs(dir: &Path, name: &str, file: &str) -> String {
    format!(
        "{}: does not belong with {} (its checksum differs): the folder mixes two runs of 'editone invert', one of them stopped; invert that photo again",
        dir.join(format!("{name}{file}")).display(),
        dir.join(format!("{name}.json")).display()
    )
}

/// 16 lowercase hex digits, as the CLI writes a checksum.
fn checksum(text: &str) -> Option<u64> {
    let hex = text.len() == 16 && text.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    hex.then(|| u64::from_str_radix(text, 16).ok()).flatten()
}

/// DIR/NAME.json, DIR/NAME-photo.png and DIR/NAME.faces.f32 (latents of
/// `model`), each checked against the record.
pub fn read_face_set(model: &Model, dir: &Path, name: &str) -> Result<FaceSet, String> {
    let path = dir.join(format!("{name}.json"));
    let bytes = editone::files::read_capped(&path, "record", MAX_RECORD_BYTES).map_err(|e| format!("{}: {e}", path.display()))?;
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| bad_record(&path, e))?;
    let (photo_hash, latents_hash) = check_record(&path, &record)?;
    let image = Arc::new(read_photo(dir, name, &record, photo_hash)?);
    let latents = read_latents(model, dir, name, record.faces.len(), latents_hash)?;
    let faces = record
        .faces
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let to_crop = Similarity::from_affine(f.transform).map_err(|e| bad_record(&path, format!("faces[{k}].transform: {e}")))?;
            let face = Face { bbox: f.bbox, score: f.score, landmarks: f.landmarks };
            Ok(PhotoFace { face, to_crop })
        })
        .collect::<Result<_, String>>()?;
    let faces_found = record.faces_found as usize;
    Ok(FaceSet { name: name.to_string(), image, faces, latents, faces_found, photo_hash, latents_hash })
}

/// What a record must say of itself: a photo size, 1 to `faces_found`
/// faces each listed once, and two checksums (returned).
fn check_record(path: &Path, record: &Record) -> Result<(u64, u64), String> {
    if record.width == 0 || record.height == 0 {
        return Err(bad_record(path, "width and height: expected the photo's size in pixels"));
    }
    let found = record.faces_found as usize;
    if record.faces.is_empty() || record.faces.len() > found {
        return Err(bad_record(path, "faces: expected a list of 1 to faces_found faces"));
    }
    for (k, face) in record.faces.iter().enumerate() {
        let seen = record.faces[..k].iter().any(|f| f.index == face.index);
        if face.index as usize >= found || seen {
            return Err(bad_record(path, format!("faces[{k}].index: expected each face once, numbered below faces_found")));
        }
    }
    let photo = checksum(&record.photo_fnv1a64).ok_or_else(|| bad_record(path, "photo_fnv1a64: expected 16 hex digits"))?;
    let latents = checksum(&record.latents_fnv1a64).ok_or_else(|| bad_record(path, "latents_fnv1a64: expected 16 hex digits"))?;
    Ok((photo, latents))
}

/// NAME-photo.png, the size and pixels the record lists.
fn read_photo(dir: &Path, name: &str, record: &Record, hash: u64) -> Result<RgbImage, String> {
    let path = dir.join(format!("{name}-photo.png"));
    let image = editone::render::load(&path).map_err(|e| format!("{}: {e}", path.display()))?.to_rgb8();
    if image.dimensions() != (record.width, record.height) {
        return Err(format!(
            "{}: is {}x{}; {name}.json was made from a {}x{} photo: the folder mixes two runs of 'editone invert'; invert that photo again",
            path.display(),
            image.width(),
            image.height(),
            record.width,
            record.height
        ));
    }
    if fnv1a64(image.as_raw()) != hash {
        return Err(mixed_runs(dir, name, "-photo.png"));
    }
    Ok(image)
}

/// NAME.faces.f32: `n` latents of `model`, the bytes the record lists.
fn read_latents(model: &Model, dir: &Path, name: &str, n: usize, hash: u64) -> Result<Vec<Vec<f32>>, String> {
    let path = dir.join(format!("{name}.faces.f32"));
    let info = model.info();
    let per = info.num_ws * info.w_dim;
    let expected = (n * per * 4) as u64;
    // One byte more than expected tells a longer file from the right one.
    let bytes = editone::files::read_capped(&path, "latents", expected + 1).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 != expected {
        return Err(format!(
            "{}: is not {expected} bytes, the {n} face{} of {name}.json as latents of this model ({} rows x {} floats x 4 bytes each): the latents are another model's, or the folder mixes two runs of 'editone invert'",
            path.display(),
            if n == 1 { "" } else { "s" },
            info.num_ws,
            info.w_dim
        ));
    }
    if fnv1a64(&bytes) != hash {
        return Err(mixed_runs(dir, name, ".faces.f32"));
    }
    let floats = crate::items::finite_f32s(&bytes).ok_or_else(|| format!("{}: holds a value that is not a finite number", path.display()))?;
    Ok(floats.chunks_exact(per).map(<[f32]>::to_vec).collect())
}

/// The manifest as the studio needs it.
#[derive(Deserialize)]
struct Manifest {
    format: String,
    tuned_fnv1a64: String,
    photos: Vec<TunedPhoto>,
}

#[derive(Deserialize)]
struct TunedPhoto {
    name: String,
    photo_fnv1a64: String,
    latents_fnv1a64: String,
}

/// Whether DIR holds `file` (a file of any kind, a dangling link included).
fn holds(dir: &Path, file: &str) -> bool {
    dir.join(file).symlink_metadata().is_ok()
}

/// Whether DIR holds a tuned model or its manifest.
pub fn has_tuned_files(dir: &Path) -> bool {
    holds(dir, TUNED_MODEL) || holds(dir, TUNED_MANIFEST)
}

/// A folder whose tuned model does not belong to the images shown: what
/// is wrong, then what to do.
pub fn not_tuned_together(dir: &Path, what: &str) -> String {
    format!(
        "{}: {what}; start the studio with --tune to tune anew on every image of the folder, invert its photos again with 'editone invert --faces --tune --overwrite', or remove {TUNED_MODEL} and {TUNED_MANIFEST} to edit them without it",
        dir.display()
    )
}

/// DIR's tuned model, loaded over `base`, when the folder has one and its
/// manifest vouches for it and for every face set in `sets`. None when the
/// folder has neither file. (The folder's other images, latents and
/// photos inverted at start, are no tuning's of the CLI: the caller
/// refuses them before inverting anything.)
pub fn tuned_model(base: &Model, dir: &Path, sets: &[FaceSet]) -> Result<Option<Model>, String> {
    match (holds(dir, TUNED_MODEL), holds(dir, TUNED_MANIFEST)) {
        (false, false) => return Ok(None),
        (false, true) => {
            let what = format!("its {TUNED_MANIFEST} lists a tuned model, but the run of 'editone invert --tune' that wrote it stopped before writing {TUNED_MODEL}");
            return Err(not_tuned_together(dir, &what));
        }
        (true, false) => {
            return Err(not_tuned_together(dir, &format!("its {TUNED_MODEL} has no {TUNED_MANIFEST} beside it to say which photos it was tuned on")));
        }
        (true, true) => {}
    }
    let manifest = read_manifest(dir)?;
    for set in sets {
        let listed = manifest.photos.iter().find(|p| p.name == set.name).ok_or_else(|| {
            let what = format!("'{}.json' was not among the photos its tuned model was tuned on (a later run of 'editone invert' added it)", set.name);
            not_tuned_together(dir, &what)
        })?;
        if checksum(&listed.photo_fnv1a64) != Some(set.photo_hash) || checksum(&listed.latents_fnv1a64) != Some(set.latents_hash) {
            let what = format!("'{}.json' is not the record its tuned model was tuned on (another run of 'editone invert' rewrote it)", set.name);
            return Err(not_tuned_together(dir, &what));
        }
    }
    let path = dir.join(TUNED_MODEL);
    let tuned = editone::tune::load(base, &path).map_err(|e| match e.kind {
        ErrorKind::Incompatible => format!("{}: was tuned from another model than this one: give the --model the photos were inverted with", path.display()),
        _ => format!("{}: {e}", path.display()),
    })?;
    // A tuned model's fingerprint is its file's FNV-1a 64, which the
    // manifest lists: the file is read once.
    if tuned.fingerprint() != format!("fnv1a64:{:016x}", manifest.tuned) {
        let what = format!("its {TUNED_MODEL} is not the model its {TUNED_MANIFEST} lists (the checksums differ): the folder mixes two runs of 'editone invert'");
        return Err(not_tuned_together(dir, &what));
    }
    Ok(Some(tuned))
}

/// What DIR/tuned.manifest says: the tuned model file's checksum and the
/// photos it was tuned on.
struct TunedRun {
    tuned: u64,
    photos: Vec<TunedPhoto>,
}

/// DIR/tuned.manifest, read and checked for its format.
fn read_manifest(dir: &Path) -> Result<TunedRun, String> {
    let path = dir.join(TUNED_MANIFEST);
    let bytes = editone::files::read_capped(&path, "manifest", MAX_MANIFEST_BYTES).map_err(|e| format!("{}: {e}", path.display()))?;
    let not_manifest = || format!("{}: is not the manifest 'editone invert --faces --tune' writes", path.display());
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|_| not_manifest())?;
    let tuned = checksum(&manifest.tuned_fnv1a64).filter(|_| manifest.format == MANIFEST_FORMAT).ok_or_else(not_manifest)?;
    Ok(TunedRun { tuned, photos: manifest.photos })
}
