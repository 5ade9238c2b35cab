//! The method on the tiny64 fixture: optimisation, transfer invariants,
//! interactive strength, masks, presets.

mod common;

use editone::edit::method::{dot, RowMask};
use editone::edit::{preset, Edit, Init, LatentShape, Objective, OptimizeOptions};
use editone::files::Existing;
use editone::{ErrorKind, Model};
use std::fs;

fn setup() -> (Model, LatentShape, Vec<f32>, Vec<f32>) {
    let dir = common::fixture("tiny64");
    let model = Model::load(&dir, common::placement()).unwrap();
    let shape = LatentShape::of(model.info());
    let w0 = model.latent_from_seed(1, None, 1.0).unwrap();
    let edited = model.latent_from_seed(2, None, 1.0).unwrap();
    let edited: Vec<f32> = w0.iter().zip(&edited).map(|(a, b)| a + 0.3 * (b - a)).collect();
    (model, shape, w0, edited)
}

fn quick(iterations: u32) -> OptimizeOptions {
    OptimizeOptions { iterations, learning_rate: 1e-2, patience: 0, ..OptimizeOptions::default() }
}

#[test]
fn optimisation_lowers_the_paper_loss() {
    let (model, shape, w0, edited) = setup();
    let mut edit = Edit::from_latents(shape, &w0, &edited).unwrap();
    let report = edit.optimize(&model, &quick(40), None).unwrap();
    eprintln!("{report:?}");
    assert_eq!(report.iterations, 40);
    assert!(report.best_loss < 0.5 * report.initial_loss, "{report:?}");
    assert!(edit.optimized().is_some());
    assert_ne!(edit.direction(), edit.naive_direction().as_slice());
}

#[test]
fn batch_objective_starts_at_the_naive_direction_and_improves() {
    let (model, shape, w0, edited) = setup();
    let mut edit = Edit::from_latents(shape, &w0, &edited).unwrap();
    let opts = OptimizeOptions { objective: Objective::Batch, batch_size: 4, seed: 3, ..quick(5) };
    let report = edit.optimize(&model, &opts, None).unwrap();
    // From dw the image term starts at zero: only the hyperplane term is left.
    let dw = edit.naive_direction();
    let expected_initial = 0.02 * dot(&w0.iter().zip(&dw).map(|(a, b)| a + b).collect::<Vec<_>>(), &dw).abs();
    assert!((report.initial_loss - expected_initial).abs() <= 1e-4 * expected_initial, "{report:?} vs {expected_initial}");
    assert!(report.best_loss <= report.initial_loss);
    // From zeros the example's image term is not zero.
    let zero_init = OptimizeOptions { init: Init::Zero, lambda: 0.0, ..opts };
    let mut edit2 = Edit::from_latents(shape, &w0, &edited).unwrap();
    let r2 = edit2.optimize(&model, &zero_init, None).unwrap();
    assert!(r2.initial_loss > 0.0 && r2.best_loss < r2.initial_loss, "{r2:?}");
}

#[test]
fn cancellation_leaves_the_edit_unchanged() {
    let (model, shape, w0, edited) = setup();
    let mut edit = Edit::from_latents(shape, &w0, &edited).unwrap();
    let before = edit.clone();
    let mut calls = 0;
    let mut cancel_at_3 = |stage: &str, done: u64, total: u64| {
        assert_eq!(stage, "optimize");
        assert_eq!(total, 50);
        calls += 1;
        done < 3
    };
    let err = edit.optimize(&model, &quick(50), Some(&mut cancel_at_3)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Cancelled);
    assert_eq!(calls, 3);
    assert_eq!(edit, before);
}

#[test]
fn early_stop_reports_where_it_stopped() {
    let (model, shape, w0, edited) = setup();
    let mut edit = Edit::from_latents(shape, &w0, &edited).unwrap();
    // Steps this small cannot improve the loss measurably, so it stops
    // after `patience` steps and keeps its starting point, dw.
    let opts = OptimizeOptions {
        iterations: 200,
        learning_rate: 1e-12,
        patience: 5,
        init: Init::Naive,
        ..OptimizeOptions::default()
    };
    let report = edit.optimize(&model, &opts, None).unwrap();
    assert!(report.stopped_early && report.iterations == 6, "{report:?}");
    assert_eq!(edit.direction(), edit.naive_direction().as_slice());
}

#[test]
fn transfer_puts_every_latent_on_the_example_hyperplane() {
    let (model, shape, w0, edited) = setup();
    let mut edit = Edit::from_latents(shape, &w0, &edited).unwrap();
    edit.optimize(&model, &quick(10), None).unwrap();
    let n = edit.unit_direction().to_vec();
    let target = dot(&w0, &n) + edit.strength();
    let example_final = edit.apply(&w0).unwrap().0;
    assert!((dot(&example_final, &n) - target).abs() <= 1e-5 * target.abs().max(1.0));
    for seed in 10..20 {
        let w = model.latent_from_seed(seed, None, 1.0).unwrap();
        let (moved, alpha) = edit.apply(&w).unwrap();
        let on_plane = dot(&moved, &n);
        assert!((on_plane - target).abs() <= 1e-5 * target.abs().max(1.0), "seed {seed}: {on_plane} vs {target}");
        assert!((alpha - (dot(&edit.apply(&w0).unwrap().0, &n) - dot(&w, &n))).abs() < 1e-4);
    }
}

#[test]
fn baselines_are_the_papers_and_follow_the_example_strength() {
    let (model, shape, w0, edited) = setup();
    let mut edit = Edit::from_latents(shape, &w0, &edited).unwrap();
    edit.optimize(&model, &OptimizeOptions { iterations: 5, ..OptimizeOptions::default() }, None).unwrap();
    let w = model.latent_from_seed(40, None, 0.7).unwrap();
    let plus = |v: &[f32], k: f32| -> Vec<f32> { w.iter().zip(v).map(|(x, d)| x + k * d).collect() };
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-6 * (1.0 + y.abs()));
    // At the strength the edit was made with: w + dw and w + d*, exactly.
    assert_eq!(edit.strength_scale(), 1.0);
    assert_eq!(edit.apply_naive(&w).unwrap(), plus(&edit.naive_direction(), 1.0));
    assert_eq!(edit.apply_unscaled(&w).unwrap(), plus(edit.direction(), 1.0));
    // Twice the example's strength: twice the offsets.
    edit.set_strength(2.0 * edit.strength()).unwrap();
    assert!((edit.strength_scale() - 2.0).abs() < 1e-12);
    assert!(close(&edit.apply_naive(&w).unwrap(), &plus(&edit.naive_direction(), 2.0)));
    assert!(close(&edit.apply_unscaled(&w).unwrap(), &plus(edit.direction(), 2.0)));
}

#[test]
fn example_strength_shifts_every_alpha_equally() {
    let (model, shape, w0, edited) = setup();
    let mut edit = Edit::from_latents(shape, &w0, &edited).unwrap();
    let latents: Vec<Vec<f32>> = (30..36).map(|s| model.latent_from_seed(s, None, 0.7).unwrap()).collect();
    let before: Vec<f64> = latents.iter().map(|w| edit.alpha(w).unwrap()).collect();
    let a = edit.strength();
    edit.set_strength(a + 1.25).unwrap();
    for (w, b) in latents.iter().zip(&before) {
        assert!((edit.alpha(w).unwrap() - b - 1.25).abs() < 1e-9);
    }
    // The example itself moves by exactly the new strength along n.
    assert!((edit.alpha(&w0).unwrap() - (a + 1.25)).abs() < 1e-6);
    let mut table = editone::edit::AlphaTable::default();
    let keys: Vec<usize> = (0..latents.len()).collect();
    let alphas = table.alphas(&edit, &keys, |i| Ok(latents[i].as_slice())).unwrap();
    for (w, got) in latents.iter().zip(&alphas) {
        assert_eq!(edit.alpha(w).unwrap(), *got);
    }
    // After a strength change the table answers from its projections
    // alone: no latent is asked for.
    edit.set_strength(a - 3.0).unwrap();
    let moved = table.alphas(&edit, &keys, |_| -> editone::Result<&[f32]> { panic!("a projection was recomputed") }).unwrap();
    for (w, got) in latents.iter().zip(&moved) {
        assert!((edit.alpha(w).unwrap() - got).abs() < 1e-9);
    }
}

#[test]
fn edit_rows_mask_keeps_other_rows_exactly() {
    let (model, shape, w0, edited) = setup();
    let mut edit = Edit::from_latents(shape, &w0, &edited).unwrap();
    let opts = OptimizeOptions { edit_rows: 4, ..quick(10) };
    edit.optimize(&model, &opts, None).unwrap();
    let w = shape.w_dim;
    assert!(edit.direction()[4 * w..].iter().all(|&x| x == 0.0), "d* must stay zero outside the mask");
    assert!(edit.direction()[..4 * w].iter().any(|&x| x != 0.0));
    let other = model.latent_from_seed(77, None, 1.0).unwrap();
    let (moved, _) = edit.apply(&other).unwrap();
    assert_eq!(&moved[4 * w..], &other[4 * w..]);
    assert_ne!(&moved[..4 * w], &other[..4 * w]);
    assert_eq!(edit.mask(), &RowMask::first(4, shape.num_ws, w));
}

#[test]
fn sequence_of_edits_transfers_only_the_final_state() {
    let (_model, shape, w0, _) = setup();
    let d1: Vec<f32> = (0..shape.len()).map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0).collect();
    let d2: Vec<f32> = (0..shape.len()).map(|i| ((i * 5 % 11) as f32 - 5.0) / 10.0).collect();
    let mut chained = Edit::from_direction(shape, &w0, &d1, 0.5).unwrap();
    chained.push_direction(&d2, -0.25).unwrap();
    let final_state: Vec<f32> = w0.iter().zip(d1.iter().zip(&d2)).map(|(w, (a, b))| w + 0.5 * a + -0.25 * b).collect();
    let direct = Edit::from_latents(shape, &w0, &final_state).unwrap();
    assert_eq!(chained.edited(), direct.edited());
    assert_eq!(chained.unit_direction(), direct.unit_direction());
}

#[test]
fn no_op_and_non_finite_edits_are_refused() {
    let (_model, shape, w0, _) = setup();
    assert_eq!(Edit::from_latents(shape, &w0, &w0).unwrap_err().kind, ErrorKind::InvalidArgument);
    let mut bad = w0.clone();
    bad[3] = f32::NAN;
    assert_eq!(Edit::from_latents(shape, &w0, &bad).unwrap_err().kind, ErrorKind::InvalidArgument);
    assert_eq!(Edit::from_latents(shape, &w0, &w0[..5]).unwrap_err().kind, ErrorKind::InvalidArgument);
}

#[test]
fn presets_round_trip_bit_exactly() {
    let (model, shape, w0, edited) = setup();
    let mut edit = Edit::from_latents(shape, &w0, &edited).unwrap();
    edit.optimize(&model, &OptimizeOptions { edit_rows: 6, ..quick(5) }, None).unwrap();
    edit.set_strength(edit.strength() * 1.5 + 0.123456789).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("edit.json");
    preset::save(&edit, &model, &path, Existing::Refuse).unwrap();
    let loaded = preset::load(&model, &path).unwrap();
    assert_eq!(loaded, edit);
    assert_eq!(loaded.strength().to_bits(), edit.strength().to_bits());
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(loaded.direction()), bits(edit.direction()));
}

#[test]
fn presets_for_other_models_or_malformed_are_refused() {
    let (model, shape, w0, edited) = setup();
    let cond = common::fixture("cond128");
    let other = Model::load(&cond, common::placement()).unwrap();
    let edit = Edit::from_latents(shape, &w0, &edited).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("edit.json");
    preset::save(&edit, &model, &path, Existing::Refuse).unwrap();
    assert_eq!(preset::load(&other, &path).unwrap_err().kind, ErrorKind::Incompatible);

    let good = fs::read_to_string(&path).unwrap();
    let with = |key: &str, value: serde_json::Value| {
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        v[key] = value;
        v.to_string()
    };
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("not json", "{{{".into()),
        ("truncated", good[..good.len() / 2].to_string()),
        ("array", "[1,2,3]".into()),
        ("wrong format", good.replacen("editone-preset", "other", 1)),
        ("unknown field", good.replacen("{", "{\"extra\": 1,", 1)),
        ("huge number", good.replacen("\"strength\": ", "\"strength\": 1e400, \"x\": ", 1)),
        ("offset mismatch", with("offset", serde_json::json!(12345.0))),
        ("short direction", with("direction", serde_json::json!([1.0, 2.0]))),
        ("not a float32", with("strength", serde_json::json!("x"))),
        ("zero direction", with("direction", serde_json::json!(vec![0.0; 640]))),
        ("short mask", with("mask", serde_json::json!([true]))),
        ("mask none", good.replace("true", "false")),
    ];
    for (name, text) in cases {
        fs::write(&path, &text).unwrap();
        let err = preset::load(&model, &path).unwrap_err();
        eprintln!("{name}: {}", err.message);
        assert_eq!(err.kind, ErrorKind::Format, "{name}: {}", err.message);
    }
    let err = preset::load(&model, &tmp.path().join("missing.json")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Io);
}

/// A saved preset's JSON with `change` applied to it.
fn edited_preset(good: &str, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(good).unwrap();
    change(&mut v);
    v.to_string()
}

#[test]
fn presets_whose_fields_disagree_are_refused() {
    let (model, shape, w0, edited) = setup();
    let tmp = tempfile::tempdir().unwrap();
    let naive_path = tmp.path().join("naive.json");
    preset::save(&Edit::from_latents(shape, &w0, &edited).unwrap(), &model, &naive_path, Existing::Refuse).unwrap();
    let mut optimized = Edit::from_latents(shape, &w0, &edited).unwrap();
    optimized.optimize(&model, &quick(3), None).unwrap();
    let optimized_path = tmp.path().join("optimized.json");
    preset::save(&optimized, &model, &optimized_path, Existing::Refuse).unwrap();
    let n = shape.len();
    let zeroed = |v: &mut serde_json::Value| v["edited"] = serde_json::json!(vec![0.0; n]);
    let huge = |v: &mut serde_json::Value| v["edited"] = serde_json::json!(vec![f32::MAX as f64; n]);
    let as_version_1 = |v: &mut serde_json::Value| {
        v["version"] = serde_json::json!(1);
        v.as_object_mut().unwrap().remove("checksum");
    };
    let path = tmp.path().join("damaged.json");
    for source in [&naive_path, &optimized_path] {
        let good = fs::read_to_string(source).unwrap();
        for (name, change) in [("zeroed edited", &zeroed as &dyn Fn(&mut serde_json::Value)), ("FLT_MAX edited", &huge)] {
            // Version 2: the checksum catches any changed field.
            fs::write(&path, edited_preset(&good, change)).unwrap();
            let err = preset::load(&model, &path).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Format, "{name}: {err}");
            assert!(err.message.contains("checksum"), "{name}: {err}");
            // Version 1 has no checksum: before d* is optimised the direction
            // must be edited - example.
            if source == &naive_path {
                fs::write(&path, edited_preset(&good, |v| (change(v), as_version_1(v)).0)).unwrap();
                let err = preset::load(&model, &path).unwrap_err();
                assert_eq!(err.kind, ErrorKind::Format, "{name}, version 1: {err}");
                assert!(err.message.contains("disagree") || err.message.contains("overflows"), "{name}, version 1: {err}");
            }
        }
        // An undamaged version-1 preset still loads as it was.
        fs::write(&path, edited_preset(&good, as_version_1)).unwrap();
        assert_eq!(preset::load(&model, &path).unwrap(), preset::load(&model, source).unwrap());
    }
}

#[test]
fn options_beyond_any_useful_value_are_refused_before_running() {
    let (model, shape, w0, edited) = setup();
    let mut edit = Edit::from_latents(shape, &w0, &edited).unwrap();
    for (name, options) in [
        ("learning rate 1e30", OptimizeOptions { learning_rate: 1e30, ..quick(3) }),
        ("lambda 1e30", OptimizeOptions { lambda: 1e30, ..quick(3) }),
        ("edit_rows past num_ws", OptimizeOptions { edit_rows: shape.num_ws as u32 + 1, ..quick(3) }),
    ] {
        let err = edit.optimize(&model, &options, None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument, "{name}: {err}");
    }
    // The largest accepted learning rate runs without an internal error.
    let largest = OptimizeOptions { learning_rate: editone::edit::optimize::MAX_LEARNING_RATE, ..quick(3) };
    if let Err(e) = edit.optimize(&model, &largest, None) {
        assert_ne!(e.kind, ErrorKind::Internal, "{e}");
    }
}

#[test]
fn a_direction_that_overflows_says_so() {
    let (_model, shape, w0, _) = setup();
    let huge = vec![f32::MAX; shape.w_dim];
    let err = Edit::from_direction(shape, &w0, &huge, 3.0).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    assert!(err.message.contains("overflows"), "{err}");
}
