//! Writes a synthetic group photo (tests/common/groups.rs): faces of the
//! default model rendered at 60-250 px, turned up to 20 degrees, placed at
//! known places on a smooth background. The hosts' tests (GIMP, CLI,
//! studio) and `make demo` use it; no photo needs to be committed.
//!
//! cargo run --release --example synthetic_group -- OUT.png [SEED [FACES [WIDTHxHEIGHT]]]
//! (defaults 1, 5, 1280x886). Prints each face's seed, side, turn and
//! centre as JSON lines.

// The truth of each face is printed, not all of it is needed.
#[allow(dead_code)]
#[path = "../tests/common/groups.rs"]
mod groups;

use editone::model::{Model, Placement};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        eprintln!("usage: synthetic_group OUT.png [SEED [FACES [WIDTHxHEIGHT]]]");
        std::process::exit(2);
    };
    let number = |i: usize, default: u64| args.get(i).map_or(Ok(default), |v| v.parse::<u64>());
    let size = args.get(3).map_or(Some((1280, 886)), |v| {
        let (w, h) = v.split_once('x')?;
        Some((w.parse().ok()?, h.parse().ok()?))
    });
    let (Ok(seed), Ok(faces), Some(size)) = (number(1, 1), number(2, 5), size) else {
        eprintln!("synthetic_group: SEED and FACES are whole numbers, the size WIDTHxHEIGHT");
        std::process::exit(2);
    };
    let model = Model::load_default(Placement::default()).unwrap_or_else(|e| {
        eprintln!("synthetic_group: {e}");
        std::process::exit(1);
    });
    let group = groups::synthetic_group(&model, seed, faces as usize, size);
    if let Err(e) = editone::render::save(&image::DynamicImage::ImageRgb8(group.image), std::path::Path::new(out), editone::files::Existing::Refuse) {
        eprintln!("synthetic_group: {e}");
        std::process::exit(1);
    }
    for f in &group.faces {
        let [x, y] = f.to_crop.inverse().apply([31.5, 31.5]);
        println!("{{\"seed\":{},\"side\":{:.1},\"angle\":{:.2},\"centre\":[{x:.1},{y:.1}]}}", f.seed, f.side, f.angle);
    }
}
