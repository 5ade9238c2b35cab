//! Where a render's time goes: libtorch's profiler around batch renders of
//! a model, as `eo_render_batch` runs them into RGBA views (synthesis on
//! the engine's device, pixels made there, bytes to the host, then into the
//! views), but one batch after the other: without its look-ahead on CUDA,
//! so that the host copies show as time of their own. Prints the time per image without and under the profiler, the
//! part of it spent copying into the views, on CUDA how long one batch's
//! bytes take to reach pageable and pinned host memory, then the GPU
//! kernels (on CUDA) and the CPU operators that took the most time.
//!
//!     cargo run --release --example profile -- MODEL [--device cpu|cuda]
//!         [--batch N] [--batches K] [--tf32] [--half] [--cudnn-benchmark] [--top N]
//!
//! `--cudnn-benchmark` lets cuDNN time its algorithms for each new shape
//! and keep the fastest (libtorch's `cudnn.benchmark`), to see what that
//! would give before the library makes it a choice.
//!
//! MODEL is a model file or folder, e.g. `.cache/bench/config-f-1024.safetensors`
//! as `benches/compare.py` writes it. Development only; nothing asserts it.

use editone::profile::{profile, OpTime};
use editone::render::{HostPixels, PixelFormat};
use editone::{Engine, EngineOptions, Model};
use std::path::PathBuf;
use std::time::Instant;

struct Args {
    model: PathBuf,
    options: EngineOptions,
    batch: usize,
    batches: usize,
    top: usize,
    cudnn_benchmark: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args { model: PathBuf::new(), options: EngineOptions::default(), batch: 16, batches: 4, top: 25, cudnn_benchmark: false };
    let number = |value: Option<String>, flag: &str| -> Result<usize, String> {
        value.and_then(|v| v.parse().ok()).filter(|&n| n > 0).ok_or(format!("{flag} takes a positive number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--device" => parsed.options.device = args.next().ok_or("--device takes cpu, cuda or cuda:N")?,
            "--batch" => parsed.batch = number(args.next(), "--batch")?,
            "--batches" => parsed.batches = number(args.next(), "--batches")?,
            "--top" => parsed.top = number(args.next(), "--top")?,
            "--tf32" => parsed.options.tf32 = true,
            "--half" => parsed.options.half_precision = true,
            "--cudnn-benchmark" => parsed.cudnn_benchmark = true,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path => parsed.model = PathBuf::from(path),
        }
    }
    if parsed.model.as_os_str().is_empty() {
        return Err("usage: profile MODEL [--device D] [--batch N] [--batches K] [--tf32] [--half] [--cudnn-benchmark] [--top N]".into());
    }
    Ok(parsed)
}

/// One batch as `eo_render_batch` makes it for RGBA views like those of
/// `editone bench`: pixels on the device, bytes to the host, then each
/// image into its view. Returns the seconds spent on that last, host-only
/// step, which the profiler does not see.
fn render_batch(model: &Model, latents: &[&[f32]], views: &mut [u8]) -> f64 {
    let batch = model.render_on_device(latents).expect("the batch renders");
    let pixels = HostPixels::of_batch(&batch, PixelFormat::Rgba8).expect("pixels are made");
    let start = Instant::now();
    let view_bytes = views.len() / pixels.len();
    for (i, view) in views.chunks_exact_mut(view_bytes).enumerate() {
        let image = pixels.image(i);
        image.write(PixelFormat::Rgba8, view, image.width() as usize * 4).expect("the view takes the image");
    }
    start.elapsed().as_secs_f64()
}

/// Milliseconds to copy one batch's RGBA bytes from the GPU to pageable
/// host memory (what `HostPixels` does) and to pinned host memory (a
/// candidate), best of five each.
fn host_copy_ms(device: tch::Device, shape: [i64; 4]) -> Result<(f64, f64), tch::TchError> {
    let bytes = tch::Tensor::f_zeros(shape, (tch::Kind::Uint8, device))?;
    let best = |copy: &mut dyn FnMut() -> Result<(), tch::TchError>| -> Result<f64, tch::TchError> {
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let start = Instant::now();
            copy()?;
            best = best.min(start.elapsed().as_secs_f64() * 1e3);
        }
        Ok(best)
    };
    let pageable = best(&mut || bytes.f_to_device(tch::Device::Cpu).map(drop))?;
    let mut pinned = tch::Tensor::f_zeros(shape, (tch::Kind::Uint8, tch::Device::Cpu))?.f_pin_memory(device)?;
    let pinned = best(&mut || pinned.f_copy_(&bytes))?;
    Ok((pageable, pinned))
}

fn print_table(title: &str, times: &[OpTime], top: usize) {
    let total: f64 = times.iter().map(|t| t.seconds).sum();
    println!("\n{title} (sum {:.1} ms)", total * 1e3);
    for t in times.iter().take(top) {
        let mut name = t.name.clone();
        if name.len() > 110 {
            name.truncate(107);
            name.push_str("...");
        }
        println!("{:9.2} ms {:5.1}% {:6} calls  {name}", t.seconds * 1e3, 100.0 * t.seconds / total, t.calls);
    }
}

fn main() {
    let args = parse_args().unwrap_or_else(|message| {
        eprintln!("{message}");
        std::process::exit(2)
    });
    let engine = Engine::init(&args.options).expect("the engine starts");
    tch::Cuda::cudnn_set_benchmark(args.cudnn_benchmark);
    let model = Model::load(&args.model, editone::Engine::get().unwrap().placement()).expect("the model loads");
    let info = model.info().clone();
    let latents: Vec<Vec<f32>> = (0..args.batch as u64)
        .map(|seed| model.latent_from_seed(seed, (info.c_dim > 0).then_some(0), 1.0).expect("a latent"))
        .collect();
    let refs: Vec<&[f32]> = latents.iter().map(|w| w.as_slice()).collect();
    let mut views = vec![0u8; args.batch * info.resolution * info.resolution * 4];
    render_batch(&model, &refs, &mut views); // warm-up: kernels chosen, buffers cached
    let cuda = engine.device().is_cuda();
    let images = (args.batch * args.batches) as f64;
    let start = Instant::now();
    for _ in 0..args.batches {
        render_batch(&model, &refs, &mut views);
    }
    println!("without the profiler: {:.2} ms per image", start.elapsed().as_secs_f64() * 1e3 / images);
    if cuda {
        let side = info.resolution as i64;
        let per_image = |ms: f64| ms / args.batch as f64;
        match host_copy_ms(engine.device(), [args.batch as i64, side, side, 4]) {
            Ok((pageable, pinned)) => println!(
                "one batch's RGBA bytes to the host: {pageable:.2} ms pageable ({:.3} per image), {pinned:.2} ms pinned ({:.3})",
                per_image(pageable),
                per_image(pinned)
            ),
            Err(e) => println!("the copy to the host could not be timed: {e}"),
        }
    }
    let start = Instant::now();
    let (host_seconds, times) =
        profile(cuda, || (0..args.batches).map(|_| render_batch(&model, &refs, &mut views)).sum::<f64>()).expect("the profiler runs");
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}x{} model on {}, batch {}, {} batches: {:.2} ms per image under the profiler, of which {:.2} ms copying into RGBA views",
        info.resolution,
        info.resolution,
        engine.device_name(),
        args.batch,
        args.batches,
        seconds / images * 1e3,
        host_seconds / images * 1e3
    );
    let (gpu, cpu): (Vec<OpTime>, Vec<OpTime>) = times.into_iter().partition(|t| t.device == "cuda");
    if cuda {
        print_table("GPU kernels", &gpu, args.top);
    }
    print_table("CPU operators (inclusive: an operator's time includes those it calls)", &cpu, args.top);
}
