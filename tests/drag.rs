//! Point dragging (DragGAN) as the example-edit source.

mod common;

use editone::edit::drag::{drag, edit_from_drag, DragOptions, Point};
use editone::edit::OptimizeOptions;
use editone::{ErrorKind, Model};

fn p(x: f64, y: f64) -> Point {
    Point { x, y }
}

fn distance(a: Point, b: Point) -> f64 {
    ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt()
}

fn assert_drag_reaches(model: &Model, seed: u64, handle: Point, target: Point) {
    let w = model.latent_from_seed(seed, None, 1.0).unwrap();
    let out = drag(model, &w, &[handle], &[target], &DragOptions::default(), None, None).unwrap();
    let d = distance(out.points[0], target);
    eprintln!("seed {seed}: {:?} -> {:?} in {} steps, {d:.2} px from target", handle, out.points[0], out.steps);
    assert!(out.reached && d <= 2.0, "seed {seed}: handle ended {d:.2} px from its target after {} steps", out.steps);
    assert!(out.steps <= DragOptions::default().max_steps);
}

#[test]
fn dragging_the_face_edge_reaches_its_target() {
    let model = Model::load_default(common::placement()).unwrap();
    for seed in 1..=4 {
        assert_drag_reaches(&model, seed, p(16.0, 36.0), p(22.0, 36.0)); // left cheek edge, 6 px right
    }
}

#[test]
fn dragging_the_nose_sideways_reaches_its_target() {
    let model = Model::load_default(common::placement()).unwrap();
    for seed in [1, 4] {
        assert_drag_reaches(&model, seed, p(32.0, 36.0), p(40.0, 36.0)); // nose tip, 8 px right
    }
}

/// Mean absolute pixel change against the original outside `region`.
fn change_outside(model: &Model, a: &[f32], b: &[f32], region: &[bool]) -> f64 {
    let img = model.render(&[a, b]).unwrap();
    let diff = (img.get(0) - img.get(1)).abs().sum_dim_intlist([0i64].as_slice(), false, None::<tch::Kind>);
    let flat = Vec::<f32>::try_from(diff.flatten(0, -1)).unwrap();
    let outside: Vec<f64> = flat.iter().zip(region).filter(|(_, &r)| !r).map(|(&d, _)| d as f64).collect();
    outside.iter().sum::<f64>() / outside.len() as f64
}

#[test]
fn a_masked_drag_changes_less_outside_the_editable_region() {
    let model = Model::load_default(common::placement()).unwrap();
    let w = model.latent_from_seed(2, None, 1.0).unwrap();
    // The nose and mouth are editable; the rest should stay.
    let region: Vec<bool> = (0..64 * 64).map(|i| (24..44).contains(&(i % 64)) && (28..48).contains(&(i / 64))).collect();
    let (handle, target) = (p(32.0, 36.0), p(38.0, 36.0));
    let base = DragOptions { max_steps: 60, ..DragOptions::default() };
    let free = drag(&model, &w, &[handle], &[target], &base, None, None).unwrap();
    let masked = DragOptions { editable: Some(region.clone()), ..base };
    let kept = drag(&model, &w, &[handle], &[target], &masked, None, None).unwrap();
    let (free_change, kept_change) = (change_outside(&model, &w, &free.latent, &region), change_outside(&model, &w, &kept.latent, &region));
    eprintln!("mean change outside the region: unmasked {free_change:.4}, masked {kept_change:.4}");
    assert!(kept_change < free_change, "masked {kept_change} vs unmasked {free_change}");
}

#[test]
fn a_drag_is_an_ordinary_edit_limited_to_its_rows() {
    let dir = common::fixture("tiny64");
    let model = Model::load(&dir, common::placement()).unwrap();
    let w = model.latent_from_seed(5, None, 1.0).unwrap();
    let options = DragOptions { max_steps: 5, ..DragOptions::default() };
    let (mut edit, outcome) = edit_from_drag(&model, &w, &[p(20.0, 20.0)], &[p(30.0, 26.0)], &options, None, None).unwrap();
    assert_eq!(outcome.points.len(), 1);
    let w_dim = model.info().w_dim;
    assert_eq!(&outcome.latent[6 * w_dim..], &w[6 * w_dim..], "rows 6.. stay the example's own");
    assert!(edit.direction()[6 * w_dim..].iter().all(|&x| x == 0.0));
    edit.optimize(&model, &OptimizeOptions { iterations: 3, patience: 0, ..OptimizeOptions::default() }, None).unwrap();
    assert!(edit.direction()[6 * w_dim..].iter().all(|&x| x == 0.0), "d* keeps to the dragged rows");
    let other = model.latent_from_seed(9, None, 1.0).unwrap();
    assert!(edit.apply(&other).is_ok());
}

#[test]
fn cancelling_a_drag_and_reporting_positions() {
    let model = Model::load_default(common::placement()).unwrap();
    let w = model.latent_from_seed(1, None, 1.0).unwrap();
    let mut seen = Vec::new();
    let mut watch = |step: u32, points: &[Point], _: &[f32]| {
        seen.push((step, points[0]));
        step < 2
    };
    let err = drag(&model, &w, &[p(32.0, 36.0)], &[p(40.0, 36.0)], &DragOptions::default(), None, Some(&mut watch)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Cancelled);
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].1, p(32.0, 36.0));
}

#[test]
fn bad_drags_are_refused_with_clear_errors() {
    let model = Model::load_default(common::placement()).unwrap();
    let w = model.latent_from_seed(1, None, 1.0).unwrap();
    let d = DragOptions::default();
    let err = |h: &[Point], t: &[Point], o: &DragOptions| drag(&model, &w, h, t, o, None, None).unwrap_err();
    for (what, e) in [
        ("no points", err(&[], &[], &d)),
        ("count mismatch", err(&[p(1.0, 1.0)], &[], &d)),
        ("outside", err(&[p(70.0, 1.0)], &[p(1.0, 1.0)], &d)),
        ("negative", err(&[p(1.0, 1.0)], &[p(-1.0, 1.0)], &d)),
        ("nan", err(&[p(f64::NAN, 1.0)], &[p(1.0, 1.0)], &d)),
        ("mask size", err(&[p(1.0, 1.0)], &[p(5.0, 1.0)], &DragOptions { editable: Some(vec![true; 10]), ..d.clone() })),
        ("empty mask", err(&[p(1.0, 1.0)], &[p(5.0, 1.0)], &DragOptions { editable: Some(vec![false; 4096]), ..d.clone() })),
        ("rows", err(&[p(1.0, 1.0)], &[p(5.0, 1.0)], &DragOptions { rows: Some(2), ..d.clone() })),
        ("steps", err(&[p(1.0, 1.0)], &[p(5.0, 1.0)], &DragOptions { max_steps: 0, ..d.clone() })),
    ] {
        eprintln!("{what}: {}", e.message);
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{what}");
    }
}
