// libtorch's process-wide TF32 switches, which tch does not expose. The
// backward pass of a convolution reads them (the allow_tf32 argument of
// _convolution reaches the forward pass only), so exact float32 on CUDA
// needs them off. Called from src/engine.rs.
#include <ATen/Context.h>

#include "shim.h"

// Returns false, with the reason in `error`, if libtorch threw.
extern "C" bool editone_set_tf32(bool allow, char* error, size_t error_len) {
    return editone::catching(error, error_len, false, [&] {
        at::globalContext().setAllowTF32CuDNN(allow);
        at::globalContext().setAllowTF32CuBLAS(allow);
        return true;
    });
}

// 1 when TF32 is allowed, 0 when not, -1 (reason in `error`) if libtorch threw.
extern "C" int editone_tf32(char* error, size_t error_len) {
    return editone::catching(error, error_len, -1, [&] { return at::globalContext().allowTF32CuDNN() ? 1 : 0; });
}
