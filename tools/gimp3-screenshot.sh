#!/usr/bin/env bash
# Makes docs/gimp3.png: a real GIMP 3 window (Debian 13's, in the root that
# tools/trixie-root.sh makes) under Xvfb, with three synthetic group photos
# as layers and the plug-in's Set Example dialog open. Run as root after
# `make test` (it needs build/test-prefix): tools/gimp3-screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOUT=$(pwd)
PREFIX="$CHECKOUT/build/test-prefix"
[ -f "$PREFIX/lib/pkgconfig/editone.pc" ] || { echo "gimp3-screenshot: run 'make test' (or 'make c-tests') first" >&2; exit 1; }
JOB=$(mktemp -d)
trap 'rm -rf "$JOB"' EXIT
mkdir -p "$JOB/src" "$JOB/profile/plug-ins/editone"
cp host-examples/gimp/editone-gimp3.c host-examples/gimp/editone-shared.[ch] "$JOB/src/"
for photo in "A 7 3 640x480" "B 8 2 480x360" "C 12 2 400x300"; do
    set -- $photo
    cargo run --release --locked --quiet --example synthetic_group -- "$JOB/$1.png" "$2" "$3" "$4" >/dev/null
done
# No welcome dialog over the picture.
echo '(show-welcome-dialog no)' >"$JOB/profile/gimprc"
cat >"$JOB/shot.py" <<'PY'
from gi.repository import Gimp, Gio
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path("/job/A.png"))
image.get_layers()[0].set_name("A")
for name, offset in (("B", (80, 50)), ("C", (200, 150))):
    layer = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(f"/job/{name}.png"))
    layer.set_name(name)
    image.insert_layer(layer, None, 0)
    layer.set_offsets(*offset)
image.set_selected_layers([image.get_layer_by_name("A")])
Gimp.Display.new(image)
Gimp.displays_flush()
proc = Gimp.get_pdb().lookup_procedure("plug-in-editone-set-example")
config = proc.create_config()
config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [image.get_layer_by_name("A")])
proc.run(config)
PY
tools/trixie-root.sh run "$JOB" -- "
    PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig bash $CHECKOUT/tools/build-gimp3-plugin.sh src profile/plug-ins/editone/editone
    export GIMP3_DIRECTORY=/job/profile
    Xvfb :97 -screen 0 1400x900x24 -nolisten tcp >/dev/null 2>&1 & xvfb=\$!
    sleep 2
    DISPLAY=:97 gimp-3.0 --no-splash --batch-interpreter=python-fu-eval -b 'exec(open(\"/job/shot.py\").read())' \
        >/job/gimp.log 2>&1 & gimp=\$!
    for i in \$(seq 120); do DISPLAY=:97 xdotool search --name 'Editone: Set Example' >/dev/null 2>&1 && break; sleep 1; done
    sleep 5
    DISPLAY=:97 import -window root /job/gimp3.png
    kill \$gimp \$xvfb
    wait \$gimp \$xvfb || true
"
[ -s "$JOB/gimp3.png" ] || { echo "gimp3-screenshot: no screenshot was taken" >&2; exit 1; }
cp "$JOB/gimp3.png" docs/.gimp3.png.tmp
mv docs/.gimp3.png.tmp docs/gimp3.png
echo "wrote docs/gimp3.png"
