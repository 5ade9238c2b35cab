#!/usr/bin/env bash
# End-to-end test of editone studio in headless Chromium (tests/studio/e2e.mjs).
#
# Usage, from anywhere:
#   tests/studio/run.sh PATH_TO_EDITONE_STUDIO PATH_TO_EDITONE [--update-screenshot]
#
# Starts the studio on a free loopback port with the default model and 12
# images, installs playwright-core (pinned in package-lock.json) into
# build/studio-node once, and drives the page with Debian's Chromium
# (/usr/bin/chromium, or $CHROMIUM). Screenshots of each step go to
# build/studio-screens/; --update-screenshot also copies the one after the
# slider step to docs/studio.png. $STUDIO_ARGS adds options to the studio
# (e.g. --threads 1). Without Chromium or Node.js it says SKIPPED loudly and
# exits 0.
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

TMP=$(mktemp -d)
STUDIO_PID=
cleanup() {
    if [ -n "$STUDIO_PID" ]; then
        kill "$STUDIO_PID" 2>/dev/null || true
        wait "$STUDIO_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# The studio prints "editone studio: http://127.0.0.1:PORT/" once it listens.
"$STUDIO" --port 0 --count 12 ${STUDIO_ARGS:-} >"$TMP/stdout" 2>"$TMP/stderr" &
STUDIO_PID=$!
URL=
for _ in $(seq 1 600); do
    URL=$(sed -n 's|^editone studio: \(http://127\.0\.0\.1:[0-9]*/\)$|\1|p' "$TMP/stdout" | head -1)
    [ -n "$URL" ] && break
    if ! kill -0 "$STUDIO_PID" 2>/dev/null; then break; fi
    sleep 0.1
done
if [ -z "$URL" ]; then
    echo "FAIL the studio did not print its URL within 60 s; its output:"
    sed -e 's/^/     | /' "$TMP/stdout" "$TMP/stderr" | tail -30
    exit 1
fi
echo "studio at $URL"

ARGS=(--url "$URL" --editone "$EDITONE" --node-modules "$NODE_DIR/node_modules"
      --screens build/studio-screens --chromium "$CHROMIUM")
if [ "$UPDATE" = --update-screenshot ]; then ARGS+=(--update-screenshot docs/studio.png); fi

rc=0
node tests/studio/e2e.mjs "${ARGS[@]}" || rc=$?
if ! kill -0 "$STUDIO_PID" 2>/dev/null; then
    echo "FAIL the studio exited during the test"
    rc=1
fi
if [ $rc -ne 0 ]; then
    if [ -s "$TMP/stderr" ]; then
        echo "     the studio's stderr (last 30 lines):"
        tail -30 "$TMP/stderr" | sed -e 's/^/     | /'
    else
        echo "     the studio wrote nothing on stderr"
    fi
fi
exit $rc
