#!/usr/bin/env bash
# Builds here what tools/gpu-check.sh runs on a borrowed GPU machine (which
# has python3 with torch 2.11.0+cu130 but no Rust), and packs it into .gpu/
# (ignored by git through .git/info/exclude; about 50 MB, under the 64 MiB a
# device call may carry): the test binaries, an installed prefix, the
# fixtures, the default model and the profiler example. Then, in one device call carrying .gpu:
#     bash tools/gpu-check.sh "$OUT"
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/tests .gpu/models
tests=(stylegan2_parity method drag invert default_model engine cpu_cache tune)
cargo test --release --no-run --message-format=json "${tests[@]/#/--test=}" --lib 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' | xargs -I{} cp {} .gpu/tests/
make --no-print-directory install PREFIX="$PWD/.gpu/prefix" >/dev/null
cargo build --release --locked --example profile
cp target/release/examples/profile .gpu/
cp -r tests/fixtures/stylegan2 .gpu/fixtures
cp .cache/models/digiface-dcgan.safetensors .cache/models/digiface-dcgan.reference.safetensors .cache/models/mtcnn.safetensors .gpu/models/
du -sh .gpu
