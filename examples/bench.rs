//! Benchmarks (never asserted): rendering throughput of the native
//! generator, d* optimisation time, alpha recomputation and transfer.
//! Run with `make bench`; numbers go to the README's performance section.

use editone::edit::drag::{drag, DragOptions, Point};
use editone::edit::{AlphaTable, Edit, LatentShape, OptimizeOptions};
use editone::{Engine, EngineOptions, Model};
use std::path::PathBuf;
use std::time::Instant;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stylegan2")
}

/// Median seconds of `runs` calls after one warm-up call.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    f();
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[runs / 2]
}

fn render_throughput(name: &str, model: &Model) {
    for batch in [1usize, 8] {
        let latents: Vec<Vec<f32>> = (0..batch as u64)
            .map(|s| model.latent_from_seed(s, (model.info().c_dim > 0).then_some(0), 1.0).unwrap())
            .collect();
        let refs: Vec<&[f32]> = latents.iter().map(|w| w.as_slice()).collect();
        let secs = time(7, || model.render(&refs).unwrap());
        println!("render {name:8} batch {batch:2}: {:8.1} images/s ({:.2} ms per batch)", batch as f64 / secs, secs * 1e3);
    }
}

/// A whole drag and its time per step.
fn drag_timing(name: &str, model: &Model, handle: Point, target: Point, max_steps: u32) {
    let w = model.latent_from_seed(1, (model.info().c_dim > 0).then_some(0), 1.0).unwrap();
    let options = DragOptions { max_steps, ..DragOptions::default() };
    let t = Instant::now();
    let out = drag(model, &w, &[handle], &[target], &options, None, None).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "drag {name:8}: {} steps in {:.2} s ({:.1} ms per step){}",
        out.steps,
        secs,
        secs * 1e3 / out.steps.max(1) as f64,
        if out.reached { ", reached" } else { "" }
    );
}

/// A whole inversion of one rendered face at the model's default steps.
fn invert_timing(name: &str, model: &Model) {
    use editone::invert::{default_steps, invert, psnr, InvertOptions};
    let w = model.latent_from_seed(3, None, 1.0).unwrap();
    let target = model.render(&[&w]).unwrap();
    let t = Instant::now();
    let found = invert(model, &target, &InvertOptions::default(), None).unwrap().remove(0);
    let secs = t.elapsed().as_secs_f64();
    let steps = default_steps(model);
    let quality = psnr(&model.render(&[&found]).unwrap(), &target);
    println!(
        "invert {name:8}: {steps} steps in {secs:.2} s ({:.1} ms per step), PSNR {quality:.1} dB",
        secs * 1e3 / steps as f64
    );
}

fn main() {
    let engine = Engine::init(&EngineOptions::default()).unwrap();
    println!("device {} with {} CPU threads", engine.device_name(), engine.cpu_threads());
    let dir = fixtures();
    if !dir.is_dir() {
        eprintln!("bench needs the fixture models in {}", dir.display());
        std::process::exit(2);
    }
    let tiny = Model::load(&dir.join("tiny64"), editone::Engine::get().unwrap().placement()).unwrap();
    let cond = Model::load(&dir.join("cond128"), editone::Engine::get().unwrap().placement()).unwrap();
    render_throughput("tiny64", &tiny);
    render_throughput("cond128", &cond);

    let face = Model::load_default(editone::Engine::get().unwrap().placement()).unwrap();
    let p = |x, y| Point { x, y };
    drag_timing("default", &face, p(32.0, 36.0), p(40.0, 36.0), 200);
    drag_timing("cond128", &cond, p(64.0, 64.0), p(72.0, 64.0), 20);
    invert_timing("default", &face);
    invert_timing("tiny64", &tiny);

    let shape = LatentShape::of(tiny.info());
    let w0 = tiny.latent_from_seed(1, None, 1.0).unwrap();
    let w1 = tiny.latent_from_seed(2, None, 1.0).unwrap();
    let mut edit = Edit::from_latents(shape, &w0, &w1).unwrap();
    let opts = OptimizeOptions { patience: 0, ..OptimizeOptions::default() };
    let t = Instant::now();
    let report = edit.optimize(&tiny, &opts, None).unwrap();
    println!(
        "optimize tiny64: {} paper iterations in {:.2} s (loss {:.4} -> {:.4})",
        report.iterations,
        t.elapsed().as_secs_f64(),
        report.initial_loss,
        report.best_loss
    );

    let count = 100_000;
    let latents: Vec<Vec<f32>> = (0..count).map(|i| w1.iter().map(|x| x + (i % 97) as f32 * 1e-3).collect()).collect();
    let t = Instant::now();
    let mut table = AlphaTable::default();
    let keys: Vec<usize> = (0..count).collect();
    table.alphas(&edit, &keys, |i| Ok(latents[i].as_slice())).unwrap();
    let project = t.elapsed().as_secs_f64();
    let mut a = edit.strength();
    let update = time(21, || {
        a += 0.01;
        edit.set_strength(a).unwrap();
        table.alphas(&edit, &keys, |i| Ok(latents[i].as_slice())).unwrap();
    });
    println!(
        "alphas for {count} latents: first projection {:.1} ms, each strength change {:.3} ms",
        project * 1e3,
        update * 1e3
    );

    let targets: Vec<Vec<f32>> = (10..42).map(|s| tiny.latent_from_seed(s, None, 1.0).unwrap()).collect();
    let secs = time(5, || {
        let edited: Vec<Vec<f32>> = targets.iter().map(|w| edit.apply(w).unwrap().0).collect();
        let refs: Vec<&[f32]> = edited.iter().map(|w| w.as_slice()).collect();
        refs.chunks(8).map(|c| tiny.render(c).unwrap().size()[0]).sum::<i64>()
    });
    println!("apply + render tiny64, 32 latents: {:.1} images/s", 32.0 / secs);
}
