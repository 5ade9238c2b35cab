//! editone studio: a local web page for interactive batch editing, on the
//! library's Rust API (docs/studio-api.md).

mod api;
mod events;
mod items;
mod session;

use editone::edit::sefa::{self, Direction};
use editone::model::Model;
use editone::{Engine, EngineOptions};
use items::Source;
use session::{Refusal, Session};
use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const USAGE: &str = "usage: editone-studio [--model PATH] [--port N] [--count N]
                      [--seeds LIST [--class K] | --folder DIR] [--device D] [--threads N]

Serves a page for interactive batch editing on http://127.0.0.1:PORT/ (loopback only).

  --model PATH   model file or folder (default: the built-in face model)
  --port N       port; 0 (default) lets the system pick a free one
  --count N      batch images per page, 1 to 48 (default 12)
  --seeds LIST   example seed first, then the batch, e.g. 0-12 or 7,1-11 (default 0-48)
  --class K      class of every image, for conditional models (default 0)
  --folder DIR   edit the latents in DIR instead of seeds: NAME.f32 files (W or W+
                 float32, the first 49 by name), with NAME-photo.png rendered as a
                 photo when present, as 'editone invert --out DIR' writes them; the
                 first is the example
  --device D     auto (default), cpu, cuda or cuda:N
  --threads N    CPU threads for tensor math (default: the library's choice)";

/// Sessions kept at once; a new one beyond this closes the oldest.
const MAX_SESSIONS: usize = 8;
/// Requests handled at once (event streams included).
const MAX_REQUESTS: usize = 64;
/// SeFa directions offered on the page.
const DIRECTIONS: usize = 10;
/// Largest batch a page may ask for.
const MAX_COUNT: usize = 48;

struct Args {
    model: Option<PathBuf>,
    port: u16,
    count: usize,
    seeds: Vec<u64>,
    class: usize,
    folder: Option<PathBuf>,
    device: String,
    threads: u32,
}

/// What every session shares: the model, its directions and the seeds.
pub struct Studio {
    model: Arc<Model>,
    directions: Arc<Vec<Direction>>,
    source: Source,
    default_count: usize,
    port: u16,
    sessions: Mutex<VecDeque<Arc<Session>>>,
    ids: RandomState,
    made: AtomicUsize,
}

impl Studio {
    /// A session with `count` batch images, closing the oldest if there
    /// are too many.
    fn new_session(&self, count: usize) -> Result<Arc<Session>, Refusal> {
        if !(1..=MAX_COUNT).contains(&count) {
            return Err(Refusal::new(400, format!("count {count} must be 1 to {MAX_COUNT}")));
        }
        let items = self.source.items(&self.model, count)?;
        let session = Session::start(self.new_id(), Arc::clone(&self.model), Arc::clone(&self.directions), items)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.push_back(Arc::clone(&session));
        while sessions.len() > MAX_SESSIONS {
            sessions.pop_front().expect("more than MAX_SESSIONS").close();
        }
        Ok(session)
    }

    fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|s| s.id == id).cloned()
    }

    /// 128 random bits from the standard library's randomly keyed hasher.
    fn new_id(&self) -> String {
        let n = self.made.fetch_add(1, Ordering::Relaxed);
        let half = |salt: u64| self.ids.hash_one((n, salt, std::time::SystemTime::now()));
        format!("{:016x}{:016x}", half(1), half(2))
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("editone-studio: {message}\n\n{USAGE}");
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
    let options = EngineOptions { device: args.device, cpu_threads: args.threads, ..EngineOptions::default() };
    Engine::init(&options).map_err(|e| format!("engine: {e}"))?;
    let model = match &args.model {
        Some(path) => Model::load(path),
        None => Model::load_default(),
    }
    .map_err(|e| format!("model: {e}"))?;
    let c_dim = model.info().c_dim;
    if args.class >= c_dim.max(1) {
        return Err(format!("--class {} does not exist: the model has {c_dim} classes", args.class));
    }
    let class = (c_dim > 0).then_some(args.class);
    let source = match &args.folder {
        Some(dir) => Source::Folder(items::load_folder(&model, dir, MAX_COUNT + 1)?),
        None => Source::Seeds { seeds: args.seeds, class },
    };
    let directions = sefa::directions(&model, DIRECTIONS.min(model.info().w_dim), None).map_err(|e| format!("directions: {e}"))?;
    let server = tiny_http::Server::http(("127.0.0.1", args.port)).map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let port = server.server_addr().to_ip().map(|a| a.port()).ok_or("the server has no IP address")?;
    let studio = Arc::new(Studio {
        model: Arc::new(model),
        directions: Arc::new(directions),
        source,
        default_count: args.count,
        port,
        sessions: Mutex::new(VecDeque::new()),
        ids: RandomState::new(),
        made: AtomicUsize::new(0),
    });
    println!("editone studio: http://127.0.0.1:{port}/");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let active = Arc::new(AtomicUsize::new(0));
    for request in server.incoming_requests() {
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_REQUESTS {
            active.fetch_sub(1, Ordering::SeqCst);
            api::too_busy(request);
            continue;
        }
        let (studio, done) = (Arc::clone(&studio), Arc::clone(&active));
        let spawned = std::thread::Builder::new().name("request".into()).spawn(move || {
            api::handle(&studio, request);
            done.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Ok(())
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
        device: "auto".into(),
        threads: 0,
    };
    let mut seeds_given = false;
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
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
            "--device" => args.device = value,
            "--threads" => args.threads = number(1024)? as u32,
            _ => return Err(format!("unknown option '{flag}'")),
        }
    }
    if seeds_given && args.folder.is_some() {
        return Err("give --seeds or --folder, not both".into());
    }
    Ok(Some(args))
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
