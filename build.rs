//! Links libtorch from the project's virtual environment so that binaries
//! run without LD_LIBRARY_PATH, keeps libtorch_cuda linked on CUDA wheels,
//! and regenerates the C header from the Rust source.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let libtorch = env::var("LIBTORCH").expect("LIBTORCH names libtorch (.cargo/config.toml sets it to .venv/libtorch; run `make setup`)");
    link_libtorch(Path::new(&libtorch));
    compile_libtorch_shims(Path::new(&libtorch));
    generate_header();
}

include!("build-support/libtorch.rs");

/// The C++ in csrc/ (what tch does not expose: the TF32 switches, the
/// CPU allocator, the Winograd transforms, the profiler) against libtorch's headers,
/// with the C++ ABI the PyPI wheels use.
fn compile_libtorch_shims(libtorch: &Path) {
    println!("cargo:rerun-if-changed=csrc");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .include(libtorch.join("include"))
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .warnings(false)
        .file("csrc/precision.cpp")
        .file("csrc/cpu_cache.cpp")
        .file("csrc/winograd.cpp")
        .file("csrc/profiler.cpp")
        .compile("editone_shims");
}

/// Writes include/editone.h when the generated text differs, so that a
/// build leaves `git diff include/` empty exactly when the committed header
/// is current (`make test` checks that).
fn generate_header() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen can parse the FFI module");
    let mut text = Vec::new();
    bindings.write(&mut text);
    let header = crate_dir.join("include/editone.h");
    if fs::read(&header).ok().as_deref() != Some(&text[..]) {
        fs::create_dir_all(header.parent().unwrap()).expect("include/ can be created");
        fs::write(&header, &text).expect("include/editone.h is writable");
    }
}
