//! Links libtorch as the library's build script does, so that
//! editone-studio runs without LD_LIBRARY_PATH.

use std::env;
use std::fs;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = env::var("LIBTORCH") {
        link_libtorch(Path::new(&libtorch));
    }
}

include!("../build-support/libtorch.rs");
