//! editone-studio --folder on what `editone invert --faces --tune` wrote
//! (issue 22): the faces are read back, not found and inverted again, and
//! render through the generator the CLI tuned on them; a folder whose
//! tuned model does not belong to what it shows is refused, as `editone
//! apply --inverted` refuses it.
//!
//! Needs the `editone` command: $EDITONE_CLI, else the copy `make
//! c-tests` installs in build/test-prefix. About 20 s on 2 cores.

mod common;
mod photos;

use photos::{background, changed, strength_zero, three_faces, Studio};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Projector and tuning steps of the CLI's run: few, so the test stays
/// short; enough for tuning to gain clearly.
const INVERT_STEPS: &str = "20";
const TUNE_STEPS: &str = "10";
/// Least gain in dB of the faces' plain renders through the folder's
/// tuned model against the base: under half what it gained when this was
/// written (6.1 dB on the tiles, 5.5 inside the boxes).
const MIN_TILE_GAIN: f64 = 3.0;
const MIN_BOX_GAIN: f64 = 2.5;
/// The batch of a page on the folder: the group photo's other faces.
const LABELS: &[&str] = &["group face 2", "group face 3"];

fn cli() -> PathBuf {
    let path = std::env::var_os("EDITONE_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/test-prefix/bin/editone"));
    assert!(path.is_file(), "{}: the editone command is needed (make c-tests installs it there; or set EDITONE_CLI)", path.display());
    path
}

/// Runs the studio on `dir` expecting a refusal at start: its message.
fn refused(dir: &Path, options: &[&str]) -> String {
    let out = Command::new(common::binary()).args(["--port", "0"]).args(options).arg("--folder").arg(dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "expected a refusal: {stderr}");
    stderr
}

fn copy_folder(from: &Path, to: &Path, leave_out: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if !leave_out.iter().any(|name| entry.file_name() == *name) {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The PSNR NAME.json records for each face, as the CLI measured it.
fn recorded_psnr(dir: &Path) -> Vec<f64> {
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("group.json")).unwrap()).unwrap();
    record["faces"].as_array().unwrap().iter().map(|f| f["psnr"].as_f64().unwrap()).collect()
}

#[test]
fn an_inverted_folder_renders_through_its_tuned_model_and_a_stale_one_is_refused() {
    let root = std::env::temp_dir().join(format!("editone-studio-inverted-{}", std::process::id()));
    let (photos, tuned_dir, base_dir, bad) = (root.join("photos"), root.join("tuned"), root.join("base"), root.join("bad"));
    std::fs::create_dir_all(&photos).unwrap();
    let (group, _) = three_faces();
    group.save(photos.join("group.png")).unwrap();
    let out = Command::new(cli())
        .args(["invert", "--faces", "--tune", "--steps", INVERT_STEPS, "--tune-steps", TUNE_STEPS, "--out"])
        .arg(&tuned_dir)
        .arg(photos.join("group.png"))
        .output()
        .unwrap();
    assert!(out.status.success(), "editone invert: {}", String::from_utf8_lossy(&out.stderr));

    // Through the tuned model: read back, nothing inverted, the photo
    // itself at strength 0 in residual paste.
    let tuned = {
        let studio = Studio::start(&tuned_dir, &["--count", "8"]);
        let log = studio.log.lock().unwrap().clone();
        assert!(log.contains("group.faces.f32: 3 faces read back"), "{log}");
        assert!(log.contains("tuned.safetensors: the faces render through the generator"), "{log}");
        assert!(!log.contains("inverting"), "the faces were inverted again: {log}");
        strength_zero("tuned", &studio, &group, LABELS).1
    };
    // The page's faces are the CLI's reconstructions: the PSNR it
    // recorded, measured on the same latents through the same generator
    // before 8-bit rounding (which costs under 0.05 dB here).
    let recorded = recorded_psnr(&tuned_dir);
    let mean = recorded.iter().sum::<f64>() / recorded.len() as f64;
    println!("the CLI recorded {recorded:.2?} dB after tuning (mean {mean:.2}); the page shows {:.2}", tuned.tiles);
    assert!((tuned.tiles - mean).abs() < 0.1, "the page's faces at {:.2} dB are not the CLI's at {mean:.2}", tuned.tiles);

    // The same records without the tuned model render through the base.
    copy_folder(&tuned_dir, &base_dir, &["tuned.safetensors", "tuned.manifest"]);
    let base = {
        let studio = Studio::start(&base_dir, &["--count", "8"]);
        let log = studio.log.lock().unwrap().clone();
        assert!(log.contains("3 faces read back") && !log.contains("render through"), "{log}");
        strength_zero("base", &studio, &group, LABELS).1
    };
    let (tile_gain, box_gain) = (tuned.tiles - base.tiles, tuned.boxes - base.boxes);
    println!("the folder's tuned model gains {tile_gain:.2} dB on the tiles, {box_gain:.2} dB inside the boxes");
    assert!(tile_gain >= MIN_TILE_GAIN && box_gain >= MIN_BOX_GAIN, "gains {tile_gain:.2} and {box_gain:.2} dB");

    // What `apply --inverted` refuses, the studio refuses at start.
    let case = |leave_out: &[&str], change: &dyn Fn(&Path)| {
        let _ = std::fs::remove_dir_all(&bad);
        copy_folder(&tuned_dir, &bad, leave_out);
        change(&bad);
    };
    case(&["tuned.safetensors"], &|_| {});
    assert!(refused(&bad, &[]).contains("stopped before writing tuned.safetensors"));
    case(&["tuned.manifest"], &|_| {});
    assert!(refused(&bad, &[]).contains("has no tuned.manifest beside it"));
    case(&[], &|dir| {
        let manifest = std::fs::read_to_string(dir.join("tuned.manifest")).unwrap();
        let at = manifest.find("\"tuned_fnv1a64\": \"").unwrap() + 18;
        let flipped = if &manifest[at..at + 1] == "0" { "1" } else { "0" };
        std::fs::write(dir.join("tuned.manifest"), format!("{}{flipped}{}", &manifest[..at], &manifest[at + 1..])).unwrap();
    });
    assert!(refused(&bad, &[]).contains("is not the model its tuned.manifest lists"));
    case(&[], &|dir| {
        let mut latents = std::fs::read(dir.join("group.faces.f32")).unwrap();
        latents[5] ^= 1;
        std::fs::write(dir.join("group.faces.f32"), latents).unwrap();
    });
    let message = refused(&bad, &[]);
    assert!(message.contains("group.faces.f32: does not belong with") && message.contains("mixes two runs"), "{message}");
    case(&[], &|dir| std::fs::write(dir.join("group.json"), b"{\"width\": 420}").unwrap());
    let message = refused(&bad, &[]);
    assert!(message.contains("group.json") && message.contains("not the record 'editone invert --faces' wrote"), "{message}");
    // A photo added later: refused before anything is inverted, unless
    // the studio tunes anew on everything.
    case(&[], &|dir| background(120, 90, 2.9).save(dir.join("plain.png")).unwrap());
    let message = refused(&bad, &["--invert-steps", "2"]);
    assert!(message.contains("'plain.png' is not one of the faces its tuned model was tuned on") && message.contains("--tune"), "{message}");
    assert!(!message.contains("inverted in"), "{message}");
    let studio = Studio::start(&bad, &["--invert-steps", "2", "--tune", "--tune-steps", "1"]);
    let log = studio.log.lock().unwrap().clone();
    assert!(log.contains("tuned.safetensors: not used: --tune tunes anew") && log.contains("tuning the generator on 4 photos"), "{log}");
    drop(studio);
    // The photo the page shows is the one NAME.json was made from.
    let photo = image::open(tuned_dir.join("group-photo.png")).unwrap().to_rgb8();
    assert!(changed(&photo, &group).is_empty());
    std::fs::remove_dir_all(&root).unwrap();
}
