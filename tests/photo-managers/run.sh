#!/usr/bin/env bash
# Tests of the photo-manager integrations in host-examples/photo-managers/:
# editone-batch.sh (digiKam Batch Queue Manager "Custom Script", or any host)
# and editone.lua (darktable).
#
# Usage, from the repository root:  tests/photo-managers/run.sh PATH_TO_EDITONE
#
# Makes two photos ('editone render --size 150') and a preset ('editone edit
# --fast --iterations 20'), then:
#   - runs editone-batch.sh the way digiKam does (the Custom Script box text
#     with $INPUT/$OUTPUT replaced by the quoted file names, run by
#     /bin/sh -c, OUTPUT an empty BatchTool-*.digikamtempfile.jpg) and from
#     the command line (INPUT/OUTPUT in the environment) for a .jpg and a
#     .png OUTPUT; checks format (magic bytes) and size (PNG IHDR, JPEG SOF)
#     against the input, and that no temporary folder is left behind;
#   - checks the failures: EDITONE_PRESET missing, an OUTPUT format editone
#     cannot write, an INPUT that is no image (OUTPUT left alone);
#   - checks that no file is lost: an existing OUTPUT is refused without
#     EDITONE_OVERWRITE=1 and replaced whole with it, OUTPUT = INPUT is
#     refused, SIGTERM stops the script and editone, leaving nothing;
#   - syntax-checks editone.lua with luac (or lua) and runs it against a
#     stand-in for the darktable Lua API (darktable_mock.lua), when a Lua
#     5.3/5.4 is installed; otherwise prints SKIPPED lines.
# Needs bash and python3 (standard library). Ends with "N passed, M failed";
# exits non-zero if any failed.
set -euo pipefail

# shellcheck source=tests/editone-argument.sh
. "$(dirname "$0")/../editone-argument.sh"
take_editone_argument "$0" "$@"

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BATCH=$ROOT/host-examples/photo-managers/editone-batch.sh
LUA_SCRIPT=$ROOT/host-examples/photo-managers/editone.lua
STEPS=20

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# editone-batch.sh makes its temporary folders here, to check its clean-up.
mkdir "$TMP/scratch"

PASSED=0
FAILED=0

pass() {
    PASSED=$((PASSED + 1))
    echo "ok   $1"
}

# fail NAME [why] [FILE...]: also shows the first lines of each FILE.
fail() {
    FAILED=$((FAILED + 1))
    echo "FAIL $1${2:+: $2}"
    shift $(($# < 2 ? $# : 2))
    local f
    for f in "$@"; do
        if [ -s "$f" ]; then head -20 "$f" | sed -e 's/^/     | /'; fi
    done
    return 0
}

skip() {
    echo "SKIPPED $1"
}

# imginfo FILE: prints "png W H", "jpeg W H" or "other 0 0" (magic bytes,
# then the PNG IHDR or the first JPEG SOFn segment).
imginfo() {
    python3 - "$1" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
    w, h = struct.unpack(">II", data[16:24])
    print("png", w, h)
elif data[:3] == b"\xff\xd8\xff":
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7,
                      0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            print("jpeg", w, h)
            sys.exit(0)
        i += 2 + length
    print("other 0 0")
else:
    print("other 0 0")
EOF
}

# check_image NAME FILE WANT_FORMAT INPUT [LOG]: FILE exists, has the magic
# bytes of WANT_FORMAT and INPUT's width and height.
check_image() {
    local name=$1 file=$2 want=$3 input=$4 log=${5:-}
    local got_fmt got_w got_h in_w in_h
    if [ ! -s "$file" ]; then
        fail "$name" "no output at $file" "$log"
        return 0
    fi
    read -r got_fmt got_w got_h < <(imginfo "$file")
    read -r _ in_w in_h < <(imginfo "$input")
    if [ "$got_fmt" != "$want" ]; then
        fail "$name" "output is $got_fmt, expected $want" "$log"
    elif [ "$got_w $got_h" != "$in_w $in_h" ]; then
        fail "$name" "output is ${got_w}x$got_h, input ${in_w}x$in_h" "$log"
    else
        pass "$name ($want ${got_w}x$got_h)"
    fi
}

# no_leftovers NAME: editone-batch.sh removed its temporary folders.
no_leftovers() {
    if [ -n "$(ls -A "$TMP/scratch")" ]; then
        fail "$1" "left behind: $(cd "$TMP/scratch" && echo *)"
        rm -rf "${TMP:?}/scratch/"*
    else
        pass "$1"
    fi
}

# --- setup --------------------------------------------------------------------

mkdir -p "$TMP/photos"
if ! "$EDITONE" render --seeds 7-8 --size 150 --out-dir "$TMP/photos" \
    >"$TMP/render.log" 2>&1; then
    fail "setup: render photos" "" "$TMP/render.log"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
if ! "$EDITONE" edit --seed 1 --direction 0 --strength 4 --fast --iterations 20 \
    --out "$TMP/turn.json" >"$TMP/edit.log" 2>&1; then
    fail "setup: edit preset" "" "$TMP/edit.log"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
pass "setup: two photos and a preset"

# --- digiKam: the Custom Script box, as digiKam runs it --------------------------
#
# digiKam replaces the words $INPUT and $OUTPUT in the box text by the file
# names in double quotes and runs the text with /bin/sh -c; OUTPUT is a file
# it has already created (empty) in its working folder.

mkdir -p "$TMP/album one" "$TMP/work"
cp "$TMP/photos/seed0008.png" "$TMP/album one/portrait 8.png"
INPUT_DK="$TMP/album one/portrait 8.png"
OUTPUT_DK=$(mktemp "$TMP/work/BatchTool-XXXXXX-1a2b3c4d.digikamtempfile.jpg")
# shellcheck disable=SC2016  # $INPUT and $OUTPUT are digiKam's keywords, kept literal
BOX='INPUT=$INPUT OUTPUT=$OUTPUT EDITONE_PRESET='"$TMP/turn.json"' EDITONE_STEPS='"$STEPS"' EDITONE='"$EDITONE"' '"$BATCH"
SCRIPT=${BOX//\$INPUT/\"$INPUT_DK\"}
SCRIPT=${SCRIPT//\$OUTPUT/\"$OUTPUT_DK\"}
rc=0
TMPDIR=$TMP/scratch /bin/sh -c "$SCRIPT" >"$TMP/dk.out" 2>"$TMP/dk.err" || rc=$?
if [ "$rc" -ne 0 ]; then
    fail "digiKam box: exit status" "exit $rc" "$TMP/dk.err"
else
    pass "digiKam box: exit status 0"
fi
check_image "digiKam box: .jpg OUTPUT is a JPEG of the input's size" "$OUTPUT_DK" jpeg "$INPUT_DK" "$TMP/dk.err"
if [ -s "$TMP/dk.out" ]; then
    fail "digiKam box: nothing on stdout" "" "$TMP/dk.out"
else
    pass "digiKam box: nothing on stdout"
fi
no_leftovers "digiKam box: temporary folder removed"

# --- command line: INPUT/OUTPUT in the environment -------------------------------

rc=0
INPUT=$TMP/photos/seed0007.png OUTPUT=$TMP/edited7.png EDITONE_PRESET=$TMP/turn.json \
    EDITONE=$EDITONE EDITONE_STEPS=$STEPS TMPDIR=$TMP/scratch \
    "$BATCH" >"$TMP/cl.out" 2>"$TMP/cl.err" || rc=$?
if [ "$rc" -ne 0 ]; then
    fail "command line: exit status" "exit $rc" "$TMP/cl.err"
else
    pass "command line: exit status 0"
fi
check_image "command line: .png OUTPUT is a PNG of the input's size" "$TMP/edited7.png" png "$TMP/photos/seed0007.png" "$TMP/cl.err"
no_leftovers "command line: temporary folder removed"

# --- failures --------------------------------------------------------------------

# expect_failure NAME TEXT OUTPUT -- ENV...: runs the script with ENV (and
# TMPDIR, EDITONE); wants a non-zero exit, TEXT on stderr, OUTPUT untouched.
expect_failure() {
    local name=$1 text=$2 output=$3 rc=0 before=absent after=absent
    shift 4
    if [ -e "$output" ]; then before=$(cksum <"$output"); fi
    env -u EDITONE_PRESET -u INPUT -u OUTPUT TMPDIR="$TMP/scratch" EDITONE="$EDITONE" "$@" \
        "$BATCH" >"$TMP/f.out" 2>"$TMP/f.err" || rc=$?
    if [ -e "$output" ]; then after=$(cksum <"$output"); fi
    if [ "$rc" -eq 0 ]; then
        fail "$name" "exit 0, expected a failure" "$TMP/f.err"
    elif ! grep -qF -- "$text" "$TMP/f.err"; then
        fail "$name" "stderr does not say '$text'" "$TMP/f.err"
    elif ! tail -1 "$TMP/f.err" | grep -q '^editone-batch.sh: '; then
        fail "$name" "the last stderr line is not the script's message" "$TMP/f.err"
    elif [ "$before" != "$after" ]; then
        fail "$name" "OUTPUT was changed"
    else
        pass "$name (exit $rc: $(tail -1 "$TMP/f.err" | cut -c1-70)...)"
    fi
}

expect_failure "missing EDITONE_PRESET fails with a message" "EDITONE_PRESET is not set" \
    "$TMP/nopreset.png" -- INPUT="$TMP/photos/seed0007.png" OUTPUT="$TMP/nopreset.png"
expect_failure "a .tif OUTPUT fails with a message" "PNG (.png) or JPEG" \
    "$TMP/out.tif" -- INPUT="$TMP/photos/seed0007.png" OUTPUT="$TMP/out.tif" EDITONE_PRESET="$TMP/turn.json"
echo "not an image" >"$TMP/notes.png"
echo "keep me" >"$TMP/keep.png"
expect_failure "an INPUT that is no image fails, OUTPUT untouched" "invert' failed" \
    "$TMP/keep.png" -- INPUT="$TMP/notes.png" OUTPUT="$TMP/keep.png" EDITONE_PRESET="$TMP/turn.json" EDITONE_STEPS=$STEPS \
    EDITONE_OVERWRITE=1
no_leftovers "failures: temporary folders removed"

# --- files are sacred ------------------------------------------------------------

expect_failure "an OUTPUT that exists is refused, untouched" "exists; set EDITONE_OVERWRITE=1 to replace it" \
    "$TMP/edited7.png" -- INPUT="$TMP/photos/seed0008.png" OUTPUT="$TMP/edited7.png" EDITONE_PRESET="$TMP/turn.json" \
    EDITONE_STEPS=$STEPS
cp "$TMP/photos/seed0008.png" "$TMP/self.png"
expect_failure "OUTPUT = INPUT is refused, even with EDITONE_OVERWRITE=1" "is INPUT" \
    "$TMP/self.png" -- INPUT="$TMP/self.png" OUTPUT="$TMP/./self.png" EDITONE_PRESET="$TMP/turn.json" \
    EDITONE_STEPS=$STEPS EDITONE_OVERWRITE=1
mkdir -p "$TMP/over"
cp "$TMP/edited7.png" "$TMP/over/edited.png"
old_inode=$(stat -c %i "$TMP/over/edited.png")
rc=0
INPUT=$TMP/photos/seed0008.png OUTPUT=$TMP/over/edited.png EDITONE_PRESET=$TMP/turn.json EDITONE=$EDITONE \
    EDITONE_STEPS=$STEPS EDITONE_OVERWRITE=1 TMPDIR=$TMP/scratch "$BATCH" >"$TMP/ov.out" 2>"$TMP/ov.err" || rc=$?
if [ "$rc" -ne 0 ]; then
    fail "EDITONE_OVERWRITE=1 replaces OUTPUT" "exit $rc" "$TMP/ov.err"
elif [ "$(stat -c %i "$TMP/over/edited.png")" = "$old_inode" ] || cmp -s "$TMP/over/edited.png" "$TMP/edited7.png"; then
    fail "EDITONE_OVERWRITE=1 replaces OUTPUT by renaming a new file over it" "the old file is still there, or was rewritten in place"
elif [ "$(ls -A "$TMP/over")" != edited.png ]; then
    fail "EDITONE_OVERWRITE=1 replaces OUTPUT" "left beside it: $(ls -A "$TMP/over")"
else
    pass "EDITONE_OVERWRITE=1 replaces OUTPUT by renaming a new file over it, nothing left beside it"
    check_image "... with the edit of the new INPUT" "$TMP/over/edited.png" png "$TMP/photos/seed0008.png" "$TMP/ov.err"
fi
no_leftovers "files are sacred: temporary folders removed"

# SIGTERM while editone inverts: the script stops at once, stops editone,
# and leaves neither OUTPUT nor a temporary file.
INPUT=$TMP/photos/seed0007.png OUTPUT=$TMP/over/term.png EDITONE_PRESET=$TMP/turn.json EDITONE=$EDITONE \
    EDITONE_STEPS=100000 TMPDIR=$TMP/scratch "$BATCH" >"$TMP/term.out" 2>"$TMP/term.err" &
pid=$!
sleep 2
start=$SECONDS
kill -TERM "$pid"
rc=0
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
    # It did not stop: end it and the editone it started, by their ids.
    for child in $(pgrep -P "$pid"); do kill -9 "$child" 2>/dev/null || true; done
    kill -9 "$pid" 2>/dev/null || true
fi
wait "$pid" || rc=$?
left=$(pgrep -f -- "$TMP/scratch/editone-batch" || true)
if [ "$rc" -ne 143 ] || [ $((SECONDS - start)) -gt 8 ]; then
    fail "SIGTERM stops the script at once (exit 143)" "exit $rc after $((SECONDS - start)) s" "$TMP/term.err"
elif [ -n "$left" ]; then
    fail "SIGTERM stops editone too" "still running: $left"
elif [ -e "$TMP/over/term.png" ] || [ "$(ls -A "$TMP/over")" != edited.png ]; then
    fail "SIGTERM leaves no OUTPUT and no temporary file" "$(ls -A "$TMP/over")"
else
    pass "SIGTERM stops the script and editone at once (exit 143), no OUTPUT, no temporary file"
fi
no_leftovers "SIGTERM: temporary folder removed"

# --- darktable: editone.lua -------------------------------------------------------

LUAC=
for c in luac5.4 luac5.3 luac; do
    if command -v "$c" >/dev/null 2>&1; then LUAC=$c; break; fi
done
LUA=
for c in lua5.4 lua5.3 lua; do
    if command -v "$c" >/dev/null 2>&1; then LUA=$c; break; fi
done

if [ -n "$LUAC" ]; then
    if "$LUAC" -p "$LUA_SCRIPT" 2>"$TMP/luac.err"; then
        pass "editone.lua: syntax ($LUAC -p)"
    else
        fail "editone.lua: syntax ($LUAC -p)" "" "$TMP/luac.err"
    fi
elif [ -n "$LUA" ]; then
    if "$LUA" -e 'assert(loadfile(arg[1]))' "$LUA_SCRIPT" 2>"$TMP/luac.err"; then
        pass "editone.lua: syntax ($LUA loadfile)"
    else
        fail "editone.lua: syntax ($LUA loadfile)" "" "$TMP/luac.err"
    fi
else
    skip "editone.lua: syntax check (no luac5.4, luac5.3, luac, lua5.4, lua5.3 or lua on PATH)"
fi

if [ -n "$LUA" ]; then
    # A non-square PNG with a space and a quote in its name, and a raw file
    # that must be skipped.
    mkdir -p "$TMP/dt roll"
    DT_PNG="$TMP/dt roll/it's wide.png"
    python3 - "$DT_PNG" <<'EOF'
import struct, sys, zlib
w, h = 180, 150
rows = b"".join(b"\x00" + bytes(v for x in range(w) for v in ((x + y) % 256, (2 * y) % 256, 128)) for y in range(h))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                             + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
EOF
    echo "raw" >"$TMP/dt roll/IMG_0001.CR2"
    rc=0
    (cd "$HERE" && TMPDIR=$TMP/scratch "$LUA" darktable_mock.lua "$LUA_SCRIPT" "$TMP" "$EDITONE" \
        "$TMP/turn.json" "$STEPS" "$DT_PNG" "$TMP/dt roll/IMG_0001.CR2") \
        >"$TMP/dt.out" 2>"$TMP/dt.err" || rc=$?
    cat "$TMP/dt.err" >>"$TMP/dt.out"
    DT_OUT="$TMP/dt roll/it's wide_editone.png"
    if [ "$rc" -ne 0 ] || ! grep -qx DONE "$TMP/dt.out"; then
        fail "editone.lua: runs against the darktable API stand-in" "exit $rc" "$TMP/dt.out" "$TMP/editone.log"
    elif ! grep -qx "REGISTERED editone: apply preset" "$TMP/dt.out"; then
        fail "editone.lua: registers the button 'editone: apply preset'" "" "$TMP/dt.out"
    elif ! grep -qxF "IMPORTED $DT_OUT" "$TMP/dt.out"; then
        fail "editone.lua: imports NAME_editone.png next to the photo" "" "$TMP/dt.out" "$TMP/editone.log"
    elif ! grep -qxF "GROUPED $DT_OUT WITH $DT_PNG" "$TMP/dt.out"; then
        fail "editone.lua: groups the result with the original" "" "$TMP/dt.out"
    elif ! grep -q "skipped IMG_0001.CR2" "$TMP/dt.out" || grep -q "IMPORTED .*IMG_0001" "$TMP/dt.out"; then
        fail "editone.lua: skips formats editone cannot read" "" "$TMP/dt.out"
    else
        pass "editone.lua: button, import next to the photo, grouping, raw skipped"
        check_image "editone.lua: result is a PNG of the photo's size" "$DT_OUT" png "$DT_PNG" "$TMP/editone.log"
        # Again: the first result stays, the second gets the next free name.
        before=$(cksum <"$DT_OUT")
        rc=0
        (cd "$HERE" && TMPDIR=$TMP/scratch "$LUA" darktable_mock.lua "$LUA_SCRIPT" "$TMP" "$EDITONE" \
            "$TMP/turn.json" "$STEPS" "$DT_PNG") >"$TMP/dt2.out" 2>&1 || rc=$?
        DT_OUT2="$TMP/dt roll/it's wide_editone_2.png"
        if [ "$rc" -eq 0 ] && grep -qxF "IMPORTED $DT_OUT2" "$TMP/dt2.out" && [ "$(cksum <"$DT_OUT")" = "$before" ] &&
            [ -z "$(find "$TMP/dt roll" -name '.*')" ]; then
            pass "editone.lua: a second run writes NAME_editone_2.png, the first result untouched, nothing hidden left"
        else
            fail "editone.lua: a second run writes NAME_editone_2.png, the first result untouched" "exit $rc" \
                "$TMP/dt2.out" "$TMP/editone.log"
        fi
    fi
    no_leftovers "editone.lua: temporary folder removed"
else
    skip "editone.lua: run against the darktable API stand-in (no lua5.4, lua5.3 or lua on PATH)"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
