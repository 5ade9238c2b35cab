// libtorch's process-wide TF32 switches, which tch does not expose. The
// backward pass of a convolution reads them (the allow_tf32 argument of
// _convolution reaches the forward pass only), so exact float32 on CUDA
// needs them off. Called from src/engine.rs.
#include <ATen/Context.h>

extern "C" void editone_set_tf32(bool allow) {
    at::globalContext().setAllowTF32CuDNN(allow);
    at::globalContext().setAllowTF32CuBLAS(allow);
}

extern "C" bool editone_tf32() {
    return at::globalContext().allowTF32CuDNN();
}
