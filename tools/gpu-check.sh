#!/usr/bin/env bash
# The one prepared run for a borrowed GPU machine (which has python3 with
# torch 2.11.0+cu130 but no Rust): the CUDA test binaries and the benchmark.
#
# Build here first, so that the run only executes:
#     cargo test --release --no-run          # test binaries in target/release/deps
#     make install PREFIX=$PWD/build/gpu-prefix
# then, from the repository root on the GPU machine, carrying target/release,
# build/gpu-prefix and .cache (the fixtures come in shared/):
#     bash tools/gpu-check.sh [OUT_DIR]
# It writes OUT_DIR/gpu.txt (default: ./gpu-out): the GPU's name, every test
# binary's result, and benches/compare.py tables at 256, 512 and 1024.
set -uo pipefail
OUT=${1:-gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.txt") 2>&1

# The binaries' rpath names this checkout's .venv; use the machine's torch.
TORCH_LIB=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH=$TORCH_LIB:$PWD/build/gpu-prefix/lib:${LD_LIBRARY_PATH:-}
export EDITONE_FIXTURES=$PWD/shared/fixtures/stylegan2
export EDITONE_DEFAULT_MODEL=$PWD/.cache/models/digiface-dcgan.safetensors
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'

echo "== tests on CUDA (the engine's device 'auto' picks the GPU)"
# (checkpoints needs the project's venv to build its files, so it stays here.)
for t in target/release/deps/{stylegan2_parity,method,drag,invert,default_model}-*; do
    [ -x "$t" ] || continue
    case $t in *.d) continue ;; esac
    echo "-- $t"
    timeout 300 "$t" --test-threads 1 2>&1 | grep -E "relative error|test result|panicked|FAILED" || true
done

echo "== benchmark"
for res in 256 512 1024; do
    timeout 400 python3 benches/compare.py build/gpu-prefix/bin/editone --device cuda --model "config-f-$res" \
        --batches 1,16,32 --iterations 1000 --count 1000 --seconds 2 --rounds 2 --json "$OUT/config-f-$res.json"
done
