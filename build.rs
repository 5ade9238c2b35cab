//! Links libtorch from the project's virtual environment so that binaries
//! run without LD_LIBRARY_PATH, keeps libtorch_cuda linked on CUDA wheels,
//! and regenerates the C header from the Rust source.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = env::var("LIBTORCH") {
        link_libtorch(Path::new(&libtorch));
    }
    generate_header();
}

fn link_libtorch(libtorch: &Path) {
    // The rpath must survive `make install`, so it names the real folder,
    // not the .venv/libtorch symlink relative to this checkout.
    let lib_dir = fs::canonicalize(libtorch.join("lib")).unwrap_or_else(|_| libtorch.join("lib"));
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    // rustc links with --as-needed, and nothing references libtorch_cuda's
    // symbols directly: without this the CUDA backend is never registered.
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib_dir.display());
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
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
