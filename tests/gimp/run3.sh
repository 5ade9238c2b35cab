#!/usr/bin/env bash
# The GIMP 3 plug-in in a real GIMP 3 (Debian 13's, in the root that
# tools/trixie-root.sh makes and caches; it must be run as root). The
# plug-in is built in the root against the library built here, then
# tests/gimp/gimp3_batch.py drives it headless (gimp-console-3.0 -i with
# the Python batch interpreter) on an image of three synthetic group photos
# (3, 2 and 2 faces, two of them offset):
# - bad input is refused with a clear message and changes nothing: Apply
#   before any example, Set Example on an 8x8 layer or on two layers,
#   Apply with a text layer or a layer group selected; and, in a second
#   session, a missing model;
# - Set Example takes the face under the selection;
# - Apply to Selection on the three selected layers writes one result layer
#   above each: every face changed, every pixel away from the faces the
#   layer's, bit for bit;
# - Adjust Strength re-renders them in place; they equal what `editone
#   invert --faces` and `editone apply --inverted` give for the same preset
#   within 2 grey levels (the GIMP 2.10 test's tolerance);
# - Apply again with tuning replaces them, keeps one tuned model in GIMP 3's
#   profile, and equals `editone invert --faces --tune` on the three photos
#   and `apply --inverted` within 2 grey levels;
# - in GIMP's window under Xvfb (tests/gimp/gimp3_undo.py): Set Example,
#   Apply to three layers, Adjust Strength, then one Ctrl+Z per action,
#   each restoring the image exactly (layers, parasites, pixels); an Apply
#   killed while it projects leaves the image and the undo stack as they were.
# If the root cannot be built, the test fails.
#
# Usage: tests/gimp/run3.sh EDITONE_BINARY
# (EDITONE_BINARY's prefix holds the installed library and header the
# plug-in builds against.)
set -euo pipefail
EDITONE=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PREFIX=$(dirname "$(dirname "$EDITONE")")
TRIXIE="$ROOT/tools/trixie-root.sh"
TMP=$(mktemp -d)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
JOB="$TMP/job"
mkdir -p "$JOB/out" "$JOB/src"
passed=0 failed=0
pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }
finish() { echo "$passed passed, $failed failed ($((SECONDS - start)) s)"; [ "$failed" -eq 0 ]; exit; }
start=$SECONDS
STEPS=10

t0=$SECONDS
if "$TRIXIE" path >"$TMP/root.log" 2>&1; then
    pass "the Debian 13 root with GIMP 3 is ready ($((SECONDS - t0)) s)"
else
    fail "the Debian 13 root with GIMP 3 could not be built"
    sed 's/^/     | /' "$TMP/root.log" | tail -20
    finish
fi
in_root() { "$TRIXIE" run "$JOB" -- "$1"; }

# The plug-in, built in the root against the installed library.
cp "$ROOT"/host-examples/gimp/editone-gimp3.c "$ROOT"/host-examples/gimp/editone-shared.[ch] "$JOB/src/"
if in_root "PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig bash $ROOT/tools/build-gimp3-plugin.sh src /job/editone" \
    >"$TMP/build.log" 2>&1; then
    pass "the GIMP 3 plug-in builds against libgimp-3.0 in the root"
else
    fail "the GIMP 3 plug-in builds against libgimp-3.0 in the root"
    sed 's/^/     | /' "$TMP/build.log" | tail -20
    finish
fi

# Three group photos as layers, the smallest face of the first selected.
make_photo() { (cd "$ROOT" && cargo run --release --locked --quiet --example synthetic_group -- "$JOB/$1.png" "$2" "$3" "$4") >"$TMP/$1.json"; }
make_photo A 7 3 640x480
make_photo B 8 2 480x360
make_photo C 12 2 400x300
python3 - "$TMP" >"$JOB/params.json" <<'PY'
import json, sys
tmp = sys.argv[1]
f = min((json.loads(l) for l in open(f"{tmp}/A.json")), key=lambda f: f["side"])
r = f["side"] / 4
print(json.dumps({
    "photos": [{"name": "A", "file": "/job/A.png", "offset": [0, 0]},
               {"name": "B", "file": "/job/B.png", "offset": [80, 50]},
               {"name": "C", "file": "/job/C.png", "offset": [200, 150]}],
    "steps": 10,
    "selection": [round(f["centre"][0] - r), round(f["centre"][1] - r), round(2 * r), round(2 * r)],
}))
PY
cp "$HERE/gimp3_common.py" "$HERE/gimp3_batch.py" "$HERE/gimp3_undo.py" "$JOB/"

# Runs a Python file in gimp-console-3.0 with a fresh profile holding the plug-in.
gimp_batch() { # profile, script, log, [environment]
    in_root "${4:-} GIMP3_DIRECTORY=/job/$1 && export GIMP3_DIRECTORY && mkdir -p \$GIMP3_DIRECTORY/plug-ins/editone &&
        cp /job/editone \$GIMP3_DIRECTORY/plug-ins/editone/editone &&
        timeout 600 gimp-console-3.0 -i --no-splash --quit --batch-interpreter=python-fu-eval \
            -b 'exec(open(\"/job/$2\").read())'" >"$3" 2>&1
}

t0=$SECONDS
gimp_batch profile gimp3_batch.py "$TMP/gimp.log" || true
if grep -q "^done	yes" "$JOB/report.txt" 2>/dev/null; then
    pass "GIMP 3 ran the session ($((SECONDS - t0)) s)"
else
    fail "GIMP 3 ran the session"
    sed 's/^/     | /' "$TMP/gimp.log" | grep -v "test-sphere\|Cannot open display" | tail -30
fi
report() { sed -n "s/^$1	//p" "$JOB/report.txt" 2>/dev/null | head -1; }
expect() { # name, value, expected
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1"; echo "     | got:      $2"; echo "     | expected: $3"; fi
}
contains() { # name, text, part
    if [[ "$2" == *"$3"* ]]; then pass "$1"; else fail "$1"; echo "     | got: $2"; echo "     | expected it to hold: $3"; fi
}
# Every face of each photo's result out/NAME-STAGE.png edited, nothing else.
faces_edited() { # stage, label
    local n out
    for n in A B C; do
        if out=$(python3 "$HERE/faces_check.py" "$JOB/$n.png" "$JOB/out/$n-$1.png" "$TMP/$n.json" 2>&1); then
            pass "$n$2: every face edited, every pixel away from the faces unchanged bit for bit"
        else
            fail "$n$2: every face edited, every pixel away from the faces unchanged bit for bit"
        fi
        echo "$out" | sed 's/^/     | /'
    done
}
# Each photo's result out/NAME-STAGE.png equals the CLI's DIR/NAME.png within 2 grey levels.
matches_cli() { # stage, CLI output folder, what the CLI ran
    local n out
    for n in A B C; do
        if out=$(python3 "$HERE/compare.py" "$JOB/out/$n-$1.png" "$2/$n.png" 2 2>&1); then
            pass "$n matches $3 within 2 grey levels: $out"
        else
            fail "$n matches $3 within 2 grey levels: $out"
        fi
    done
}
differs() { # name, two PNGs: more than 2 grey levels apart somewhere
    if ! python3 "$HERE/compare.py" "$2" "$3" 2 >/dev/null 2>&1; then pass "$1"; else fail "$1"; fi
}

contains "Apply before any example is refused" "$(report no-example)" "editone: no example set yet"
contains "Set Example on an 8x8 layer is refused" "$(report tiny)" \
    "editone: 'tiny' is 8x8 pixels: editone needs a layer of at least 12 pixels a side"
contains "Apply with a text layer selected is refused" "$(report text)" "editone: 'caption' is a text layer"
contains "Apply on a layer group is refused" "$(report group)" "editone: 'group' is a layer group"
contains "Set Example on two layers is refused" "$(report two-examples)" "editone: Set Example takes one layer"
expect "... and none of them changed the image" "$(report state-unchanged)" "yes"
expect "Set Example works" "$(report set-example)" ""
smallest=$(python3 -c "
import json, sys
faces = [json.loads(l) for l in open(sys.argv[1])]
box = [float(v) for v in sys.argv[2].split()[3:7]]
cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
f = min(faces, key=lambda f: f['side'])
print('yes' if abs(f['centre'][0] - cx) < f['side'] / 4 and abs(f['centre'][1] - cy) < f['side'] / 4 else 'no')
" "$TMP/A.json" "$(report example) 0 0 0 0" 2>/dev/null || echo no)
expect "... and takes the face under the selection" "$smallest" "yes"
expect "Apply to Selection on three selected layers works" "$(report apply)" ""
expect "... with one result layer above each" "$(report layers-applied)" "C (editone)|C|B (editone)|B|A (editone)|A"
faces_edited applied ""
expect "Adjust Strength works" "$(report adjust)" ""
expect "... and re-renders the results in place" "$(report layers-adjusted)" "$(report layers-applied)"
differs "a new strength changes the faces" "$JOB/out/A-applied.png" "$JOB/out/A-adjusted.png"
expect "the preset is saved as an image parasite" "$(report preset-parasite)" "yes"
if python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))['strength']
sys.exit(0 if abs(s - 6.0) < 1e-6 else f'strength {s}, expected 6.0')
" "$JOB/profile/editone/preset.json"; then
    pass "... and in the profile, with the new strength"
else
    fail "... and in the profile, with the new strength"
fi

# The same preset through the CLI.
for n in A B C; do
    "$EDITONE" invert "$JOB/$n.png" --faces --steps $STEPS --out "$TMP/inverted" >/dev/null 2>&1 || true
done
"$EDITONE" apply --preset "$JOB/profile/editone/preset.json" --inverted "$TMP/inverted" --out-dir "$TMP/cli" \
    >/dev/null 2>&1 || true
matches_cli adjusted "$TMP/cli" "editone apply for the same preset"

# Apply with tuning: the profile keeps the tuned model, the faces change
# and nothing else does, and the results are what the CLI gives for the
# same three photos tuned together with the same steps.
expect "Apply to Selection with tuning works" "$(report apply-tuned)" ""
expect "... and replaces the result layers" "$(report layers-tuned)" "$(report layers-applied)"
kept=$(find "$JOB/profile/editone/tuned" -name '*.safetensors' 2>/dev/null | wc -l)
expect "... and keeps the tuned model in GIMP 3's profile (one file)" "$kept" 1
faces_edited tuned " tuned"
differs "tuning changes the faces' renders" "$JOB/out/A-adjusted.png" "$JOB/out/A-tuned.png"
"$EDITONE" invert "$JOB/A.png" "$JOB/B.png" "$JOB/C.png" --faces --steps $STEPS --tune --tune-steps $STEPS \
    --out "$TMP/tuned-inverted" >/dev/null 2>&1 || true
"$EDITONE" apply --preset "$JOB/profile/editone/preset.json" --inverted "$TMP/tuned-inverted" \
    --out-dir "$TMP/cli-tuned" >/dev/null 2>&1 || true
matches_cli tuned "$TMP/cli-tuned" "editone invert --faces --tune and apply --inverted (tuned)"

# Undo and cancel in GIMP's window (gimp-3.0 on Xvfb in the root, Ctrl+Z
# pressed with xdotool: GIMP 3's PDB cannot undo); see gimp3_undo.py.
t0=$SECONDS
in_root "GIMP3_DIRECTORY=/job/profile-gui && export GIMP3_DIRECTORY && mkdir -p \$GIMP3_DIRECTORY/plug-ins/editone &&
    cp /job/editone \$GIMP3_DIRECTORY/plug-ins/editone/editone && echo '(show-welcome-dialog no)' >\$GIMP3_DIRECTORY/gimprc &&
    timeout 600 xvfb-run -a -s '-screen 0 1280x1024x24' gimp-3.0 --no-splash --quit \
        --batch-interpreter=python-fu-eval -b 'exec(open(\"/job/gimp3_undo.py\").read())'" >"$TMP/gui.log" 2>&1 || true
undo_report() { sed -n "s/^$1	//p" "$JOB/undo-report.txt" 2>/dev/null | head -1; }
if grep -q "^done	yes" "$JOB/undo-report.txt" 2>/dev/null; then
    pass "GIMP 3's window session ran ($((SECONDS - t0)) s)"
else
    fail "GIMP 3's window session ran"
    sed 's/^/     | /' "$TMP/gui.log" | grep -v "test-sphere\|stale context\|locale\|set_i18n\|Localization" | tail -30
fi
expect "the image window is found" "$(undo_report window)" "yes"
expect "Set Example, Apply to Selection on three layers and Adjust Strength work" \
    "$(undo_report set-example)$(undo_report apply)$(undo_report adjust)" ""
expect "... Apply adds three result layers" "$(undo_report layers-applied)" 6
expect "... Adjust changes them" "$(undo_report adjust-changed)" "yes"
expect "one undo takes Adjust Strength back whole (layers, parasites, every pixel)" "$(undo_report undo-adjust)" "yes"
expect "a second undo takes Apply to Selection back whole" "$(undo_report undo-apply)" "yes"
expect "a third undo takes Set Example back whole" "$(undo_report undo-example)" "yes"
expect "an Apply killed while projecting faces (as GIMP's Cancel ends it) fails" "$(undo_report cancel-killed)" "yes"
expect "... and leaves the image as it was" "$(undo_report cancel-untouched)" "yes"
expect "... and no undo step (one undo takes Set Example back)" "$(undo_report cancel-no-step)" "yes"

# A missing model: a clear message in a session of its own.
cat >"$JOB/missing.py" <<'PY'
from gi.repository import Gimp, Gio
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path("/job/A.png"))
proc = Gimp.get_pdb().lookup_procedure("plug-in-editone-set-example")
config = proc.create_config()
config.set_property("image", image)
config.set_core_object_array("drawables", image.get_layers())
config.set_property("invert-steps", 10)
status = proc.run(config).index(0)
open("/job/missing.txt", "w").write(f"{status.value_nick}\t{Gimp.get_pdb().get_last_error()}")
PY
gimp_batch profile-missing missing.py "$TMP/missing.log" "EDITONE_DEFAULT_MODEL=/job/no-such-model.safetensors &&
    export EDITONE_DEFAULT_MODEL &&" || true
contains "a missing model is a clear error, not a crash" "$(cat "$JOB/missing.txt" 2>/dev/null)" \
    "execution-error	editone: loading the model: the default model is not installed at '/job/no-such-model.safetensors'"
finish
