#!/usr/bin/env bash
# Makes docs/gimp.png: GIMP 2.10 under Xvfb with an image whose four face
# layers were edited by the plug-in (run after `make install-gimp`-style
# setup: needs build/test-prefix from `make test`, Xvfb and ImageMagick).
set -euo pipefail
cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
trap 'kill $XVFB 2>/dev/null || true; rm -rf "$TMP"' EXIT
export GIMP2_DIRECTORY="$TMP/profile"
mkdir -p "$GIMP2_DIRECTORY/plug-ins/editone"
cp build/editone-gimp "$GIMP2_DIRECTORY/plug-ins/editone/editone"
build/test-prefix/bin/editone render --seeds 1-4 --size 256 --out-dir "$TMP/layers" 2>/dev/null
gimp-console-2.10 -i -b - >/dev/null 2>&1 <<SCM
(let* ((dir "$TMP/layers/")
       (image (car (gimp-file-load RUN-NONINTERACTIVE (string-append dir "seed0001.png") "seed0001.png")))
       (example (car (gimp-image-get-active-layer image))) (x 256))
  (gimp-image-resize image 1024 256 0 0)
  (gimp-item-set-name example "face 1")
  (for-each
    (lambda (name)
      (let ((layer (car (gimp-file-load-layer RUN-NONINTERACTIVE image (string-append dir name)))))
        (gimp-image-insert-layer image layer 0 -1)
        (gimp-layer-set-offsets layer x 0)
        (set! x (+ x 256))))
    '("seed0002.png" "seed0003.png" "seed0004.png"))
  (plug-in-editone-set-example RUN-NONINTERACTIVE image example 0 0 4.0 0 200)
  (plug-in-editone-apply-to-selection RUN-NONINTERACTIVE image example 200 0)
  (gimp-xcf-save RUN-NONINTERACTIVE image example "$TMP/faces.xcf" "$TMP/faces.xcf")
  (gimp-quit 0))
SCM
Xvfb :97 -screen 0 1400x860x24 >/dev/null 2>&1 &
XVFB=$!
sleep 2
DISPLAY=:97 gimp-2.10 --no-splash "$TMP/faces.xcf" >/dev/null 2>&1 &
sleep 40
DISPLAY=:97 import -window root docs/gimp.png
kill %2 2>/dev/null || true
echo "wrote docs/gimp.png"
