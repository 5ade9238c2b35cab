#!/bin/sh
# editone-batch.sh - apply an editone preset to one photo.
#
# Made for digiKam's Batch Queue Manager "Custom Script" tool, usable from
# any host or shell:
#
#   INPUT=in.jpg OUTPUT=out.png EDITONE_PRESET=turn.json editone-batch.sh
#   EDITONE_PRESET=turn.json editone-batch.sh in.jpg out.png     (same thing)
#
# Inputs (environment; the two arguments, when given, override INPUT/OUTPUT):
#   INPUT           the photo to edit (PNG or JPEG; the centred square is
#                   projected, the result keeps the photo's own size)
#   OUTPUT          the file to write; its extension picks the format:
#                   .png -> PNG, .jpg/.jpeg -> JPEG (anything else is an error)
#   EDITONE_PRESET  the preset made by 'editone edit ... --out PRESET.json'
#                   (required)
#   EDITONE         the editone command (default: 'editone' on PATH)
#   EDITONE_STEPS   inversion steps (default: editone's, 600 for the built-in
#                   face model, about 10 s per photo on a CPU)
#   EDITONE_OVERWRITE=1  replace an OUTPUT that exists and is not empty
#                   (an empty one, such as the file digiKam makes for the
#                   script to fill, is always replaced). OUTPUT is never
#                   allowed to be INPUT.
#
# In digiKam, $INPUT and $OUTPUT are not environment variables: digiKam
# replaces those words in the Custom Script box with the quoted file names
# before it runs the box with /bin/sh -c (docs.digikam.org, Batch Queue
# Manager > Custom Script). So the box passes them on explicitly:
#
#   INPUT=$INPUT OUTPUT=$OUTPUT EDITONE_PRESET=/path/turn.json /path/editone-batch.sh
#
# What it does: inverts INPUT into a temporary folder ('editone invert'),
# applies the preset to it ('editone apply --inverted ... --format png|jpg')
# and copies the edited photo to a hidden temporary file beside OUTPUT,
# which is then renamed to OUTPUT: OUTPUT is only written once the edit has
# succeeded, and is either the old file or the new one, whole. The
# temporary files are removed on exit; SIGTERM and Ctrl-C stop editone too.
#
# Exit status: 0 done; 1 editone or a file operation failed; 2 bad or
# missing settings. Every failure prints one line starting with
# 'editone-batch.sh:' on stderr (editone's own messages come before it).
# Nothing is printed on stdout; editone's output goes to stderr.

prog='editone-batch.sh'

die() {
    # die STATUS MESSAGE...
    status=$1
    shift
    printf '%s: %s\n' "$prog" "$*" >&2
    exit "$status"
}

usage() {
    # The header above, up to "What it does".
    awk 'NR == 1 { next } /^# What it does/ { exit } { sub(/^# ?/, ""); print }' "$0"
}

case ${1-} in
    -h | --help)
        usage
        exit 0
        ;;
esac
if [ $# -gt 2 ]; then
    die 2 "too many arguments (usage: $prog [INPUT [OUTPUT]]; see --help)"
fi
[ $# -ge 1 ] && INPUT=$1
[ $# -ge 2 ] && OUTPUT=$2

# --- settings ----------------------------------------------------------------

[ -n "${INPUT-}" ] || die 2 "INPUT is not set: the photo to edit (INPUT=photo.jpg, or digiKam's INPUT=\$INPUT)"
[ -n "${OUTPUT-}" ] || die 2 "OUTPUT is not set: the file to write (OUTPUT=edited.png, or digiKam's OUTPUT=\$OUTPUT)"
[ -n "${EDITONE_PRESET-}" ] || die 2 "EDITONE_PRESET is not set: the preset to apply (EDITONE_PRESET=/path/preset.json, made by 'editone edit ... --out preset.json')"

if ! { [ -f "$INPUT" ] && [ -r "$INPUT" ]; }; then
    die 2 "INPUT '$INPUT' is not a readable file"
fi
if ! { [ -f "$EDITONE_PRESET" ] && [ -r "$EDITONE_PRESET" ]; }; then
    die 2 "EDITONE_PRESET '$EDITONE_PRESET' is not a readable file"
fi

case $OUTPUT in
    *.[pP][nN][gG]) format=png ;;
    *.[jJ][pP][gG] | *.[jJ][pP][eE][gG]) format=jpg ;;
    *) die 2 "cannot write '$OUTPUT': editone writes PNG (.png) or JPEG (.jpg, .jpeg) only; in digiKam set the Custom Script's Output Image Type to PNG or JPEG" ;;
esac

outdir=$(dirname -- "$OUTPUT")
[ -d "$outdir" ] || die 2 "the folder of OUTPUT '$OUTPUT' does not exist"
if [ "$INPUT" -ef "$OUTPUT" ]; then
    die 2 "OUTPUT '$OUTPUT' is INPUT: write the edited photo to another file"
fi
case ${EDITONE_OVERWRITE-} in
    '' | 0 | 1) ;;
    *) die 2 "EDITONE_OVERWRITE '$EDITONE_OVERWRITE' is not 0 or 1" ;;
esac
if [ -e "$OUTPUT" ] && [ ! -f "$OUTPUT" ]; then
    die 2 "OUTPUT '$OUTPUT' exists and is not a regular file"
fi
# An empty OUTPUT holds nothing to lose: digiKam makes one for the script to fill.
if [ -s "$OUTPUT" ] && [ "${EDITONE_OVERWRITE-}" != 1 ]; then
    die 2 "OUTPUT '$OUTPUT' exists; set EDITONE_OVERWRITE=1 to replace it"
fi

editone=${EDITONE:-editone}
command -v -- "$editone" >/dev/null 2>&1 ||
    die 2 "editone command '$editone' not found (set EDITONE=/path/to/editone or put editone on PATH)"

steps=${EDITONE_STEPS-}
case $steps in
    '') ;;
    *[!0-9]* | 0) die 2 "EDITONE_STEPS '$steps' is not a positive whole number" ;;
esac

# --- work --------------------------------------------------------------------

tmp=
part=
child=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [ -n "$tmp" ]; then
        rm -rf -- "$tmp"
    fi
    if [ -n "$part" ]; then
        rm -f -- "$part"
    fi
}
# stop STATUS: a signal stops editone as well (it removes its own
# temporary files and exits 3), then the EXIT trap cleans up.
# shellcheck disable=SC2317  # called by the signal traps
stop() {
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null
        wait "$child"
    fi
    exit "$1"
}
trap cleanup EXIT
trap 'stop 129' HUP
trap 'stop 130' INT
trap 'stop 143' TERM

# run_editone ARGS...: editone in the background, so that a signal to this
# script is handled at once instead of when editone ends.
run_editone() {
    "$editone" "$@" >&2 &
    child=$!
    wait "$child"
    rc=$?
    child=
    return "$rc"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/editone-batch.XXXXXX") ||
    die 1 "cannot make a temporary folder in ${TMPDIR:-/tmp}"

# A fixed name inside the temporary folder: editone names its outputs after
# the photo, so this keeps odd file names (spaces, several dots, digiKam's
# BatchTool-*.digikamtempfile.* names) out of the way. editone reads the
# file's content, not its extension.
if ! cp -- "$INPUT" "$tmp/photo"; then
    die 1 "cannot copy INPUT '$INPUT' to $tmp"
fi

rc=0
if [ -n "$steps" ]; then
    run_editone invert "$tmp/photo" --out "$tmp/inv" --steps "$steps" || rc=$?
else
    run_editone invert "$tmp/photo" --out "$tmp/inv" || rc=$?
fi
[ "$rc" -eq 0 ] || die 1 "'$editone invert' failed (exit $rc) on INPUT '$INPUT' (editone reads PNG and JPEG only)"

rc=0
run_editone apply --preset "$EDITONE_PRESET" --inverted "$tmp/inv" \
    --out-dir "$tmp/out" --format "$format" || rc=$?
[ "$rc" -eq 0 ] || die 1 "'$editone apply' failed (exit $rc) with preset '$EDITONE_PRESET'"

result=$tmp/out/photo.$format
[ -s "$result" ] || die 1 "'$editone apply' wrote no image ($result is missing)"

# The result goes to a hidden temporary file beside OUTPUT (created
# exclusively with set -C, with the permissions a new file gets), then
# takes OUTPUT's name in one step: mv (rename) where replacing is allowed,
# else ln, which fails rather than replace a file that appeared meanwhile.
part=$outdir/.editone-batch.$$.tmp
if ! (set -C && cat -- "$result" >"$part") 2>/dev/null; then
    part=
    die 1 "cannot write a temporary file in the folder of OUTPUT '$OUTPUT'"
fi
if [ "${EDITONE_OVERWRITE-}" = 1 ] || { [ -f "$OUTPUT" ] && [ ! -s "$OUTPUT" ]; }; then
    mv -f -- "$part" "$OUTPUT" || die 1 "cannot write OUTPUT '$OUTPUT'"
elif ! ln -- "$part" "$OUTPUT" 2>/dev/null; then
    [ ! -e "$OUTPUT" ] || die 1 "OUTPUT '$OUTPUT' appeared while editing; set EDITONE_OVERWRITE=1 to replace it"
    mv -f -- "$part" "$OUTPUT" || die 1 "cannot write OUTPUT '$OUTPUT'" # no hard links here
fi
exit 0
