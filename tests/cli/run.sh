#!/usr/bin/env bash
# End-to-end tests of the `editone` command-line host (host-examples/cli).
#
# Usage, from the repository root:  tests/cli/run.sh PATH_TO_EDITONE
#
# Checks the exit codes scripts rely on, raw-output parity with the official
# StyleGAN2 code on the fixtures (tests/fixtures/stylegan2), the edit ->
# preset -> apply flow,
# preset errors, that bench runs, and that no command loses a file
# (files.sh: --overwrite, colliding outputs, SIGTERM, kill -9 loops), and
# faces in photos (faces.sh: detection, invert --faces, apply --inverted,
# --align), a generator tuned on them (tune.sh: invert --faces --tune, apply
# through it, stale or foreign tuned models refused). Needs bash and python3
# (standard library only); faces.sh and tune.sh also
# cargo (to make synthetic group photos) and the project's .venv (numpy,
# Pillow). A missing fixture folder or virtual environment is a
# failure, not a skip. Ends with a line "N passed, M failed"; exits non-zero
# if any failed.
set -euo pipefail

# shellcheck source=tests/editone-argument.sh
. "$(dirname "$0")/../editone-argument.sh"
take_editone_argument "$0" "$@"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
FIXTURES=$REPO/tests/fixtures/stylegan2
TINY=$FIXTURES/tiny64
COND=$FIXTURES/cond128

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

PASSED=0
FAILED=0

pass() {
    PASSED=$((PASSED + 1))
    echo "ok   $1"
}

# fail NAME [why] [DIR]: also shows the output of the case in DIR.
fail() {
    FAILED=$((FAILED + 1))
    echo "FAIL $1${2:+: $2}"
    local f
    for f in "${3:-$TMP/last}/stdout" "${3:-$TMP/last}/stderr"; do
        if [ -s "$f" ]; then head -20 "$f" | sed -e 's/^/     | /'; fi
    done
    return 0
}

# start_case DIR NAME WANT_RC [STDERR_TEXT] -- ARGS...: runs editone ARGS
# with its record in DIR: spec (name, wanted exit code, text that stderr
# must contain), stdout, stderr, rc.
start_case() {
    local dir=$1 name=$2 want=$3 text="" rc=0
    shift 3
    if [ "$1" != "--" ]; then
        text=$1
        shift
    fi
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    printf '%s\n%s\n%s\n' "$name" "$want" "$text" >"$dir/spec"
    "$EDITONE" "$@" >"$dir/stdout" 2>"$dir/stderr" || rc=$?
    echo "$rc" >"$dir/rc"
}

judge_case() {
    local dir=$1 name want text rc
    { read -r name; read -r want; read -r text; } <"$dir/spec"
    rc=$(cat "$dir/rc")
    if [ "$rc" -ne "$want" ]; then
        fail "$name" "exit $rc, expected $want" "$dir"
    elif [ -n "$text" ] && ! grep -qF -- "$text" "$dir/stderr"; then
        fail "$name" "stderr does not say '$text'" "$dir"
    else
        pass "$name"
    fi
}

# expect NAME WANT_RC [STDERR_TEXT] -- ARGS...: editone ARGS exits WANT_RC
# and, when STDERR_TEXT is given, says it on stderr. Record in $TMP/last.
expect() {
    start_case "$TMP/last" "$@"
    judge_case "$TMP/last"
}

# spawn: like expect but in the background, for quick cases (most of
# their time is process start-up, loading libtorch); settle judges them.
JOBS=()
spawn() {
    local dir=$TMP/job${#JOBS[@]}
    JOBS+=("$dir")
    start_case "$dir" "$@" &
}
settle() {
    local dir
    wait
    for dir in "${JOBS[@]}"; do
        judge_case "$dir"
    done
    JOBS=()
}

# check NAME CMD...: any command that must succeed (e.g. a python check).
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        pass "$name"
    else
        fail "$name" "" /nonexistent
        head -20 <<<"$out" | sed -e 's/^/     | /'
    fi
}

# fingerprint PATH...: "name inode cksum" of each file (of each folder's
# files), to tell whether any changed and how.
fingerprint() {
    local f
    for f in "$@"; do
        if [ -d "$f" ]; then
            fingerprint "$f"/* "$f"/.[!.]*
        elif [ -e "$f" ]; then
            printf '%s %s %s\n' "${f##*/}" "$(stat -c %i "$f")" "$(cksum <"$f")"
        fi
    done
    return 0
}

# group OUT SEED FACES WxH: a synthetic group photo of default-model faces
# (the library's example synthetic_group, built by cargo); the faces'
# centres go to OUT.centres, cargo's messages to OUT.log.
group() {
    (cd "$REPO" && cargo run --release --locked --quiet --example synthetic_group -- "$@") >"$1.centres" 2>"$1.log"
}

# Helpers in python3 (standard library only).
cat >"$TMP/helper.py" <<'PY'
import json, struct, sys

def tensor(path, name):
    """(shape, floats) of a float32 tensor in a safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        meta = header[name]
        assert meta["dtype"] == "F32", meta["dtype"]
        begin, end = meta["data_offsets"]
        f.seek(8 + n + begin)
        data = f.read(end - begin)
    return meta["shape"], data

def extract(path, name, out):
    _, data = tensor(path, name)
    with open(out, "wb") as f:
        f.write(data)

def compare(out, path, name, tol):
    shape, ref = tensor(path, name)
    got = open(out, "rb").read()
    if len(got) != len(ref):
        sys.exit(f"{out}: {len(got)} bytes, reference {name} {shape} has {len(ref)}")
    a = struct.unpack(f"<{len(got) // 4}f", got)
    b = struct.unpack(f"<{len(ref) // 4}f", ref)
    err = max(abs(x - y) for x, y in zip(a, b)) / max(abs(y) for y in b)
    print(f"max|a-b|/max|b| = {err:.3g} over {shape}")
    if not err <= float(tol):
        sys.exit(f"relative error {err:.3g} > {tol}")

def png(path, size):
    data = open(path, "rb").read(24)
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        sys.exit(f"{path} is not a PNG")
    w, h = struct.unpack(">II", data[16:24])
    if (w, h) != (int(size), int(size)):
        sys.exit(f"{path} is {w}x{h}, expected {size}x{size}")

def alphas(path, count, key):
    items = json.load(open(path))
    if len(items) != int(count):
        sys.exit(f"{path}: {len(items)} entries, expected {count}")
    for item in items:
        if set(item) != {key, "alpha"} or not isinstance(item["alpha"], float):
            sys.exit(f"{path}: bad entry {item}")

def shifted(path_a, path_b, summary, strength, tol):
    """Every alpha moved by the same amount, strength - the preset's."""
    a = [x["alpha"] for x in json.load(open(path_a))]
    b = [x["alpha"] for x in json.load(open(path_b))]
    want = float(strength) - json.load(open(summary))["strength"]
    for x, y in zip(a, b):
        if abs((y - x) - want) > float(tol) * max(1.0, abs(want)):
            sys.exit(f"alpha {x} -> {y}: moved by {y - x}, expected {want}")
    print(f"every alpha moved by {want:.6g}")

def edit_outputs(summary, preview, size):
    s = json.load(open(summary))
    if not (s["optimized"] is True and s["iterations"] > 0 and s["best_loss"] <= s["initial_loss"]):
        sys.exit(f"unexpected edit summary {s}")
    png(f"{preview}/example.png", size)
    png(f"{preview}/edited.png", size)

def size(path, nbytes):
    got = len(open(path, "rb").read())
    if got != int(nbytes):
        sys.exit(f"{path}: {got} bytes, expected {nbytes}")

def seeds_in_order(path, first, count):
    """--alphas of --seeds FIRST-..: one entry per seed, in order."""
    seeds = [x["seed"] for x in json.load(open(path))]
    if seeds != list(range(int(first), int(first) + int(count))):
        sys.exit(f"{path}: seeds {seeds[:3]}..., expected {first}..{int(first) + int(count) - 1}")

def same_alphas(path_a, path_b):
    """Every seed of b has the alpha it has in a, to the bit."""
    a = {x["seed"]: x["alpha"] for x in json.load(open(path_a))}
    for x in json.load(open(path_b)):
        if a[x["seed"]] != x["alpha"]:
            sys.exit(f"seed {x['seed']}: alpha {x['alpha']} here, {a[x['seed']]} in {path_a}")

def same_files(dir_a, first_seed, dir_b, count, ext):
    """seedNNNN.EXT of apply --seeds FIRST-.. equal latentNNNN.EXT of render, byte for byte."""
    for i in range(int(count)):
        a = f"{dir_a}/seed{int(first_seed) + i:04d}.{ext}"
        b = f"{dir_b}/latent{i:04d}.{ext}"
        if open(a, "rb").read() != open(b, "rb").read():
            sys.exit(f"{a} and {b} differ")
    print(f"{count} images equal")

def truncate(path, out):
    data = open(path, "rb").read()
    open(out, "wb").write(data[: len(data) // 2])

globals()[sys.argv[1]](*sys.argv[2:])
PY
py() { python3 "$TMP/helper.py" "$@"; }

# --- 1. Usage and exit codes (no fixtures needed) ------------------------

spawn "editone --help" 0 -- --help
spawn "editone --version" 0 -- --version
for cmd in info render edit apply bench; do
    spawn "editone $cmd --help" 0 -- "$cmd" --help
done
spawn "unknown option exits 2" 2 "--no-such-option" -- render --no-such-option
spawn "unknown command exits 2" 2 "frobnicate" -- frobnicate
spawn "bad number exits 2" 2 "--seeds" -- render --model x --seeds 1-x --out-dir "$TMP/x"
spawn "missing model path exits 1" 1 "$TMP/no-such-model" -- info --model "$TMP/no-such-model"
settle
cp "$TMP/job0/stdout" "$TMP/help.out"
expect "no --model uses the default model" 0 -- info
check "the default model is the DCGAN face model" grep -q "architecture: dcgan" "$TMP/last/stdout"
expect "directions of the default model" 0 -- directions --count 3 --json
check "three unit directions" python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d) == 3 and all(abs(sum(x * x for x in v) - 1) < 1e-4 for v in d), d
" "$TMP/last/stdout"
expect "edit along a direction, fast preset" 0 -- edit --seed 1 --direction 0 --strength 4 --fast --iterations 20 --out "$TMP/sefa.json"
expect "apply it with the default model" 0 -- apply --preset "$TMP/sefa.json" --seeds 2-3 --json
expect "apply with the CPU buffer cache" 0 -- apply --preset "$TMP/sefa.json" --seeds 2-9 --out-dir "$TMP/cached"
expect "and without it" 0 -- --cpu-cache 0 apply --preset "$TMP/sefa.json" --seeds 2-9 --out-dir "$TMP/uncached"
check "the cache does not change a byte" diff -r "$TMP/cached" "$TMP/uncached"
expect "a --cpu-cache beyond 1048576 MiB" 2 "--cpu-cache" -- --cpu-cache 2000000 info
# apply streams its targets 64 at a time (3 chunks here, the last one
# short) and renders each chunk in one batch: the images must be those
# 'render' makes one by one from the edited latents apply wrote, and the
# alphas must not depend on where the chunks fall.
expect "apply 150 seeds in chunks" 0 -- apply --preset "$TMP/sefa.json" --seeds 1-150 --out-dir "$TMP/many" \
    --alphas "$TMP/many-alphas.json" --json --out-latents-f32 "$TMP/many.f32"
check "apply wrote 150 images" test "$(ls "$TMP/many" | wc -l)" -eq 150
check "apply --json prints the --alphas file" cmp "$TMP/many-alphas.json" "$TMP/last/stdout"
check "150 alphas, seeds in order" py seeds_in_order "$TMP/many-alphas.json" 1 150
check "150 edited latents" py size "$TMP/many.f32" $((150 * 100 * 4))
expect "apply seeds 60-140 (other chunk boundaries)" 0 -- apply --preset "$TMP/sefa.json" --seeds 60-140 --json
check "the same alphas wherever the chunks fall" py same_alphas "$TMP/many-alphas.json" "$TMP/last/stdout"
expect "render the edited latents one by one" 0 -- render --latents-f32 "$TMP/many.f32" --count 150 --out-dir "$TMP/many-render"
check "apply's images are render's, byte for byte" py same_files "$TMP/many" 1 "$TMP/many-render" 150 png
expect "apply 70 seeds, --size 40 --format jpg" 0 -- apply --preset "$TMP/sefa.json" --seeds 1-70 --size 40 \
    --format jpg --out-dir "$TMP/many-jpg" --out-latents-f32 "$TMP/many-jpg.f32"
expect "render them with --size 40 --format jpg" 0 -- render --latents-f32 "$TMP/many-jpg.f32" --count 70 \
    --size 40 --format jpg --out-dir "$TMP/many-jpg-render"
check "resampled JPEGs are render's, byte for byte" py same_files "$TMP/many-jpg" 1 "$TMP/many-jpg-render" 70 jpg
expect "drag the nose 8 px right" 0 -- edit --seed 1 --drag 32,36:40,36 --no-optimize --out "$TMP/drag.json" --preview "$TMP/dragprev" --strip-every 5
check "the drag reached its target" grep -q "every handle reached its target" "$TMP/last/stdout"
check "drag preview: strip and dragged example" test -s "$TMP/dragprev/drag-strip.png" -a -s "$TMP/dragprev/dragged.png"
expect "a mask image sets the editable region" 0 -- edit --seed 1 --drag 32,36:36,36 --mask "$TMP/dragprev/example.png" --no-optimize --out "$TMP/drag2.json"
expect "a drag target outside the image" 1 "outside the 64x64 image" -- edit --seed 1 --drag 32,36:90,36 --out "$TMP/x.json"
expect "a malformed drag" 2 "--drag" -- edit --seed 1 --drag 32,36:x --out "$TMP/x.json"
expect "render two 150 px photos" 0 -- render --seeds 7-8 --size 150 --out-dir "$TMP/photos"
expect "invert the photos" 0 -- invert "$TMP/photos/seed0007.png" "$TMP/photos/seed0008.png" --steps 30 --out "$TMP/inverted"
check "invert wrote latent, JSON, photo and reconstruction" test -s "$TMP/inverted/seed0008.f32" -a -s "$TMP/inverted/seed0008.json" -a -s "$TMP/inverted/seed0008-photo.png" -a -s "$TMP/inverted/seed0008-reconstruction.png"
check "invert reports a PSNR" grep -q "PSNR" "$TMP/last/stdout"
expect "apply to inverted photos" 0 -- apply --preset "$TMP/sefa.json" --inverted "$TMP/inverted" --out-dir "$TMP/edited-photos"
check "edited photos keep their 150 px size" py png "$TMP/edited-photos/seed0007.png" 150
expect "invert a file that is not an image" 1 "PNG or JPEG image" -- invert "$TMP/sefa.json" --out "$TMP/bad"
expect "invert without photos" 2 "no PHOTO" -- invert --out "$TMP/bad"
if grep -q "^Exit status: 0 success" "$TMP/help.out"; then
    pass "--help documents exit codes"
else
    fail "--help documents exit codes" "" "$TMP/job0"
fi
# shellcheck source=tests/cli/faces.sh
source "$(dirname "$0")/faces.sh"
# shellcheck source=tests/cli/tune.sh
source "$(dirname "$0")/tune.sh"
# shellcheck source=tests/cli/files.sh
source "$(dirname "$0")/files.sh"

# --- Fixture parts --------------------------------------------------------

if [ ! -d "$FIXTURES" ]; then
    echo "FAIL $FIXTURES is missing: the fixtures are part of the repository"
    FAILED=$((FAILED + 1))
else
    # --- 2. Parity with the official code through the CLI ------------------
    for model in tiny64 cond128; do
        dir=$FIXTURES/$model
        check "$model extract ws_psi1" py extract "$dir/reference.safetensors" ws_psi1 "$TMP/$model-ws.f32"
        expect "$model render --latents-f32 --out-f32" 0 -- \
            render --model "$dir" --latents-f32 "$TMP/$model-ws.f32" --count 4 --out-f32 "$TMP/$model-img.f32"
        check "$model parity with img_const (1e-5)" \
            py compare "$TMP/$model-img.f32" "$dir/reference.safetensors" img_const 1e-5
    done
    spawn "wrong --count says what was expected" 1 "expected" -- \
        render --model "$TINY" --latents-f32 "$TMP/tiny64-ws.f32" --count 3 --out-f32 "$TMP/x.f32"
    spawn "conditional seeds need --class" 2 "--class" -- \
        render --model "$COND" --seeds 1 --out-dir "$TMP/x"

    # --- 3. edit -> preset -> apply ----------------------------------------
    expect "edit seed 1 toward seed 2" 0 -- \
        edit --model "$TINY" --seed 1 --to-seed 2 --iterations 30 --lr 0.01 \
        --out "$TMP/preset.json" --preview "$TMP/preview" --json
    cp "$TMP/last/stdout" "$TMP/edit-summary.json"
    settle
    check "edit --json summary and preview images" py edit_outputs "$TMP/edit-summary.json" "$TMP/preview" 64

    py truncate "$TMP/preset.json" "$TMP/truncated.json" 2>/dev/null || : # a failed edit is reported above
    spawn "apply --strength 2.5" 0 -- \
        apply --model "$TINY" --preset "$TMP/preset.json" --seeds 3-6 --strength 2.5 \
        --alphas "$TMP/alphas-2.5.json"
    spawn "apply raw latents, --baseline naive, --size 32" 0 -- \
        apply --model "$TINY" --preset "$TMP/preset.json" --latents-f32 "$TMP/tiny64-ws.f32" --count 4 \
        --baseline naive --out-dir "$TMP/baseline" --size 32
    spawn "tiny64 preset on cond128 is incompatible" 1 "EO_ERR_INCOMPATIBLE" -- \
        apply --model "$COND" --preset "$TMP/preset.json" --seeds 1 --class 0 --json
    spawn "truncated preset is a format error" 1 "EO_ERR_FORMAT" -- \
        apply --model "$TINY" --preset "$TMP/truncated.json" --seeds 1 --json
    expect "apply to seeds 3-6" 0 -- \
        apply --model "$TINY" --preset "$TMP/preset.json" --seeds 3-6 --out-dir "$TMP/applied" \
        --alphas "$TMP/alphas.json" --json --out-latents-f32 "$TMP/edited.f32"
    for seed in 0003 0004 0005 0006; do
        check "seed$seed.png is a 64x64 PNG" py png "$TMP/applied/seed$seed.png" 64
    done
    check "alphas JSON has 4 entries" py alphas "$TMP/alphas.json" 4 seed
    check "apply --json prints the same alphas" cmp "$TMP/alphas.json" "$TMP/last/stdout"
    check "edited latents file size" py size "$TMP/edited.f32" $((4 * 10 * 64 * 4))
    settle
    check "--strength moves every alpha by the same amount" \
        py shifted "$TMP/alphas.json" "$TMP/alphas-2.5.json" "$TMP/edit-summary.json" 2.5 1e-4
    check "latent0003.png is a 32x32 PNG" py png "$TMP/baseline/latent0003.png" 32

    # --- 4. official checkpoint files ---------------------------------------
    VENV_PY=$REPO/.venv/bin/python
    PYTESTS=$(cd "$(dirname "$0")/../python" && pwd)
    if [ ! -x "$VENV_PY" ]; then
        echo "FAIL $VENV_PY is missing (make setup makes it); .pkl/.pt loading cannot be tested"
        FAILED=$((FAILED + 1))
    else
        check "build NVlabs and rosinality files" "$VENV_PY" "$PYTESTS/make_checkpoints.py" "$TINY" "$TMP/ckpt"
        expect "convert an NVlabs pickle" 0 -- convert "$TMP/ckpt/model.pkl" "$TMP/ckpt/model.safetensors"
        expect "render from the pickle" 0 -- render --model "$TMP/ckpt/model.pkl" --seeds 1-2 --out-dir "$TMP/from-pkl"
        expect "render from the converted file" 0 -- \
            render --model "$TMP/ckpt/model.safetensors" --seeds 1-2 --out-dir "$TMP/from-st"
        check "the pickle and its conversion render the same PNGs" cmp "$TMP/from-pkl/seed0001.png" "$TMP/from-st/seed0001.png"
        expect "convert a rosinality checkpoint" 0 -- convert "$TMP/ckpt/rosinality.pt" "$TMP/ckpt/ros.safetensors"
        expect "info on a rosinality checkpoint" 0 -- info --model "$TMP/ckpt/rosinality.pt"
        expect "convert needs two paths" 2 "give an input" -- convert "$TMP/ckpt/model.pkl"
        expect "convert a missing file" 1 "does not exist" -- convert "$TMP/nothing.pkl" "$TMP/x.safetensors"
        check "build hostile pickles" "$VENV_PY" "$PYTESTS/make_hostile_pickles.py" "$TMP/hostile" "$TMP/MARKER"
        expect "a pickle calling os.system is refused by name" 1 "system'" -- \
            info --model "$TMP/hostile/hostile-os-system-p4.pkl"
        expect "a pickle calling eval is refused by name" 1 "builtins.eval'" -- \
            convert "$TMP/hostile/hostile-builtins-eval-p4.pkl" "$TMP/x.safetensors"
        check "nothing in the hostile pickles ran" test ! -e "$TMP/MARKER"
    fi

    # --- 5. bench -------------------------------------------------------------
    expect "bench, small settings" 0 -- \
        bench --model "$TINY" --batches 1,4 --iterations 5 --alphas 1000 --count 70 --seconds 0.2
    for what in "images/s" "photo edits, 16" "optimize d\*" "alphas:" "end to end, 70" "peak memory"; do
        check "bench reports $what" grep -q "$what" "$TMP/last/stdout"
    done
    expect "bench --json" 0 -- bench --model "$TINY" --batches 2 --iterations 2 --alphas 10 --count 3 --seconds 0 --json
    check "bench --json is one JSON object with every part" python3 -c "
import json, sys
b = json.load(open(sys.argv[1]))
assert b['render'][0]['batch'] == 2 and b['render'][0]['images_per_s'] > 0
assert b['photo_edits']['batch'] == 16 and b['photo_edits']['residual_images_per_s'] > 0
assert b['optimize']['iterations'] == 2 and b['alphas']['latents'] == 10
assert [e['images'] for e in b['end_to_end']] == [100, 3] and b['peak_mib_after_render'] > 0
" "$TMP/last/stdout"
    expect "bench: a bad batch list" 2 "--batches" -- bench --model "$TINY" --batches 1,x
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
