# Pivotal tuning in the CLI (issue 22): sourced by tests/cli/run.sh after
# faces.sh, whose helpers (expect, spawn, settle, check, fingerprint, group,
# fpy, pass, fail) and files ($TMP/sefa.json, $TMP/photos/seed0007.png) it
# uses.
#
#   - invert --faces --tune writes tuned.safetensors and tuned.manifest
#     beside the face set; its reconstruction is closer to the photo than
#     without --tune; apply --inverted renders through the tuned model (an
#     identity edit gives the photo back bit for bit, residual);
#   - --overwrite: refused without it, every file replaced with it;
#     SIGTERM and kill -9 during the tuning leave nothing new behind; kill
#     -9 while the files are written leaves whole files that apply either
#     renders consistently or refuses;
#   - apply refuses a tuned model that does not belong to the folder's
#     records: a stopped run, a stale model, records added or rewritten
#     later, a whole photo, a model tuned from another base model.
#
# Two faces, few steps (--steps 30, --tune-steps 10): tuning is the slow part.

tune_start=$SECONDS
TX=$TMP/tune
mkdir -p "$TX"

cat >"$TMP/tunecheck.py" <<'PY'
"""Checks of invert --tune's outputs (numpy and Pillow from the venv)."""
import json, sys
import numpy as np
from PIL import Image

def pixels(path):
    return np.asarray(Image.open(path).convert("RGB")).astype(np.float64)

def face_mask(record, resolution):
    """The photo's pixels inside any face's crop."""
    r = json.load(open(record))
    y, x = np.mgrid[0 : r["height"], 0 : r["width"]].astype(np.float64)
    inside = np.zeros((r["height"], r["width"]), bool)
    for f in r["faces"]:
        t = f["transform"]
        cx, cy = t[0] * x + t[1] * y + t[2], t[3] * x + t[4] * y + t[5]
        inside |= (cx >= 0) & (cy >= 0) & (cx < resolution) & (cy < resolution)
    return inside

def psnr(a, b):
    return 10 * np.log10(255.0**2 / max(np.mean((a - b) ** 2), 1e-12))

def closer(photo, tuned, plain, record, resolution):
    """TUNED (reconstruction) is closer to PHOTO inside the faces than PLAIN, by 2 dB or more."""
    m = face_mask(record, int(resolution))
    p = pixels(photo)[m]
    a, b = psnr(pixels(tuned)[m], p), psnr(pixels(plain)[m], p)
    print(f"faces' PSNR against the photo: {a:.2f} dB tuned, {b:.2f} dB without --tune")
    assert a >= b + 2, f"tuned {a:.2f} dB is not 2 dB above {b:.2f} dB"

def manifest(path, names, steps):
    """tuned.manifest lists NAMES, STEPS steps, and every face's PSNR rose."""
    m = json.load(open(path))
    assert m["format"] == "editone-tuned-faces" and m["tuned_model"] == "tuned.safetensors", m
    assert m["steps"] == int(steps), m["steps"]
    assert [p["name"] for p in m["photos"]] == names.split(","), m["photos"]
    for p in m["photos"]:
        assert len(p["psnr_tuned"]) == len(p["psnr_inverted"]) > 0, p
        for a, b in zip(p["psnr_tuned"], p["psnr_inverted"]):
            assert a > b, f"{p['name']}: {a} dB tuned, {b} dB inverted"

def records_agree(manifest_path, record):
    """NAME.json's checksums and PSNRs are the manifest's."""
    p = json.load(open(manifest_path))["photos"][0]
    r = json.load(open(record))
    assert p["latents_fnv1a64"] == r["latents_fnv1a64"] and p["photo_fnv1a64"] == r["photo_fnv1a64"], (p, r)
    assert [f["psnr"] for f in r["faces"]] == p["psnr_tuned"], (r["faces"], p)
    assert [f["psnr_inverted"] for f in r["faces"]] == p["psnr_inverted"], (r["faces"], p)

def differ(record, a, b, resolution):
    """Two renders of one photo differ inside its faces."""
    m = face_mask(record, int(resolution))
    d = np.abs(pixels(a) - pixels(b)).max(axis=2)[m]
    assert (d > 0).sum() > 0.2 * m.sum(), f"only {(d > 0).sum()} of {m.sum()} face pixels differ"

def forge(manifest_path, model):
    """Gives the manifest MODEL's checksum (fnv1a64 of its bytes), as if the run had written it."""
    h = 0xCBF29CE484222325
    for byte in open(model, "rb").read():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    m = json.load(open(manifest_path))
    m["tuned_fnv1a64"] = f"{h:016x}"
    json.dump(m, open(manifest_path, "w"))

globals()[sys.argv[1]](*sys.argv[2:])
PY
tpy() { "$FPY" "$TMP/tunecheck.py" "$@"; }

# wait_for FILE TEXT: until FILE holds TEXT (at most 300 s).
wait_for() {
    local i
    for ((i = 0; i < 3000; i++)); do
        if grep -q -- "$2" "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# stop_at SIGNAL DIR TEXT DELAY ARGS...: starts 'editone invert ARGS --out
# DIR', sends SIGNAL DELAY seconds after its stderr says TEXT, and leaves
# the exit status in $TX/stopped.rc.
stop_at() {
    local sig=$1 dir=$2 text=$3 delay=$4 pid rc=0
    shift 4
    "$EDITONE" invert "$@" --out "$dir" >"$dir.out" 2>"$dir.err" &
    pid=$!
    if ! wait_for "$dir.err" "$text"; then
        echo "never said '$text'" >>"$dir.err"
    fi
    sleep "$delay"
    kill "-$sig" "$pid" 2>/dev/null || :
    { wait "$pid"; } 2>/dev/null || rc=$?
    echo "$rc" >"$TX/stopped.rc"
}

FAST=(--steps 30 --tune-steps 10)
if ! group "$TX/pair.png" 3 2 400x300; then
    fail "tune: making a synthetic pair with 'cargo run --example synthetic_group'" "$(tail -3 "$TX/pair.png.log")" /nonexistent
elif [ ! -x "$FPY" ]; then
    fail "tune: $FPY is missing (make setup makes it)" "" /nonexistent
else
    PAIR=$TX/pair.png
    RES=$("$EDITONE" info --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["resolution"])') || RES=0

    # --- bad options ------------------------------------------------------------
    spawn "invert --tune without --faces" 2 "apply to --faces" -- invert --tune "$PAIR" --out "$TX/bad"
    spawn "invert --tune-steps without --tune" 2 "goes with --tune" -- invert --faces --tune-steps 5 "$PAIR" --out "$TX/bad"
    spawn "invert --tune --tune-steps 0" 2 "--tune-steps" -- invert --faces --tune --tune-steps 0 "$PAIR" --out "$TX/bad"
    spawn "invert --help documents --tune" 0 -- invert --help
    settle
    check "... none of them wrote anything" test ! -e "$TX/bad"
    check "invert --help names tuned.safetensors" grep -q "tuned.safetensors" "$TMP/job3/stdout"

    # --- tuned and untuned, then apply --------------------------------------------
    expect "invert --faces --tune" 0 -- invert --faces --tune "${FAST[@]}" "$PAIR" --out "$TX/t"
    check "... reports the tuning's progress on stderr" grep -q "^tune 10/10 100%" "$TMP/last/stderr"
    check "... and both PSNRs on stdout" grep -q "tuned (.* dB inverted)" "$TMP/last/stdout"
    check "... writes tuned.safetensors and tuned.manifest beside the face set" \
        test -s "$TX/t/tuned.safetensors" -a -s "$TX/t/tuned.manifest" -a -s "$TX/t/pair.faces.f32"
    check "... no temporary file left" test -z "$(find "$TX/t" -name '.*')"
    check "the manifest lists the photo; every face's PSNR rose" tpy manifest "$TX/t/tuned.manifest" pair 10
    check "the record's checksums and PSNRs are the manifest's" tpy records_agree "$TX/t/tuned.manifest" "$TX/t/pair.json"
    expect "invert --faces without --tune" 0 -- invert --faces --steps 30 "$PAIR" --out "$TX/u"
    check "the same latents with and without --tune" cmp "$TX/t/pair.faces.f32" "$TX/u/pair.faces.f32"
    check "the tuned reconstruction is closer to the photo (faces' PSNR)" \
        tpy closer "$PAIR" "$TX/t/pair-reconstruction.png" "$TX/u/pair-reconstruction.png" "$TX/t/pair.json" "$RES"

    expect "apply an identity edit through the tuned model" 0 -- apply --preset "$TMP/sefa.json" --inverted "$TX/t" \
        --out-dir "$TX/t-same" --baseline naive --strength 0
    check "... gives the photo back bit for bit (residual)" fpy same "$PAIR" "$TX/t-same/pair.png"
    expect "apply an edit through the tuned model" 0 -- apply --preset "$TMP/sefa.json" --inverted "$TX/t" \
        --out-dir "$TX/t-edit" --alphas "$TX/t-alphas.json"
    check "... every face changed, nothing outside them" fpy edited "$PAIR" "$TX/t-edit/pair.png" "$TX/t/pair.json" "$RES"
    expect "the same edit without the tuned model" 0 -- apply --preset "$TMP/sefa.json" --inverted "$TX/u" \
        --out-dir "$TX/u-edit" --alphas "$TX/u-alphas.json"
    check "... renders the faces otherwise" tpy differ "$TX/t/pair.json" "$TX/t-edit/pair.png" "$TX/u-edit/pair.png" "$RES"
    check "... with the same alphas (they depend on the latents only)" cmp "$TX/t-alphas.json" "$TX/u-alphas.json"

    # --- files are sacred ----------------------------------------------------------
    fingerprint "$TX/t" >"$TX/t.before"
    expect "invert --tune into a finished folder without --overwrite" 1 "exist; give --overwrite" -- \
        invert --faces --tune "${FAST[@]}" "$PAIR" --out "$TX/t"
    check "... changed nothing" diff "$TX/t.before" <(fingerprint "$TX/t")
    mkdir -p "$TX/only"
    cp "$TX/t/tuned.safetensors" "$TX/only/"
    expect "invert --tune into a folder holding only a tuned model" 1 "tuned.safetensors' exists" -- \
        invert --faces --tune "${FAST[@]}" "$PAIR" --out "$TX/only"

    mkdir -p "$TX/term"
    # Once the photo is inverted, the generator is being tuned.
    stop_at TERM "$TX/term" "invert .*100%" 1 --faces --tune --steps 5 --tune-steps 5000 "$PAIR"
    check "SIGTERM during the tuning: exit 3" test "$(cat "$TX/stopped.rc")" -eq 3
    check "... nothing written, no temporary file" test -z "$(ls -A "$TX/term")"
    cp -a "$TX/t" "$TX/k9"
    fingerprint "$TX/k9" >"$TX/k9.before"
    stop_at KILL "$TX/k9" "invert .*100%" 1 --faces --tune --overwrite --steps 5 --tune-steps 5000 "$PAIR"
    check "kill -9 during the tuning of an --overwrite run (exit 137)" test "$(cat "$TX/stopped.rc")" -eq 137
    check "... every file as it was, no temporary file" diff "$TX/k9.before" <(fingerprint "$TX/k9")

    # kill -9 while the files are written, at two moments found by watching
    # the folder: once the tuned model's hidden temporary file appears, and
    # once the new tuned.manifest is in place. apply then renders through a
    # tuned model that belongs to the records or refuses the folder (after
    # the new manifest it must refuse, unless the run had ended); every
    # file left is whole.
    for moment in temporary manifest; do
        rm -rf "$TX/k9w" "$TX/k9w-edited" && cp -a "$TX/t" "$TX/k9w"
        old_manifest=$(stat -c %i "$TX/k9w/tuned.manifest")
        old_model=$(stat -c %i "$TX/k9w/tuned.safetensors")
        case $moment in
        temporary) ready() { compgen -G "$TX/k9w/.tuned.safetensors.*" >/dev/null; } ;;
        manifest) ready() { [ "$(stat -c %i "$TX/k9w/tuned.manifest")" != "$old_manifest" ]; } ;;
        esac
        "$EDITONE" invert --faces --tune --overwrite --steps 5 --tune-steps 2 "$PAIR" --out "$TX/k9w" \
            >"$TX/k9w.out" 2>"$TX/k9w.err" &
        pid=$!
        for ((i = 0; i < 30000; i++)); do ready && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
        kill -KILL "$pid" 2>/dev/null || :
        rc=0
        { wait "$pid"; } 2>/dev/null || rc=$?
        start_case "$TMP/last" "kill -9 once the $moment is written: apply works or refuses the folder" 0 -- \
            apply --preset "$TMP/sefa.json" --inverted "$TX/k9w" --out-dir "$TX/k9w-edited"
        applied=$(cat "$TMP/last/rc")
        echo "     (invert exit $rc, apply exit $applied)"
        if [ "$applied" -eq 1 ] && grep -qE "invert (all its photos|that photo) again" "$TMP/last/stderr"; then
            echo 0 >"$TMP/last/rc"
        # The run may have renamed its new model into place (its last write)
        # and been killed while it was still exiting: then apply must work.
        elif [ "$moment" = manifest ] && [ "$rc" -eq 137 ] \
            && [ "$(stat -c %i "$TX/k9w/tuned.safetensors")" = "$old_model" ]; then
            echo "the new manifest beside the old model was not refused" >>"$TMP/last/stderr"
            echo 1 >"$TMP/last/rc"
        fi
        judge_case "$TMP/last"
        check "... every PNG left whole" "$FPY" -c "
import glob, sys; from PIL import Image
for f in glob.glob(sys.argv[1] + '/*.png'): Image.open(f).load()" "$TX/k9w"
    done

    cp -a "$TX/t" "$TX/t2"
    fingerprint "$TX/t2" >"$TX/t2.before"
    expect "invert --tune --overwrite replaces a tuned folder" 0 -- \
        invert --faces --tune --overwrite --steps 30 --tune-steps 4 "$PAIR" --out "$TX/t2"
    check "... every file anew (new inodes), the manifest with 4 steps" python3 -c "
import sys
old = {l.split()[0]: l.split()[1] for l in open(sys.argv[1])}
new = {l.split()[0]: l.split()[1] for l in open(sys.argv[2])}
assert old.keys() == new.keys(), (old.keys(), new.keys())
same = [n for n in old if old[n] == new[n]]
assert not same, f'not replaced: {same}'" "$TX/t2.before" <(fingerprint "$TX/t2")
    check "... (4 steps)" tpy manifest "$TX/t2/tuned.manifest" pair 4
    check "... another tuned model" test "$(cksum <"$TX/t/tuned.safetensors")" != "$(cksum <"$TX/t2/tuned.safetensors")"

    # --- a tuned model that does not belong to the records -------------------------
    # Copies of the tuned folder, each spoilt one way; apply must refuse each.
    spoil() { rm -rf "$TX/$1" && cp -a "$TX/t" "$TX/$1"; }
    spoil stale
    cp "$TX/t2/tuned.safetensors" "$TX/stale/"
    spoil stopped
    rm "$TX/stopped/tuned.safetensors"
    spoil bare
    rm "$TX/bare/tuned.manifest"
    spoil broken
    echo '{"format": "editone-tuned-faces", ' >"$TX/broken/tuned.manifest"
    spoil added
    cp "$PAIR" "$TX/other.png"
    expect "invert --faces a photo more into a tuned folder" 0 -- invert --faces --steps 5 "$TX/other.png" --out "$TX/added"
    spoil rewritten
    expect "invert --faces --overwrite without --tune into a tuned folder" 0 -- \
        invert --faces --overwrite --steps 5 "$PAIR" --out "$TX/rewritten"
    spoil whole
    expect "invert a whole photo into a tuned folder" 0 -- invert --steps 5 "$TMP/photos/seed0007.png" --out "$TX/whole"
    expect "a model of another base: invert --faces --tune on tiny64" 0 -- \
        invert --faces --tune --model "$TINY" --steps 3 --tune-steps 2 "$PAIR" --out "$TX/tiny"
    spoil foreign
    cp "$TX/tiny/tuned.safetensors" "$TX/foreign/"
    check "... put in a folder of the default model, its manifest forged to match" \
        tpy forge "$TX/foreign/tuned.manifest" "$TX/foreign/tuned.safetensors"

    # refused NAME TEXT DIR: apply --inverted DIR exits 1 saying TEXT.
    refused() {
        spawn "apply: $1" 1 "$2" -- apply --preset "$TMP/sefa.json" --inverted "$TX/$3" --out-dir "$TX/$3-out"
    }
    refused "a stale tuned model (another run's)" "is not the model its tuned.manifest lists" stale
    refused "a run stopped before its tuned model was written" "stopped before writing tuned.safetensors" stopped
    refused "a tuned model without its manifest" "has no tuned.manifest" bare
    refused "a truncated manifest" "tuned.manifest" broken
    refused "a record added after the tuning" "'other.json' was not among the photos" added
    refused "a record rewritten after the tuning" "'pair.json' is not the record" rewritten
    refused "a whole photo beside a tuned model" "'seed0007.f32' is a whole photo" whole
    refused "a tuned model of another base model" "was tuned from another model than this one" foreign
    settle
    check "no refused apply wrote anything" test -z "$(ls -d "$TX"/*-out 2>/dev/null)"
fi
echo "     (the tune tests took $((SECONDS - tune_start)) s)"
