//! editone-studio --folder on photos of faces (issue 21): every face of a
//! photo in the folder is an image of the page, a photo without a face is
//! edited whole, and the page's picture of each photo shows all its faces
//! edited, changed only inside them.
//!
//! The photos are made here: samples of the default model drawn into
//! smooth backgrounds at known squares, so where each face is, and so
//! where the photo may change, is known exactly. A small group photo is
//! shown at its own size (checked pixel for pixel); a larger one is shown
//! scaled to the studio's display side, and exported at full size. The
//! studio inverts with 20 steps (`--invert-steps`): the test checks where
//! edits land, not how well the faces are fitted. About 5 s on 2 cores.
//!
//! It starts the built binary; EDITONE_STUDIO=PATH tests another build.

mod common;
mod photos;

use editone::model::Model;
use image::RgbImage;
use photos::{background, changed, draw_face, grown, unzip, Square, Studio};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// The studio's longest side of a photo on the page (studio/src/items.rs).
const DISPLAY_SIDE: u32 = 1024;

/// Samples of the default model that the detector finds surely at the
/// sizes used here (the first seeds of tests/common/groups.rs's pool).
const SEEDS: [u64; 4] = [0, 1, 2, 3];

/// The folder: a 420x260 group of three faces, a 1600x900 photo of one
/// face (larger than the display side), and a picture without a face.
struct Folder {
    dir: PathBuf,
    group: RgbImage,
    group_faces: Vec<Square>,
    big: RgbImage,
    big_face: Square,
}

fn make_folder() -> Folder {
    let model = Model::load_default(editone::Engine::get().unwrap().placement()).expect("make setup installs the default model");
    let dir = std::env::temp_dir().join(format!("editone-studio-faces-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut group = background(420, 260, 0.3);
    let group_faces = vec![
        draw_face(&model, &mut group, SEEDS[0], 110, (20, 40)),
        draw_face(&model, &mut group, SEEDS[1], 96, (160, 120)),
        draw_face(&model, &mut group, SEEDS[2], 100, (290, 30)),
    ];
    group.save(dir.join("group.png")).unwrap();
    let mut big = background(1600, 900, 1.7);
    let big_face = draw_face(&model, &mut big, SEEDS[3], 320, (900, 250));
    big.save(dir.join("big.png")).unwrap();
    background(120, 90, 2.9).save(dir.join("plain.png")).unwrap();
    Folder { dir, group, group_faces, big, big_face }
}

fn boxes(photo: &Value) -> Vec<Square> {
    let as_u32 = |v: &Value| v.as_u64().unwrap() as u32;
    photo["faces"].as_array().unwrap().iter().map(|f| [0, 1, 2, 3].map(|k| as_u32(&f["box"][k]))).collect()
}

fn inside([x0, y0, x1, y1]: Square, x: u32, y: u32) -> bool {
    (x0..x1).contains(&x) && (y0..y1).contains(&y)
}

fn overlap(a: Square, b: Square) -> f64 {
    let w = a[2].min(b[2]).saturating_sub(a[0].max(b[0])) as f64;
    let h = a[3].min(b[3]).saturating_sub(a[1].max(b[1])) as f64;
    let area = |s: Square| ((s[2] - s[0]) * (s[3] - s[1])) as f64;
    w * h / (area(a) + area(b) - w * h)
}

/// Checks that `after` differs from `before` only inside `allowed` (the
/// faces' boxes) and inside `truth` (where the faces were drawn, grown by
/// the aligned crop's margin), and by much inside every box.
fn check_changes(what: &str, before: &RgbImage, after: &RgbImage, allowed: &[Square], truth: &[Square]) {
    let diff = changed(before, after);
    let outside: Vec<_> = diff.iter().filter(|(x, y)| !allowed.iter().any(|b| inside(*b, *x, *y))).collect();
    assert!(outside.is_empty(), "{what}: {} pixels changed outside every face's box, e.g. {:?}", outside.len(), &outside[..outside.len().min(5)]);
    let stray: Vec<_> = diff.iter().filter(|(x, y)| !truth.iter().any(|t| inside(grown(*t, 0.15), *x, *y))).collect();
    assert!(stray.is_empty(), "{what}: {} pixels changed away from the drawn faces, e.g. {:?}", stray.len(), &stray[..stray.len().min(5)]);
    println!("{what}: {} pixels changed, all inside the faces' boxes {allowed:?}", diff.len());
    for b in allowed {
        let area = ((b[2] - b[0]) * (b[3] - b[1])) as usize;
        let inner = diff.iter().filter(|(x, y)| inside(*b, *x, *y)).count();
        assert!(inner * 4 >= area, "{what}: only {inner} of the {area} pixels of the face at {b:?} changed");
    }
}

/// Where each box's drawn face is: every drawn face has exactly one box
/// over it.
fn match_faces(what: &str, found: &[Square], truth: &[Square]) -> Vec<usize> {
    let matched: Vec<usize> = found
        .iter()
        .map(|b| {
            let best = (0..truth.len()).max_by(|&i, &j| overlap(*b, truth[i]).total_cmp(&overlap(*b, truth[j]))).unwrap();
            assert!(overlap(*b, truth[best]) > 0.6, "{what}: the face box {b:?} is over no drawn face ({truth:?})");
            best
        })
        .collect();
    let mut sorted = matched.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), truth.len(), "{what}: boxes {found:?} for the drawn faces {truth:?}");
    matched
}

#[test]
fn every_face_of_a_folders_photos_is_an_image_and_its_photo_changes_only_inside_the_faces() {
    let folder = make_folder();
    let started = Instant::now();
    let studio = Studio::start(&folder.dir, &["--count", "8", "--invert-steps", "20"]);
    println!("studio started in {:.1} s", started.elapsed().as_secs_f64());

    // Name order: big, group, plain.
    let sess = studio.json("POST", "/api/sessions", Some(json!({"count": 8})), 201);
    let id = sess["session"].as_str().unwrap().to_string();
    let labels: Vec<&str> = sess["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(sess["example_label"], "big face 1");
    assert_eq!(labels, ["group face 1", "group face 2", "group face 3", "plain (no face)"]);
    assert_eq!(sess["count"], 4, "a page gets what the folder holds");
    let notes = sess["notes"].to_string();
    assert!(notes.contains("plain.png: no face found"), "{notes}");
    assert!(studio.log.lock().unwrap().contains("plain.png: no face found"), "{}", studio.log.lock().unwrap());

    let photos = sess["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 2, "{photos:?}");
    let (big, group) = (&photos[0], &photos[1]);
    assert_eq!((&big["slot"], &big["name"]), (&json!("photo-0"), &json!("big")));
    assert_eq!((&group["slot"], &group["name"]), (&json!("photo-1"), &json!("group")));
    assert_eq!(group["faces"].as_array().unwrap().iter().map(|f| f["slot"].clone()).collect::<Vec<_>>(), [json!(0), json!(1), json!(2)]);
    assert_eq!(big["faces"][0]["slot"], "example");
    assert_eq!((&group["faces_found"], &big["faces_found"]), (&json!(3), &json!(1)));
    // The group is shown at its own size, the big photo scaled to the
    // display side.
    assert_eq!((&group["width"], &group["height"], &group["size"]), (&json!(420), &json!(260), &json!([420, 260])));
    assert_eq!((&big["width"], &big["height"], &big["size"]), (&json!(DISPLAY_SIDE), &json!(576), &json!([1600, 900])));

    // The boxes lie over the drawn faces.
    let scale = DISPLAY_SIDE as f64 / 1600.0;
    let on_display = |s: Square| s.map(|v| (v as f64 * scale).round() as u32);
    let group_boxes = boxes(group);
    match_faces("group", &group_boxes, &folder.group_faces);
    let big_box = boxes(big);
    match_faces("big photo", &big_box, &[on_display(folder.big_face)]);

    // Unedited, each photo is the photo itself (the group exactly; the big
    // one as its display copy), and so is the whole photo.
    let path = |file: &str| format!("/api/sessions/{id}/images/{file}");
    let group_v0 = studio.png(&path("photo-1.png?v=0"));
    assert!(changed(&group_v0, &folder.group).is_empty(), "the unedited group photo is not the photo");
    let big_v0 = studio.png(&path("photo-0.png?v=0"));
    assert_eq!(big_v0.dimensions(), (DISPLAY_SIDE, 576));
    let plain_v0 = studio.png(&path("3.png?v=0"));
    assert!(changed(&plain_v0, &image::open(folder.dir.join("plain.png")).unwrap().to_rgb8()).is_empty());
    // Faces' tiles are their aligned crops, at the model's resolution.
    let tile_v0 = studio.png(&path("1.png?v=0"));
    assert_eq!(tile_v0.dimensions(), (64, 64));
    assert_eq!(studio.png(&path("example.png?v=0")).dimensions(), (64, 64));

    // An edit changes each photo inside its faces only, every face by much.
    let state = studio.json("POST", &format!("/api/sessions/{id}/direction"), Some(json!({"index": 0, "strength": 8})), 200);
    assert_eq!(state["version"], 1);
    let group_v1 = studio.png(&path("photo-1.png"));
    check_changes("group", &folder.group, &group_v1, &group_boxes, &folder.group_faces);
    let big_v1 = studio.png(&path("photo-0.png"));
    check_changes("big photo", &big_v0, &big_v1, &big_box, &[on_display(folder.big_face)]);
    assert!(!changed(&tile_v0, &studio.png(&path("1.png"))).is_empty(), "a face's tile did not change");
    assert!(!changed(&plain_v0, &studio.png(&path("3.png"))).is_empty(), "the whole photo did not change");

    // A strength change recomposites every photo.
    studio.json("POST", &format!("/api/sessions/{id}/strength"), Some(json!({"strength": -8})), 200);
    let group_v2 = studio.png(&path("photo-1.png"));
    assert!(!changed(&group_v1, &group_v2).is_empty(), "the group did not follow the strength");
    check_changes("group at -8", &folder.group, &group_v2, &group_boxes, &folder.group_faces);

    // The export has the photos at full size, edited as the page shows
    // them, and names faces in its alphas.
    let (status, zip) = studio.request("GET", &format!("/api/sessions/{id}/export.zip"), None);
    assert_eq!(status, 200);
    let exported_group = image::load_from_memory(&unzip(&zip, "photos/group.png")).unwrap().to_rgb8();
    assert!(changed(&exported_group, &group_v2).is_empty(), "the exported group is not the page's");
    let exported_big = image::load_from_memory(&unzip(&zip, "photos/big.png")).unwrap().to_rgb8();
    // The box on the display copy, back on the photo (give or take the
    // copy's rounding).
    let [x0, y0, x1, y1] = big_box[0].map(|v| v as f64 / scale);
    let full_box = [x0.floor() as u32 - 2, y0.floor() as u32 - 2, x1.ceil() as u32 + 2, y1.ceil() as u32 + 2];
    check_changes("exported big photo", &folder.big, &exported_big, &[full_box], &[folder.big_face]);
    for name in ["example.png", "group-face1.png", "group-face3.png", "plain.png"] {
        unzip(&zip, name);
    }
    let alphas: Value = serde_json::from_slice(&unzip(&zip, "alphas.json")).unwrap();
    assert_eq!(alphas["example"], json!({"photo": "big", "face": 1}));
    assert_eq!((&alphas["alphas"][1]["photo"], &alphas["alphas"][1]["face"]), (&json!("group"), &json!(2)));
    assert!(alphas["alphas"][1]["alpha"].is_number());

    // Photo slots past the session's are refused.
    for bad in ["photo-2.png", "photo-x.png", "photo-.png"] {
        let (status, body) = studio.request("GET", &path(bad), None);
        assert_eq!(status, 404, "{bad}: {}", String::from_utf8_lossy(&body));
    }
    println!("all checks in {:.1} s", started.elapsed().as_secs_f64());
    drop(studio);
    std::fs::remove_dir_all(&folder.dir).unwrap();
}

#[test]
fn invert_steps_belong_to_a_folder_and_are_at_least_one() {
    let binary = common::binary();
    for (args, want) in [
        (vec!["--invert-steps", "20"], "--invert-steps is for the photos of --folder"),
        (vec!["--folder", "x", "--invert-steps", "0"], "--invert-steps must be 1 to 100000"),
        (vec!["--folder", "x", "--invert-steps", "many"], "--invert-steps: 'many' is not a number"),
    ] {
        let out = Command::new(&binary).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(want), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
