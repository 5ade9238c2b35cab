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
# and copies the edited photo to OUTPUT. OUTPUT is only written once the
# edit has succeeded. The temporary folder is removed on exit.
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
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [ -n "$tmp" ]; then
        rm -rf -- "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

tmp=$(mktemp -d "${TMPDIR:-/tmp}/editone-batch.XXXXXX") ||
    die 1 "cannot make a temporary folder in ${TMPDIR:-/tmp}"

# A fixed name inside the temporary folder: editone names its outputs after
# the photo, so this keeps odd file names (spaces, several dots, digiKam's
# BatchTool-*.digikamtempfile.* names) out of the way. editone reads the
# file's content, not its extension.
if ! cp -- "$INPUT" "$tmp/photo"; then
    die 1 "cannot copy INPUT '$INPUT' to $tmp"
fi

if [ -n "$steps" ]; then
    "$editone" invert "$tmp/photo" --out "$tmp/inv" --steps "$steps" >&2
else
    "$editone" invert "$tmp/photo" --out "$tmp/inv" >&2
fi
rc=$?
[ "$rc" -eq 0 ] || die 1 "'$editone invert' failed (exit $rc) on INPUT '$INPUT' (editone reads PNG and JPEG only)"

"$editone" apply --preset "$EDITONE_PRESET" --inverted "$tmp/inv" \
    --out-dir "$tmp/out" --format "$format" >&2
rc=$?
[ "$rc" -eq 0 ] || die 1 "'$editone apply' failed (exit $rc) with preset '$EDITONE_PRESET'"

result=$tmp/out/photo.$format
[ -s "$result" ] || die 1 "'$editone apply' wrote no image ($result is missing)"

if ! cp -- "$result" "$OUTPUT"; then
    rm -f -- "$OUTPUT"
    die 1 "cannot write OUTPUT '$OUTPUT'"
fi
exit 0
