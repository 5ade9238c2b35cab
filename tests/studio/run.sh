#!/usr/bin/env bash
# End-to-end test of editone studio in headless Chromium (tests/studio/e2e.mjs).
#
# Usage, from anywhere:
#   tests/studio/run.sh PATH_TO_EDITONE_STUDIO PATH_TO_EDITONE [--update-screenshot]
#
# Starts the studio on a free loopback port with the default model and 12
# images, and a second one on a folder of photos (--folder: a synthetic
# group photo of three faces and scikit-image's coffee.png, which has
# none), installs playwright-core (pinned in package-lock.json) into
# build/studio-node once, and drives the pages with Debian's Chromium
# (/usr/bin/chromium, or $CHROMIUM). Screenshots of each step go to
# build/studio-screens/; --update-screenshot also copies the one after the
# slider step to docs/studio.png. $STUDIO_ARGS adds options to both studios
# (e.g. --threads 1). Without Chromium or Node.js it says SKIPPED loudly and
# exits 0.
#
# The group photo is written by the library's synthetic_group example
# ($SYNTHETIC_GROUP, else target/release/examples/synthetic_group, built
# here with cargo when missing) into build/studio-e2e/ and kept there until
# the example is rebuilt: it takes a minute on 2 cores.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ] || { [ $# -eq 3 ] && [ "$3" != --update-screenshot ]; }; then
    echo "usage: $0 PATH_TO_EDITONE_STUDIO PATH_TO_EDITONE [--update-screenshot]" >&2
    exit 2
fi
STUDIO=$(realpath "$1")
EDITONE=$(realpath "$2")
UPDATE=${3:-}
for bin in "$STUDIO" "$EDITONE"; do
    if [ ! -x "$bin" ]; then
        echo "$0: '$bin' is not an executable" >&2
        exit 2
    fi
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$CHROMIUM" ]; then
    echo "!!!!! SKIPPED: $CHROMIUM is not installed (Debian: apt-get install chromium); the studio page is NOT tested !!!!!"
    exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "!!!!! SKIPPED: Node.js and npm are not installed; the studio page is NOT tested !!!!!"
    exit 0
fi

# playwright-core, exactly as locked, installed once (again when the lock
# file changes).
NODE_DIR=build/studio-node
if [ ! -f "$NODE_DIR/node_modules/playwright-core/package.json" ] \
    || ! cmp -s tests/studio/package-lock.json "$NODE_DIR/package-lock.json"; then
    mkdir -p "$NODE_DIR"
    cp tests/studio/package.json tests/studio/package-lock.json "$NODE_DIR/"
    npm ci --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error
fi

# The folder of photos: the group photo (made once, see above) and a photo
# without a face.
COFFEE=.cache/test-data/coffee.png
if [ ! -f "$COFFEE" ]; then
    echo "FAIL $COFFEE is missing: run 'make setup' (it extracts scikit-image's sample photos)"
    exit 1
fi
GROUP_BIN=${SYNTHETIC_GROUP:-target/release/examples/synthetic_group}
if [ -z "${SYNTHETIC_GROUP:-}" ] && [ ! -x "$GROUP_BIN" ]; then
    ${CARGO:-cargo} build --release --locked --example synthetic_group
fi
GROUP=build/studio-e2e/group-1-3-900x600.png
if [ ! -f "$GROUP" ] || [ "$GROUP_BIN" -nt "$GROUP" ]; then
    mkdir -p build/studio-e2e
    rm -f "$GROUP"
    echo "writing $GROUP with $GROUP_BIN (once)"
    "$GROUP_BIN" "$GROUP" 1 3 900x600 >/dev/null
fi

TMP=$(mktemp -d)
mkdir "$TMP/folder"
cp "$GROUP" "$TMP/folder/group.png"
cp "$COFFEE" "$TMP/folder/still-life.png"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

# Starts a studio with the options given, logging to $TMP/NAME.stdout and
# .stderr; sets URL once it prints "editone studio: http://127.0.0.1:PORT/".
start_studio() {
    local name=$1 pid
    shift
    "$STUDIO" --port 0 "$@" ${STUDIO_ARGS:-} >"$TMP/$name.stdout" 2>"$TMP/$name.stderr" &
    pid=$!
    PIDS+=("$pid")
    URL=
    for _ in $(seq 1 1200); do
        URL=$(sed -n 's|^editone studio: \(http://127\.0\.0\.1:[0-9]*/\)$|\1|p' "$TMP/$name.stdout" | head -1)
        [ -n "$URL" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if [ -z "$URL" ]; then
        echo "FAIL the $name studio did not print its URL within 120 s; its output:"
        sed -e 's/^/     | /' "$TMP/$name.stdout" "$TMP/$name.stderr" | tail -30
        exit 1
    fi
    echo "$name studio at $URL"
}

start_studio seeds --count 12
SEEDS_URL=$URL
# 100 projector steps: the page test checks where edits land, not the fit.
start_studio folder --folder "$TMP/folder" --invert-steps 100
FOLDER_URL=$URL
sed -e 's/^/     | /' "$TMP/folder.stderr"

ARGS=(--url "$SEEDS_URL" --folder-url "$FOLDER_URL" --editone "$EDITONE" --node-modules "$NODE_DIR/node_modules"
      --screens build/studio-screens --chromium "$CHROMIUM")
if [ "$UPDATE" = --update-screenshot ]; then ARGS+=(--update-screenshot docs/studio.png); fi

rc=0
node tests/studio/e2e.mjs "${ARGS[@]}" || rc=$?
for k in 0 1; do
    name=$([ $k -eq 0 ] && echo seeds || echo folder)
    if ! kill -0 "${PIDS[$k]}" 2>/dev/null; then
        echo "FAIL the $name studio exited during the test"
        rc=1
    fi
    if [ $rc -ne 0 ]; then
        if [ -s "$TMP/$name.stderr" ]; then
            echo "     the $name studio's stderr (last 30 lines):"
            tail -30 "$TMP/$name.stderr" | sed -e 's/^/     | /'
        else
            echo "     the $name studio wrote nothing on stderr"
        fi
    fi
done
exit $rc
