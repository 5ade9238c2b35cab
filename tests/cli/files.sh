# Files are sacred (DESIGN.md; issue 19, items 1-3): sourced by
# tests/cli/run.sh, whose helpers (expect, check, py, fingerprint, group,
# pass, fail) and files ($TMP/sefa.json, $TMP/photos/seed000[78].png) it
# uses, and after faces.sh, whose fpy and $RES it uses.
#
#   - no command writes over an existing file without --overwrite, nor over
#     an input even with it; colliding output names are refused before
#     anything is written;
#   - --overwrite replaces a file by renaming a whole new one over it;
#   - SIGTERM stops like Ctrl-C: exit 3, no partial or temporary file;
#   - kill -9 at random moments of 'apply --out-dir' (fresh runs and re-runs)
#     leaves only files that decode, each the old version or the new one;
#   - invert --faces (a photo's four files, its record and latents last):
#     re-runs, --overwrite, SIGTERM, and kill -9 between any two of its
#     files, fresh and over an earlier run: what is left is either a whole
#     face set that apply edits, or a mix of two runs that apply refuses
#     (checksums) before writing anything; never a wrong photo.

F=$TMP/files
mkdir -p "$F"
PRESET=$TMP/sefa.json
P7=$TMP/photos/seed0007.png
P8=$TMP/photos/seed0008.png

cat >"$TMP/pngcheck.py" <<'PY'
"""pngcheck.py DIR...: every *.png in each DIR (not hidden files, which are
temporary ones of writes that were under way) decodes:
signature, chunk CRCs, IHDR, the inflated IDAT of exactly the size IHDR
implies, IEND last. Prints "N files checked" and exits 1 on the first bad
file. Standard library only."""
import os, struct, sys, zlib

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}

def check(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return f"{len(data)} bytes, no PNG signature"
    at, idat, ihdr, ended = 8, [], None, False
    while at < len(data):
        if at + 12 > len(data):
            return f"cut inside a chunk header at byte {at}"
        (n,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + n]
        if len(body) != n or at + 12 + n > len(data):
            return f"chunk {kind!r} cut short"
        (crc,) = struct.unpack(">I", data[at + 8 + n:at + 12 + n])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            return f"bad CRC in chunk {kind!r}"
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            ended = at + 12 + n == len(data)
            break
        at += 12 + n
    if not ihdr or not ended:
        return "no IHDR, or no IEND at the end"
    w, h, depth, colour = ihdr[:4]
    row = 1 + (w * CHANNELS[colour] * depth + 7) // 8
    try:
        pixels = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        return f"IDAT does not inflate: {e}"
    if len(pixels) != row * h:
        return f"{len(pixels)} bytes of pixel rows, {w}x{h} needs {row * h}"
    return None

count = 0
for folder in sys.argv[1:]:
    for name in sorted(os.listdir(folder)):
        if name.endswith(".png") and not name.startswith("."):
            why = check(os.path.join(folder, name))
            if why:
                sys.exit(f"{folder}/{name}: {why}")
            count += 1
print(f"{count} files checked")
PY
pngcheck() { python3 "$TMP/pngcheck.py" "$@"; }

# no_temp_files NAME DIR...: no hidden temporary file was left in DIR.
no_temp_files() {
    local name=$1 left
    shift
    left=$(find "$@" -maxdepth 1 -name '.*' ! -name '.' 2>/dev/null | head -5)
    if [ -z "$left" ]; then pass "$name"; else fail "$name" "left behind: $left" /nonexistent; fi
}


# --- 1. invert ----------------------------------------------------------------

# A folder of the user's: a.png, and their own photo a-photo.png.
mkdir -p "$F/album"
cp "$P7" "$F/album/a.png"
cp "$P8" "$F/album/a-photo.png"
before=$(fingerprint "$F/album")
expect "invert refuses to write over an existing NAME-photo.png" 1 \
    "editone invert: '$F/album/a-photo.png' exists; give --overwrite to replace it" -- \
    invert "$F/album/a.png" --out "$F/album" --steps 5
check "the user's a-photo.png is untouched and nothing was written" test "$(fingerprint "$F/album")" = "$before"
expect "invert never writes over an input, even with --overwrite" 2 "'$F/album/a-photo.png' (the output for '$F/album/a.png') is one of the inputs" -- \
    invert "$F/album/a.png" "$F/album/a-photo.png" --out "$F/album" --steps 5 --overwrite
check "the inputs are untouched" test "$(fingerprint "$F/album")" = "$before"

mkdir -p "$F/d1" "$F/d2"
cp "$P7" "$F/d1/a.png"
cp "$P8" "$F/d2/a.png"
expect "two photos with one name are refused, naming both" 2 "'$F/d1/a.png' and '$F/d2/a.png' would both write" -- \
    invert "$F/d1/a.png" "$F/d2/a.png" --out "$F/d-inv" --steps 5
check "nothing was written for them" test ! -e "$F/d-inv"

expect "invert writes all four files" 0 -- invert "$F/d1/a.png" --out "$F/inv" --steps 5
before=$(fingerprint "$F/inv")
expect "a re-run of invert refuses every existing output" 1 "exist; give --overwrite to replace them" -- \
    invert "$F/d1/a.png" --out "$F/inv" --steps 5
check "the re-run changed nothing" test "$(fingerprint "$F/inv")" = "$before"
expect "invert --overwrite replaces them" 0 -- invert "$F/d2/a.png" --out "$F/inv" --steps 5 --overwrite
check "each replaced by a new file (renamed over, not rewritten in place)" python3 -c "
import sys
old = dict((l.split()[0], l.split()[1:]) for l in sys.argv[1].splitlines())
new = dict((l.split()[0], l.split()[1:]) for l in sys.argv[2].splitlines())
assert sorted(old) == sorted(new) == ['a-photo.png', 'a-reconstruction.png', 'a.f32', 'a.json'], (old, new)
assert all(old[k][0] != new[k][0] for k in old), 'an inode was kept: written in place'
assert old['a-photo.png'][1:] != new['a-photo.png'][1:], 'the photo did not change'
" "$before" "$(fingerprint "$F/inv")"

# --- 2. apply --inverted DIR --out-dir DIR --------------------------------------

mkdir -p "$F/shoot"
cp "$P7" "$F/shoot/a.png"
cp "$P8" "$F/shoot/b.png"
expect "invert DIR/*.png --out DIR" 0 -- invert "$F/shoot/a.png" "$F/shoot/b.png" --out "$F/shoot" --steps 5
before=$(fingerprint "$F/shoot")
expect "apply --inverted DIR --out-dir DIR refuses to write over the original photos" 1 \
    "'$F/shoot/a.png' and 1 more outputs exist; give --overwrite to replace them" -- \
    apply --preset "$PRESET" --inverted "$F/shoot" --out-dir "$F/shoot"
check "the original photos are untouched" test "$(fingerprint "$F/shoot")" = "$before"
# A photo named like another's copy: x.png's copy is x-photo.png, which
# apply --inverted reads and would also write (photo 'x-photo').
mkdir -p "$F/twins"
cp "$P7" "$F/twins/x.png"
cp "$P8" "$F/twins/x-photo.png"
expect "invert x.png and x-photo.png into two folders" 0 -- invert "$F/twins/x.png" --out "$F/twins-inv" --steps 5
expect "... (x-photo.png)" 0 -- invert "$F/twins/x-photo.png" --out "$F/twins-inv" --steps 5
expect "apply never writes over an input, even with --overwrite" 2 "'$F/twins-inv/x-photo.png' (the output for photo 'x-photo') is one of the inputs" -- \
    apply --preset "$PRESET" --inverted "$F/twins-inv" --out-dir "$F/twins-inv" --overwrite

# --- 3. re-runs of every command that writes files --------------------------------

expect "apply writes images, alphas and latents" 0 -- apply --preset "$PRESET" --seeds 1-5 --out-dir "$F/run" \
    --alphas "$F/run.json" --out-latents-f32 "$F/run.f32"
before=$(fingerprint "$F/run" "$F/run.json" "$F/run.f32")
for opt in "--out-dir $F/run" "--alphas $F/run.json" "--out-latents-f32 $F/run.f32"; do
    # shellcheck disable=SC2086  # opt is an option and its value
    expect "an apply re-run refuses an existing ${opt%% *}" 1 "give --overwrite" -- \
        apply --preset "$PRESET" --seeds 1-5 $opt --strength 7
done
check "the re-runs changed nothing" test "$(fingerprint "$F/run" "$F/run.json" "$F/run.f32")" = "$before"
old_run=$(fingerprint "$F/run")
expect "apply --overwrite replaces them" 0 -- apply --preset "$PRESET" --seeds 1-5 --out-dir "$F/run" \
    --alphas "$F/run.json" --out-latents-f32 "$F/run.f32" --strength 7 --overwrite
check "every image is a new file with new pixels (renamed over, not rewritten in place)" python3 -c "
import sys
old = [l.split() for l in sys.argv[1].splitlines()]
new = [l.split() for l in sys.argv[2].splitlines()]
assert [o[0] for o in old] == [n[0] for n in new] and len(old) == 5, (old, new)
assert all(o[1] != n[1] and o[2:] != n[2:] for o, n in zip(old, new)), (old, new)
" "$old_run" "$(fingerprint "$F/run")"
check "and the alphas moved with the strength" python3 -c "
import json, sys; a = json.load(open(sys.argv[1])); assert len(a) == 5 and a[0]['alpha'] > 6, a" "$F/run.json"
expect "apply: a seed listed twice would write one file twice" 2 "seed 3 is listed twice in --seeds" -- \
    apply --preset "$PRESET" --seeds 1-4,3 --out-dir "$F/twice"
check "... and nothing was written" test ! -e "$F/twice"

expect "render writes images" 0 -- render --seeds 1-3 --out-dir "$F/render"
expect "a render re-run refuses them" 1 "'$F/render/seed0001.png' and 2 more outputs exist" -- \
    render --seeds 1-3 --out-dir "$F/render"
expect "render --out-f32" 0 -- render --seeds 1-2 --out-f32 "$F/render.f32"
expect "a render re-run refuses --out-f32" 1 "'$F/render.f32' exists; give --overwrite" -- \
    render --seeds 1-2 --out-f32 "$F/render.f32"
expect "render never writes over its --latents-f32 input, even with --overwrite" 2 "is one of the inputs" -- \
    render --latents-f32 "$F/run.f32" --count 5 --out-f32 "$F/run.f32" --overwrite
check "the input latents are whole" py size "$F/run.f32" $((5 * 100 * 4))

expect "edit --out, --preview" 0 -- edit --seed 1 --direction 0 --strength 2 --no-optimize --out "$F/p.json" --preview "$F/prev"
before=$(fingerprint "$F/prev" "$F/p.json")
expect "an edit re-run refuses the preset" 1 "'$F/p.json' exists; give --overwrite" -- \
    edit --seed 1 --direction 0 --strength 3 --no-optimize --out "$F/p.json"
expect "an edit re-run refuses the preview" 1 "'$F/prev/" -- \
    edit --seed 1 --direction 0 --strength 3 --no-optimize --out "$F/p2.json" --preview "$F/prev"
check "the edit re-runs changed nothing" test "$(fingerprint "$F/prev" "$F/p.json")" = "$before"
check "and wrote no preset" test ! -e "$F/p2.json"
expect "edit --overwrite replaces the preset" 0 -- edit --seed 1 --direction 0 --strength 3 --no-optimize --out "$F/p.json" --overwrite
check "the preset is a new file with the new edit" test "$(fingerprint "$F/p.json" | cut -d' ' -f2-3)" != \
    "$(grep '^p.json ' <<<"$before" | cut -d' ' -f2-3)"
expect "edit never writes its preset over its --direction-f32 input" 2 "is one of the inputs" -- \
    edit --seed 1 --direction-f32 "$F/render.f32" --strength 1 --no-optimize --out "$F/render.f32" --overwrite

expect "directions --out-f32 --preview" 0 -- directions --count 2 --out-f32 "$F/dirs.f32" --preview "$F/dirprev" --seed 1
expect "a directions re-run refuses them" 1 "more outputs exist" -- \
    directions --count 2 --out-f32 "$F/dirs.f32" --preview "$F/dirprev" --seed 1
expect "directions --overwrite" 0 -- directions --count 2 --out-f32 "$F/dirs.f32" --preview "$F/dirprev" --seed 1 --overwrite

MODEL_FILE=$(cd "$(dirname "$0")/../.." && pwd)/.cache/models/digiface-dcgan.safetensors
if [ -f "$MODEL_FILE" ]; then
    ln -s "$MODEL_FILE" "$F/model-link.safetensors"
    expect "convert never writes over its input (another spelling of it)" 2 "is one of the inputs" -- \
        convert "$MODEL_FILE" "$F/model-link.safetensors" --overwrite
    expect "convert" 0 -- convert "$MODEL_FILE" "$F/model.safetensors"
    expect "a convert re-run refuses its output" 1 "'$F/model.safetensors' exists; give --overwrite" -- \
        convert "$MODEL_FILE" "$F/model.safetensors"
    expect "convert --overwrite" 0 -- convert --overwrite "$MODEL_FILE" "$F/model.safetensors"
fi
no_temp_files "no temporary files left by refused or finished commands" "$F" "$F/run" "$F/render" "$F/prev" "$F/dirprev" "$F/inv" "$F/shoot"

# --- 4. SIGTERM -------------------------------------------------------------------

# term_case WAIT -- ARGS...: starts editone ARGS and sends it SIGTERM once
# WAIT (a file pattern) matches, or after 3 s if it never does; the exit
# code goes to $TMP/term-rc.
term_case() {
    local wait=$1 pid i
    shift 2
    "$EDITONE" "$@" >"$TMP/term.out" 2>"$TMP/term.err" &
    pid=$!
    for i in $(seq 60); do
        if compgen -G "$wait" >/dev/null; then break; fi
        sleep 0.05
    done
    kill -TERM "$pid" 2>/dev/null || true
    echo 0 >"$TMP/term-rc"
    wait "$pid" || echo $? >"$TMP/term-rc"
}

term_case "$F/term/*.png" -- apply --preset "$PRESET" --seeds 1-5000 --out-dir "$F/term" \
    --out-latents-f32 "$F/term.f32" --alphas "$F/term.json"
check "SIGTERM during apply: exit 3 (cancelled)" test "$(cat "$TMP/term-rc")" = 3
check "... says so" grep -q "cancelled" "$TMP/term.err"
check "... every image written decodes" pngcheck "$F/term"
check "... the latents and alphas, not finished, are not there" test ! -e "$F/term.f32" -a ! -e "$F/term.json"
no_temp_files "... and no temporary file is left" "$F/term" "$F"
# The optimisation runs after about a second of start-up; 3 s is well inside it.
term_case "$F/never" -- edit --seed 1 --direction 0 --strength 4 --iterations 100000 --patience 0 --out "$F/term-preset.json"
check "SIGTERM during edit's optimisation: exit 3, no preset" test "$(cat "$TMP/term-rc")" = 3 -a ! -e "$F/term-preset.json"

# --- 5. kill -9 -------------------------------------------------------------------

kill_start=$SECONDS
KSEEDS=1-300
expect "apply $KSEEDS, the reference for the kill -9 trials" 0 -- apply --preset "$PRESET" --seeds $KSEEDS --out-dir "$F/kref"
expect "and with --strength 7" 0 -- apply --preset "$PRESET" --seeds $KSEEDS --out-dir "$F/kref7" --strength 7

# nap: a 10 ms pause without starting a process (bash's read timing out
# on a pipe that never gets data), so that polling leaves the CPUs to editone.
exec {NAP_FD}<> <(:)
nap() { read -rt 0.01 -u "$NAP_FD" _ || :; }

# kill_after N DIR ARGS...: runs editone ARGS and kill -9s it as soon as N
# images in DIR are newer than its start (so a re-run into a full folder
# counts only what it wrote): with N random, a random moment of its
# writing, however busy the machine is. Bash's own tests, no processes.
# KILL_FILES (default *.png) says which files of DIR count.
kill_after() {
    local n=$1 dir=$2 pid f count
    shift 2
    touch "$TMP/kill-mark"
    "$EDITONE" "$@" >/dev/null 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        count=0
        for f in "$dir"/${KILL_FILES:-*.png}; do
            if [ "$f" -nt "$TMP/kill-mark" ]; then count=$((count + 1)); fi
        done
        [ "$count" -ge "$n" ] && break
        nap
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# 20 kills of fresh runs: whatever is left decodes. Images come in bursts,
# one per chunk of 64 after its render; N stays below the last chunk (257+),
# after which the run may end between two looks and the kill test nothing.
# Most kills must land mid-write for the loop to count.
mid=0 bad=0
for trial in $(seq 20); do
    rm -rf "$F/k9"
    kill_after $((1 + RANDOM % 250)) "$F/k9" apply --preset "$PRESET" --seeds $KSEEDS --out-dir "$F/k9"
    mkdir -p "$F/k9"
    n=$(find "$F/k9" -name '*.png' ! -name '.*' | wc -l)
    if [ "$n" -gt 0 ] && [ "$n" -lt 300 ]; then mid=$((mid + 1)); fi
    if ! out=$(pngcheck "$F/k9" 2>&1); then
        fail "kill -9 trial $trial: a file left behind does not decode" "$out" /nonexistent
        bad=$((bad + 1))
    fi
    mkdir -p "$F/k9-all/$trial" && mv "$F/k9"/*.png "$F/k9-all/$trial/" 2>/dev/null || true
done
total=$(find "$F/k9-all" -name '*.png' | wc -l)
check "20 kill -9 during apply --out-dir: $total images left behind, $bad trials with one that does not decode, $mid kills mid-write (15+)" \
    test "$bad" -eq 0 -a "$mid" -ge 15

# 10 kills of re-runs with --overwrite (--strength 7) into a finished folder:
# each file is the old version or the new one, whole.
mid=0 bad=0
for trial in $(seq 10); do
    rm -rf "$F/k9"
    cp -r "$F/kref" "$F/k9"
    kill_after $((1 + RANDOM % 250)) "$F/k9" apply --preset "$PRESET" --seeds $KSEEDS --out-dir "$F/k9" --strength 7 --overwrite
    if ! out=$(python3 - "$F/k9" "$F/kref" "$F/kref7" <<'PY' 2>&1
import os, sys
k9, old, new = sys.argv[1:]
names = sorted(n for n in os.listdir(k9) if not n.startswith("."))
assert names == sorted(os.listdir(old)), f"{len(names)} files, expected {len(os.listdir(old))}"
newer = 0
for n in names:
    data = open(os.path.join(k9, n), "rb").read()
    if data == open(os.path.join(new, n), "rb").read():
        newer += 1
    elif data != open(os.path.join(old, n), "rb").read():
        sys.exit(f"{n}: {len(data)} bytes, neither the old file nor the new one")
print(newer)
PY
    ); then
        fail "kill -9 re-run trial $trial: a good earlier file was damaged" "$out" /nonexistent
        bad=$((bad + 1))
    elif [ "$out" -gt 0 ] && [ "$out" -lt 300 ]; then
        mid=$((mid + 1))
    fi
done
check "10 kill -9 during re-runs with --overwrite: $bad trials with a damaged file, $mid kills mid-write (7+)" \
    test "$bad" -eq 0 -a "$mid" -ge 7
echo "     (the kill -9 trials took $((SECONDS - kill_start)) s)"

# --- 6. invert --faces ------------------------------------------------------------

faces_files_start=$SECONDS
FF=$F/faces
mkdir -p "$FF/photos"
# faces.sh's group photos: a pair of faces as a.png, b.png and c.png, five as d.png.
if [ ! -s "$TMP/faces/pair.png" ] || [ ! -s "$TMP/faces/group.png" ]; then
    fail "files, faces: faces.sh made no group photos" "" /nonexistent
else
    for name in a b c; do cp "$TMP/faces/pair.png" "$FF/photos/$name.png"; done
    cp "$TMP/faces/group.png" "$FF/photos/d.png"
    A=$FF/photos/a.png
    expect "invert --faces writes its four files" 0 -- invert --faces "$A" --out "$FF/inv" --steps 3
    before=$(fingerprint "$FF/inv")
    expect "a re-run of invert --faces refuses every existing output" 1 "'$FF/inv/a-photo.png' and 3 more outputs exist" -- \
        invert --faces "$A" --out "$FF/inv" --steps 3
    check "the re-run changed nothing" test "$(fingerprint "$FF/inv")" = "$before"
    cp "$FF/photos/d.png" "$FF/a.png"
    expect "invert --faces --overwrite replaces them (another photo under the same name)" 0 -- \
        invert --faces "$FF/a.png" --out "$FF/inv" --steps 3 --overwrite
    check "each replaced by a new file (renamed over, not rewritten in place)" python3 -c "
import sys
old = dict((l.split()[0], l.split()[1:]) for l in sys.argv[1].splitlines())
new = dict((l.split()[0], l.split()[1:]) for l in sys.argv[2].splitlines())
assert sorted(old) == sorted(new) == ['a-photo.png', 'a-reconstruction.png', 'a.faces.f32', 'a.json'], (old, new)
assert all(old[k][0] != new[k][0] and old[k][1:] != new[k][1:] for k in old), 'a file was kept or written in place'
" "$before" "$(fingerprint "$FF/inv")"
    mkdir -p "$FF/album"
    cp "$A" "$FF/album/a.png"
    cp "$FF/photos/d.png" "$FF/album/a-photo.png"
    before=$(fingerprint "$FF/album")
    expect "invert --faces never writes over an input, even with --overwrite" 2 "is one of the inputs" -- \
        invert --faces "$FF/album/a.png" "$FF/album/a-photo.png" --out "$FF/album" --steps 3 --overwrite
    check "the inputs are untouched and nothing was written" test "$(fingerprint "$FF/album")" = "$before"
    before=$(fingerprint "$FF/photos")
    expect "apply refuses to write the edited photo over the original" 1 "'$FF/photos/a.png' exists" -- \
        apply --preset "$PRESET" --inverted "$FF/inv" --out-dir "$FF/photos"
    check "... which is untouched" test "$(fingerprint "$FF/photos")" = "$before"
    no_temp_files "no temporary files left by invert --faces" "$FF/inv" "$FF/album"

    term_case "$FF/never" -- invert --faces "$A" --out "$FF/term" --steps 100000
    check "SIGTERM during invert --faces: exit 3, says so" test "$(cat "$TMP/term-rc")" = 3
    check "... cancelled" grep -q "cancelled" "$TMP/term.err"
    check "... nothing of the photo written" test -z "$(ls -A "$FF/term" 2>/dev/null)"

    # faces_left DIR: what a kill left in DIR is sound: its pictures decode,
    # every NAME.faces.f32 has its record and photo, and apply either edits
    # every face set (exit 0, each photo changed only in its faces) or
    # refuses a mix of two runs before writing anything. Prints "sets
    # refused" for the loop's counts.
    faces_left() {
        local dir=$1 out=$2 sets rc=0 f
        pngcheck "$dir" >/dev/null || return 1
        sets=$(find "$dir" -maxdepth 1 -name '*.faces.f32' ! -name '.*' | wc -l)
        if [ "$sets" -eq 0 ]; then
            echo "0 0"
            return 0
        fi
        for f in "$dir"/*.faces.f32; do
            local name=${f%.faces.f32}
            [ -s "$name.json" ] && [ -s "$name-photo.png" ] || { echo "$f without its record or photo"; return 1; }
        done
        rm -rf "$out"
        "$EDITONE" apply --preset "$PRESET" --inverted "$dir" --out-dir "$out" >/dev/null 2>"$TMP/faces-left.err" || rc=$?
        if [ "$rc" -eq 1 ] && grep -q "mixes two runs\|does not belong" "$TMP/faces-left.err"; then
            [ ! -e "$out" ] || { echo "apply refused a mix but wrote $out"; return 1; }
            echo "$sets 1"
            return 0
        fi
        [ "$rc" -eq 0 ] || { echo "apply: exit $rc: $(head -3 "$TMP/faces-left.err")"; return 1; }
        fpy edited_all "$dir" "$out" "${RES:-64}" >/dev/null || return 1
        echo "$sets 0"
    }
    # Three photos, four files each: kills after 1..8 new files land
    # between any two of them, inside one photo's set too, and before the
    # last photo (whose inversion takes longer than a look) is done.
    mid=0 bad=0 refused=0
    for trial in $(seq 5); do
        rm -rf "$FF/k9"
        KILL_FILES="*" kill_after $((1 + RANDOM % 8)) "$FF/k9" invert --faces "$FF/photos/a.png" "$FF/photos/b.png" \
            "$FF/photos/c.png" --out "$FF/k9" --steps 3
        mkdir -p "$FF/k9"
        if ! out=$(faces_left "$FF/k9" "$FF/k9-out" 2>&1); then
            fail "kill -9 during invert --faces, trial $trial" "$out" /nonexistent
            bad=$((bad + 1))
        else
            n=$(find "$FF/k9" -maxdepth 1 ! -name '.*' -type f | wc -l)
            if [ "$n" -gt 0 ] && [ "$n" -lt 12 ]; then mid=$((mid + 1)); fi
        fi
    done
    check "5 kill -9 during invert --faces: $bad trials left something unsound, $mid kills mid-run (4+)" \
        test "$bad" -eq 0 -a "$mid" -ge 4
    # Over a finished run with --overwrite (other steps, so other latents):
    # each set is the old run's, the new one's, or a mix apply refuses.
    expect "invert --faces, the reference for the re-run trials" 0 -- invert --faces "$FF/photos/a.png" \
        "$FF/photos/b.png" "$FF/photos/c.png" --out "$FF/k9ref" --steps 3
    mid=0 bad=0
    for trial in $(seq 5); do
        rm -rf "$FF/k9"
        cp -r "$FF/k9ref" "$FF/k9"
        before=$(fingerprint "$FF/k9")
        KILL_FILES="*" kill_after $((1 + RANDOM % 8)) "$FF/k9" invert --faces "$FF/photos/a.png" "$FF/photos/b.png" \
            "$FF/photos/c.png" --out "$FF/k9" --steps 4 --overwrite
        if ! out=$(faces_left "$FF/k9" "$FF/k9-out" 2>&1); then
            fail "kill -9 during invert --faces --overwrite, trial $trial" "$out" /nonexistent
            bad=$((bad + 1))
        else
            refused=$((refused + ${out#* }))
            replaced=$(python3 -c "
import sys
old = dict((l.split()[0], l.split()[1]) for l in sys.argv[1].splitlines())
new = dict((l.split()[0], l.split()[1]) for l in sys.argv[2].splitlines())
print(sum(old[k] != new.get(k) for k in old))" "$before" "$(fingerprint "$FF/k9")")
            if [ "$replaced" -gt 0 ] && [ "$replaced" -lt 12 ]; then mid=$((mid + 1)); fi
        fi
    done
    check "5 kill -9 during invert --faces --overwrite: $bad trials left something unsound ($refused mixes refused by apply), $mid kills mid-run (4+)" \
        test "$bad" -eq 0 -a "$mid" -ge 4
fi
echo "     (the files tests of invert --faces took $((SECONDS - faces_files_start)) s)"
exec {NAP_FD}<&-
