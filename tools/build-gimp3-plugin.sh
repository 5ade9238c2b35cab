#!/usr/bin/env bash
# Builds the GIMP 3 plug-in: tools/build-gimp3-plugin.sh SRC_DIR OUT
# SRC_DIR holds editone-gimp3.c and editone-shared.[ch] (host-examples/gimp);
# pkg-config must find gimpui-3.0 (Debian: libgimp-3.0-dev) and editone
# (PKG_CONFIG_PATH=PREFIX/lib/pkgconfig after `make install`). Used by
# `make install-gimp` and, inside the Debian 13 root, by tests/gimp/run3.sh.
set -euo pipefail
SRC=$1 OUT=$2
# GIMP 3.0's own headers trip -Wignored-qualifiers (gimpspinscale.h).
cc -std=gnu11 -Wall -Wextra -Wno-missing-field-initializers -Wno-ignored-qualifiers -Werror -O2 \
    "$SRC/editone-gimp3.c" "$SRC/editone-shared.c" \
    $(pkg-config --cflags gimpui-3.0) $(pkg-config --cflags --libs editone) $(pkg-config --libs gimpui-3.0) \
    -o "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
