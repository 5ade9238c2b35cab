//! editone studio: a local web page for interactive batch editing, on the
//! library's Rust API (docs/studio-api.md).

mod api;
mod body;
mod events;
mod inverted;
mod items;
mod refusal;
mod render;
mod server;
mod session;
mod studio;
mod tuning;

use editone::edit::sefa;
use editone::model::Model;
use editone::tune::TuneOptions;
use editone::{Engine, EngineOptions};
use items::Source;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use studio::{Studio, MAX_COUNT};


const USAGE: &str = "usage: editone-studio [--model PATH] [--port N] [--count N]
                      [--seeds LIST [--class K] |
                       --folder DIR [--invert-steps N] [--tune [--tune-steps N]]]
                      [--device D] [--threads N]

Serves a page for interactive batch editing on http://127.0.0.1:PORT/ (loopback only).

  --model PATH   model file or folder (default: the built-in face model)
  --port N       port; 0 (default) lets the system pick a free one
  --count N      batch images per page, 1 to 48 (default 12)
  --seeds LIST   example seed first, then the batch, e.g. 0-12 or 7,1-11 (default 0-48)
  --class K      class of every image, for conditional models (default 0)
  --folder DIR   edit what DIR holds instead of seeds, in name order (the first 49
                 images; the first is the example):
                 - NAME.f32 latents (W or W+ float32), with NAME-photo.png rendered
                   as a photo when present, as 'editone invert --out DIR' writes them;
                 - NAME.faces.f32 with NAME.json and NAME-photo.png ('editone invert
                   --faces'): the photo's faces, read back; with the tuned.safetensors
                   of 'invert --faces --tune' beside them, they render through it;
                 - every other PNG or JPEG: each face in it is an image ('NAME face 2'),
                   its faces inverted at start and the photo shown with all its faces
                   edited; a photo without a face is inverted and edited whole
  --invert-steps N  projector steps per photo of --folder (default: the model's,
                 600 for the built-in model); fewer start faster and fit less well
  --tune         after inverting, tune one copy of the generator on all the photos of
                 --folder together (pivotal tuning), so that their faces render
                 faithfully; the folder's images render through it (not through a
                 tuned.safetensors of the folder), edits are the same
  --tune-steps N tuning steps, 1 to 100000 (default DEFAULT_TUNE_STEPS); fewer start faster
  --device D     auto (default), cpu, cuda or cuda:N
  --threads N    CPU threads for tensor math (default: the library's choice)";

/// The usage text, with the library's default tuning steps.
fn usage() -> String {
    USAGE.replace("DEFAULT_TUNE_STEPS", &TuneOptions::default().steps.to_string())
}

/// SeFa directions offered on the page.
const DIRECTIONS: usize = 10;
/// MiB of freed CPU tensor buffers (1 MiB and up) that the engine keeps for
/// reuse; the library's default is 1024. The cache serves the whole process
/// and is never given back, so its cap is what it adds to the studio's
/// resident memory after a burst of sessions. The studio renders one chunk
/// of at most 4 images at a time on one thread, so only that chunk's
/// activations come back for reuse: for the 64x64 default model they are
/// under 1 MiB and never cached; a 256x256 StyleGAN2's largest is 134 MB at
/// 4 images, and 256 MiB still keeps one of those for the next chunk.
const CPU_CACHE_MIB: u32 = 256;

struct Args {
    model: Option<PathBuf>,
    port: u16,
    count: usize,
    seeds: Vec<u64>,
    class: usize,
    folder: Option<PathBuf>,
    invert_steps: Option<u32>,
    tune: bool,
    tune_steps: Option<u32>,
    device: String,
    threads: u32,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("editone-studio: {message}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("editone-studio: {message}");
            ExitCode::from(1)
        }
    }
}

fn serve(args: Args) -> Result<(), String> {
    let options = EngineOptions { device: args.device, cpu_threads: args.threads, cpu_cache_mib: CPU_CACHE_MIB, ..EngineOptions::default() };
    let engine = Engine::init(&options).map_err(|e| format!("engine: {e}"))?;
    let model = match &args.model {
        Some(path) => Model::load(path, engine.placement()),
        None => Model::load_default(engine.placement()),
    }
    .map_err(|e| format!("model: {e}"))?;
    let c_dim = model.info().c_dim;
    if args.class >= c_dim.max(1) {
        return Err(format!("--class {} does not exist: the model has {c_dim} classes", args.class));
    }
    let class = (c_dim > 0).then_some(args.class);
    let model = Arc::new(model);
    let source = match &args.folder {
        Some(dir) => {
            let options = items::FolderOptions { limit: MAX_COUNT + 1, invert_steps: args.invert_steps, retune: args.tune };
            let mut log = |line: &str| eprintln!("editone studio: {line}");
            let mut folder = items::load_folder(&model, dir, &options, &mut log)?;
            if args.tune {
                let steps = args.tune_steps.unwrap_or(TuneOptions::default().steps);
                folder.renders = Arc::new(tuning::tune_folder(&model, &folder.items, steps, &mut log)?);
            }
            Source::Folder(folder)
        }
        None => Source::Seeds { seeds: args.seeds, class },
    };
    // Directions, like every edit, are the base's: a tuned generator
    // shares its latent space.
    let directions = sefa::directions(&model, DIRECTIONS.min(model.info().w_dim), None).map_err(|e| format!("directions: {e}"))?;
    let (port, listener) = server::bind(args.port)?;
    let studio = Arc::new(Studio::new(model, directions, source, args.count, port, render::Renderer::start()?));
    println!("editone studio: http://127.0.0.1:{port}/");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    server::run(studio, listener)
}

/// The options, or None for --help.
fn parse_args(argv: Vec<String>) -> Result<Option<Args>, String> {
    let mut args =
        Args {
        model: None,
        port: 0,
        count: 12,
        seeds: (0..=MAX_COUNT as u64).collect(),
        class: 0,
        folder: None,
        invert_steps: None,
        tune: false,
        tune_steps: None,
        device: "auto".into(),
        threads: 0,
    };
    let mut seeds_given = false;
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        if flag == "--tune" {
            args.tune = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |max: u64| value.parse::<u64>().ok().filter(|n| *n <= max).ok_or_else(|| format!("{flag}: '{value}' is not a number up to {max}"));
        match flag.as_str() {
            "--model" => args.model = Some(PathBuf::from(&value)),
            "--port" => args.port = number(u16::MAX as u64)? as u16,
            "--count" => {
                args.count = number(MAX_COUNT as u64)? as usize;
                if args.count == 0 {
                    return Err("--count must be 1 to 48".into());
                }
            }
            "--seeds" => {
                seeds_given = true;
                args.seeds = parse_seeds(&value).ok_or_else(|| format!("--seeds: '{value}' is not a list such as 0-12 or 7,1-11"))?;
            }
            "--class" => args.class = number(1 << 20)? as usize,
            "--folder" => args.folder = Some(PathBuf::from(&value)),
            "--invert-steps" => args.invert_steps = Some(steps(&flag, number(100_000)?)?),
            "--tune-steps" => args.tune_steps = Some(steps(&flag, number(100_000)?)?),
            "--device" => args.device = value,
            "--threads" => args.threads = number(1024)? as u32,
            _ => return Err(format!("unknown option '{flag}'")),
        }
    }
    if seeds_given && args.folder.is_some() {
        return Err("give --seeds or --folder, not both".into());
    }
    if args.invert_steps.is_some() && args.folder.is_none() {
        return Err("--invert-steps is for the photos of --folder".into());
    }
    if args.tune && args.folder.is_none() {
        return Err("--tune is for the photos of --folder".into());
    }
    if args.tune_steps.is_some() && !args.tune {
        return Err("--tune-steps needs --tune".into());
    }
    Ok(Some(args))
}

/// A step count of `flag`: 1 to 100000 (`number` already capped it).
fn steps(flag: &str, number: u64) -> Result<u32, String> {
    if number == 0 {
        return Err(format!("{flag} must be 1 to 100000"));
    }
    Ok(number as u32)
}

/// "7,1-11" to [7, 1, 2, ..., 11]; seeds are 32-bit as in generate.py.
fn parse_seeds(text: &str) -> Option<Vec<u64>> {
    let mut seeds = Vec::new();
    for part in text.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if b < a || seeds.len() + (b - a) as usize > 100_000 {
            return None;
        }
        seeds.extend((a..=b).map(u64::from));
    }
    Some(seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lists_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_seeds("7,1-3"), Some(vec![7, 1, 2, 3]));
        assert_eq!(parse_seeds("3-1"), None);
        assert_eq!(parse_seeds("x"), None);
        assert_eq!(parse_seeds("0-4294967295"), None);
    }
}
