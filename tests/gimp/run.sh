#!/usr/bin/env bash
# The GIMP plug-in, driven headless through Script-Fu in a fresh profile:
# four layers rendered by the default model, the first set as the example
# with a direction edit, applied to all, then its strength adjusted; every
# result must match the CLI's output for the same preset within 2 grey levels.
# Usage: tests/gimp/run.sh EDITONE_BINARY PLUGIN_BINARY
set -euo pipefail
EDITONE=$(realpath "$1")
PLUGIN=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0
pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }

export GIMP2_DIRECTORY="$TMP/profile"
mkdir -p "$GIMP2_DIRECTORY/plug-ins/editone" "$TMP/gimp-out"
cp "$PLUGIN" "$GIMP2_DIRECTORY/plug-ins/editone/editone"
"$EDITONE" render --seeds 1-4 --size 96 --out-dir "$TMP/layers" 2>/dev/null

STEPS=30
cat >"$TMP/test.scm" <<SCM
(let* ((dir "$TMP/layers/")
       (image (car (gimp-file-load RUN-NONINTERACTIVE (string-append dir "seed0001.png") "seed0001.png")))
       (example (car (gimp-image-get-active-layer image))))
  (gimp-item-set-name example "seed0001.png")
  (for-each
    (lambda (name)
      (let ((layer (car (gimp-file-load-layer RUN-NONINTERACTIVE image (string-append dir name)))))
        (gimp-item-set-name layer name)
        (gimp-image-insert-layer image layer 0 -1)))
    '("seed0002.png" "seed0003.png" "seed0004.png"))
  (plug-in-editone-set-example RUN-NONINTERACTIVE image example 0 0 4.0 20 $STEPS)
  (plug-in-editone-apply-to-selection RUN-NONINTERACTIVE image example $STEPS)
  (gimp-message (string-append "layers: " (number->string (car (gimp-image-get-layers image)))))
  (let ((first-result (car (gimp-image-get-layer-by-name image "seed0002.png (editone)"))))
    (file-png-save-defaults RUN-NONINTERACTIVE image first-result "$TMP/before-adjust.png" "$TMP/before-adjust.png"))
  (plug-in-editone-adjust-strength RUN-NONINTERACTIVE image example 2.0)
  (gimp-message (string-append "after adjust: " (number->string (car (gimp-image-get-layers image)))))
  (let* ((layers (gimp-image-get-layers image)) (n (car layers)) (ids (cadr layers)) (i 0))
    (while (< i n)
      (let* ((layer (vector-ref ids i)) (name (car (gimp-item-get-name layer))) (len (string-length name)))
        (if (and (> len 10) (string=? (substring name (- len 10) len) " (editone)"))
          (let ((path (string-append "$TMP/gimp-out/" (substring name 0 (- len 10)))))
            (file-png-save-defaults RUN-NONINTERACTIVE image layer path path))))
      (set! i (+ i 1))))
  (gimp-quit 0))
SCM

if timeout 600 gimp-console-2.10 -i --no-data --no-fonts -b - <"$TMP/test.scm" >"$TMP/gimp.log" 2>&1; then
    pass "GIMP ran the Script-Fu batch"
else
    fail "GIMP ran the Script-Fu batch"
fi
if grep -q "layers: 8" "$TMP/gimp.log"; then pass "4 new layers"; else fail "4 new layers"; sed 's/^/     | /' "$TMP/gimp.log" | tail -20; fi
if grep -q "after adjust: 8" "$TMP/gimp.log"; then pass "adjusting the strength updates the results in place"; else fail "adjusting the strength updates the results in place"; fi
if ! python3 "$(dirname "$0")/compare.py" "$TMP/before-adjust.png" "$TMP/gimp-out/seed0002.png" 2 >/dev/null; then
    pass "a new strength changes the result"
else
    fail "a new strength changes the result"
fi

# Adjust Strength saves the edit again over the plug-in's own preset file
# (the library never replaces a file unless asked): it must hold 2.0 now.
if python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))['strength']
sys.exit(0 if abs(s - 2.0) < 1e-6 else f'strength {s}, expected 2.0')
" "$GIMP2_DIRECTORY/editone/preset.json"; then
    pass "Adjust Strength replaces the profile's preset"
else
    fail "Adjust Strength replaces the profile's preset"
fi
if [ -z "$(find "$GIMP2_DIRECTORY/editone" -name '.*')" ]; then
    pass "no temporary file left beside the preset"
else
    fail "no temporary file left beside the preset"
fi

"$EDITONE" invert "$TMP"/layers/*.png --steps $STEPS --out "$TMP/inverted" >/dev/null 2>&1
"$EDITONE" apply --preset "$GIMP2_DIRECTORY/editone/preset.json" --inverted "$TMP/inverted" --out-dir "$TMP/cli" 2>/dev/null
for n in 1 2 3 4; do
    name=seed000$n.png
    if python3 "$(dirname "$0")/compare.py" "$TMP/gimp-out/$name" "$TMP/cli/$name" 2; then
        pass "$name matches the CLI within 2 grey levels"
    else
        fail "$name matches the CLI within 2 grey levels"
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
