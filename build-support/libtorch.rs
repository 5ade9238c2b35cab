// Shared by the build scripts of editone and editone-studio (include!d):
// links libtorch from the project's virtual environment so that binaries
// run without LD_LIBRARY_PATH, and keeps libtorch_cuda linked on CUDA wheels.

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
