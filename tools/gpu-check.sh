#!/usr/bin/env bash
# The one prepared run for a borrowed GPU machine (python3 with torch
# 2.11.0+cu130, no Rust): the CUDA test binaries, CUDA-vs-CPU and float16
# checks at config-f size, a profile of where a 1024 render spends its
# time, and the benchmark against the PyTorch baseline.
#
# Here, first:   bash tools/gpu-pack.sh      (builds and fills .gpu/)
# There, in one device call carrying .gpu:   bash tools/gpu-check.sh "$OUT"
# Writes OUT/gpu.txt (everything printed), OUT/tests.log (the full test
# output) and OUT/<model>.json (benches/compare.py tables).
set -uo pipefail
OUT=${1:-gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.txt") 2>&1
G=$PWD/.gpu
E=$G/prefix/bin/editone
# The binaries' runpath names this checkout's .venv; use the machine's torch.
TORCH_LIB=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH=$TORCH_LIB:$G/prefix/lib:${LD_LIBRARY_PATH:-}
export EDITONE_FIXTURES=$G/fixtures EDITONE_DEFAULT_MODEL=$G/models/digiface-dcgan.safetensors PYTHONUNBUFFERED=1
export EDITONE_FACE_DETECTOR=$G/models/mtcnn.safetensors   # tests/tune.rs: pivotal tuning on CUDA
mkdir -p .cache && ln -sfn "$G/models" .cache/models   # where benches/compare.py looks for "default"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
"$E" info | grep -i device

echo "== $(date +%T) tests on CUDA (the engine's device 'auto' picks the GPU)"
for t in "$G"/tests/*; do
    echo "-- $(basename "$t")"
    timeout 150 "$t" 2>&1 | tee -a "$OUT/tests.log" | grep -E "relative error|test result|panicked|FAILED" || true
done

stage() { echo; echo "== $(date +%T) $1"; }
bench() {  # model, timeout, extra compare.py options; the JSON is named after all three
    local name=$1$(printf '%s' "${*:3}" | tr -c 'a-z0-9' '-' | tr -s '-')
    timeout "$2" python3 benches/compare.py "$E" --device cuda --threads 4 --model "$1" --seconds 1 --rounds 1 \
        --json "$OUT/${name%-}.json" "${@:3}"
}
# Measured on an H100 (2026-11-27): a d* iteration at 1024 takes 46 ms
# (editone) and 55 ms (PyTorch) in true float32, 30 ms for PyTorch with
# TF32. Each table is printed only at its end, so timeouts are generous;
# each side optimises once (the end-to-end run's d* is the one timed).
stage "config-f-1024: editone vs PyTorch, TF32 (PyTorch's default for convolutions)"
bench config-f-1024 240 --batches 1,16,32 --iterations 1000 --count 1000 --tf32
stage "where a config-f 1024 render's time goes (libtorch's profiler; batch 16, 3 batches)"
# cuDNN's autotuning (--cudnn-benchmark) is a candidate default, measured here first.
for how in "--tf32" "--tf32 --cudnn-benchmark" "--tf32 --half" "--tf32 --half --cudnn-benchmark"; do
    echo "-- profile --device cuda $how"
    timeout 90 "$G/profile" .cache/bench/config-f-1024.safetensors --device cuda --batch 16 --batches 3 --top 30 $how 2>&1 |
        grep -vE "^(ERROR|WARNING|STAGE)"
done
stage "config-f-1024: editone vs PyTorch, true float32 (TF32 off)"
bench config-f-1024 200 --batches 1,16,32 --iterations 200 --count 500

stage "CUDA vs CPU, TF32 and float16 at config-f 256 and 1024 (4 seeds, one batch)"
for res in 256 1024; do
    m=.cache/bench/config-f-$res.safetensors
    [ -f "$m" ] || python3 -c "import sys; sys.path.insert(0, 'benches'); import stylegan2_torch as sg; \
        c = sg.config_f($res); sg.write_native('$m', c, sg.random_weights(c))"
    for how in "--device cpu --threads 16" "--device cuda" "--device cuda --tf32" "--device cuda --half"; do
        f=/tmp/render-$res-$(echo $how | tr -dc 'a-z0-9').f32
        timeout 120 "$E" $how render --model "$m" --seeds 0-3 --out-f32 "$f" --overwrite >/dev/null 2>&1 || echo "render failed: $how"
    done
    python3 - "$res" <<'PY'
import sys, numpy as np
res = sys.argv[1]
load = lambda how: np.fromfile(f"/tmp/render-{res}-{how}.f32", dtype=np.float32).astype(np.float64)
cpu = load("devicecputhreads16")
for how in ("devicecuda", "devicecudatf32", "devicecudahalf"):
    x = load(how)
    print(f"config-f {res}, 4 images, {how} vs CPU: relative error {np.abs(x - cpu).max() / np.abs(cpu).max():.3e}, "
          f"mean |diff| {np.abs(x - cpu).mean():.3e}")
PY
done

# (TF32 alone and true float32 are in the tables above.)
stage "float16 render at config-f 1024 (editone alone)"
for how in "--half" "--tf32 --half"; do
    echo "-- editone --device cuda $how"
    timeout 60 "$E" --device cuda $how bench --model .cache/bench/config-f-1024.safetensors --batches 1,16,32 \
        --iterations 0 --alphas 1 --count 0 --seconds 1 | grep -iE "render|device"
done

stage "config-f-256"
bench config-f-256 100 --batches 1,16,32 --iterations 200 --count 500 --tf32
stage "config-f-512"
bench config-f-512 120 --batches 1,16,32 --iterations 200 --count 500 --tf32
stage "default model"
bench default 60 --batches 1,16,32 --iterations 1000 --count 1000
stage "done"
