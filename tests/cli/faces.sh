# Faces in photos (issue 21): sourced by tests/cli/run.sh, whose helpers
# (expect, spawn, settle, check, pass, fail) and files ($TMP/sefa.json,
# $TMP/photos/seed0007.png) it uses.
#
#   - editone faces: JSON on synthetic group photos whose faces' centres are
#     known, on the astronaut, a flat picture (no face: exit 4), --preview;
#   - invert --faces / --face K, then apply --inverted: one photo per
#     source, every face changed, every pixel outside the faces' crops the
#     photo's bit for bit, an identity edit giving the photo back;
#   - --align and convert --align; bad input: a 10 px picture, a huge one,
#     a missing and a corrupt detector, bad options, broken or mixed records.
#
# Group photos are made at test time by the library's example
# synthetic_group (run.sh's group helper, cargo); the pixel checks use the
# project's venv (numpy, Pillow). Either missing is a failure, not a skip.

faces_start=$SECONDS
FX=$TMP/faces
mkdir -p "$FX"
FPY=$REPO/.venv/bin/python

cat >"$TMP/facecheck.py" <<'PY'
"""Checks of editone's faces outputs (numpy and Pillow from the venv)."""
import json, os, sys
import numpy as np
from PIL import Image

def pixels(path):
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)

def lines(path):
    return [json.loads(l) for l in open(path) if l.strip()]

def detected(out, count, centres):
    """faces' JSON: COUNT faces, indexed in order, largest box first, each
    box around its landmarks; each known centre in exactly one box."""
    [photo] = lines(out)
    faces = photo["faces"]
    assert len(faces) == int(count), f"{len(faces)} faces, expected {count}"
    areas = []
    for i, f in enumerate(faces):
        assert f["index"] == i, f
        l, t, r, b = f["box"]
        assert r > l and b > t and 0 < f["score"] <= 1, f
        for x, y in f["landmarks"]:
            assert l <= x <= r and t <= y <= b, f"face {i}: landmark {x},{y} outside {f['box']}"
        areas.append((r - l) * (b - t))
    assert areas == sorted(areas, reverse=True), f"not largest first: {areas}"
    for c in lines(centres):
        x, y = c["centre"]
        inside = [i for i, f in enumerate(faces) if f["box"][0] <= x <= f["box"][2] and f["box"][1] <= y <= f["box"][3]]
        assert len(inside) == 1, f"centre {x},{y} is in boxes {inside}"
    print(f"{len(faces)} faces, largest first, each around a known centre")

def no_faces(out, photos):
    got = [(p["photo"].rsplit("/", 1)[-1], len(p["faces"])) for p in lines(out)]
    want = [(name, int(n)) for name, n in (a.split(":") for a in photos.split(","))]
    assert got == want, f"{got}, expected {want}"

def crops(record, resolution):
    """A mask of the photo's pixels inside any face's crop (1 px margin)."""
    r = json.load(open(record))
    h, w = r["height"], r["width"]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    inside = np.zeros((h, w), bool)
    each = []
    for f in r["faces"]:
        t = f["transform"]
        cx, cy = t[0] * x + t[1] * y + t[2], t[3] * x + t[4] * y + t[5]
        m = (cx >= -1) & (cy >= -1) & (cx <= resolution) & (cy <= resolution)
        each.append(m)
        inside |= m
    return inside, each

def edited(source, out, record, resolution):
    """OUT is SOURCE with every face of RECORD changed and nothing else."""
    a, b = pixels(source), pixels(out)
    assert a.shape == b.shape, f"{out} is {b.shape}, {source} {a.shape}"
    inside, each = crops(record, int(resolution))
    changed = (a != b).any(axis=2)
    assert not changed[~inside].any(), f"{changed[~inside].sum()} pixels outside the faces changed"
    for k, m in enumerate(each):
        assert changed[m].sum() > 0.2 * m.sum(), f"face {k}: {changed[m].sum()} of {m.sum()} pixels changed"
    print(f"{len(each)} faces changed ({changed.sum()} pixels); the {(~inside).sum()} outside them are the photo's")

def edited_all(folder, out, resolution):
    """edited() for every face set NAME.faces.f32 of FOLDER, whose edited photos are in OUT."""
    for name in sorted(os.listdir(folder)):
        if name.endswith(".faces.f32") and not name.startswith("."):
            stem = os.path.join(folder, name[: -len(".faces.f32")])
            edited(stem + "-photo.png", os.path.join(out, os.path.basename(stem) + ".png"), stem + ".json", resolution)

def same(a, b):
    x, y = pixels(a), pixels(b)
    assert x.shape == y.shape and (x == y).all(), f"{a} and {b} differ in {(x != y).any(axis=2).sum()} pixels"

def record(path, count, resolution, floats, align):
    """NAME.json: COUNT faces with every field; NAME.faces.f32 their latents."""
    r = json.load(open(path))
    assert r["align"] == align, r["align"]
    assert len(r["faces"]) == int(count), len(r["faces"])
    for f in r["faces"]:
        assert len(f["box"]) == 4 and len(f["landmarks"]) == 5 and len(f["transform"]) == 6, f
        assert len(f["crop"]) == 4 and f["psnr"] > 5, f
        if align == "none":
            assert f["transform"][1] == 0 and f["transform"][3] == 0, f"upright: {f['transform']}"
    latents = path[: -len(".json")] + ".faces.f32"
    size = os.path.getsize(latents)
    assert size == int(count) * int(floats) * 4, f"{latents}: {size} bytes"

def indices(path, want):
    got = [f["index"] for f in json.load(open(path))["faces"]]
    assert got == [int(k) for k in want.split(",")], got

def alphas(path, want):
    """--alphas of face sets: one entry per face, {photo, face, alpha}."""
    items = json.load(open(path))
    assert all(isinstance(a["alpha"], float) for a in items), items
    got = [(a["photo"], a["face"]) for a in items if "face" in a]
    expected = [(p, int(k)) for p, k in (x.split(":") for x in want.split(","))]
    assert got == expected, f"{got}, expected {expected}"

def cut(source, faces_json, out):
    """SOURCE cut through its largest face, 15% of the way into its box (the
    detector still finds the face's rest; at some other cuts it does not)."""
    [photo] = lines(faces_json)
    l, t, r, b = photo["faces"][0]["box"]
    x = int(l + 0.15 * (r - l))
    Image.open(source).crop((x, 0, photo["width"], photo["height"])).save(out)

def flat(out, w, h):
    Image.new("RGB", (int(w), int(h)), (118, 128, 140)).save(out)

def flip(src, out):
    data = bytearray(open(src, "rb").read())
    data[len(data) // 2] ^= 1
    open(out, "wb").write(data)

def huge(out, w, h):
    """A 1-bit PNG that claims WxH pixels in a few kilobytes."""
    import struct, zlib
    w, h = int(w), int(h)
    raw = zlib.compress(b"".join(b"\0" + bytes((w + 7) // 8) for _ in range(h)), 9)
    chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    open(out, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))

globals()[sys.argv[1]](*sys.argv[2:])
PY
fpy() { "$FPY" "$TMP/facecheck.py" "$@"; }

if [ ! -x "$FPY" ]; then
    fail "faces: $FPY is missing (make setup makes it)" "" /nonexistent
elif ! group "$FX/group.png" 1 5 640x480 || ! group "$FX/pair.png" 3 2 400x300; then
    fail "faces: making synthetic group photos with 'cargo run --example synthetic_group'" "$(tail -3 "$FX/group.png.log")" /nonexistent
else
    GROUP=$FX/group.png
    PAIR=$FX/pair.png
    ASTRONAUT=$REPO/.cache/test-data/astronaut.png
    DETECTOR=$REPO/.cache/models/mtcnn.safetensors
    RES=$("$EDITONE" info --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["resolution"])') || RES=0
    FLOATS=$("$EDITONE" info --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["num_ws"] * d["w_dim"])') || FLOATS=0
    check "faces: a flat test picture" fpy flat "$FX/flat.png" 200 150
    check "faces: a 10 px picture" fpy flat "$FX/ten.png" 10 10
    check "faces: a PNG that claims 16000x16000 pixels" fpy huge "$FX/huge.png" 16000 16000
    check "faces: a copy of the detector with one bit flipped" fpy flip "$DETECTOR" "$FX/flipped-detector.safetensors"

    # --- editone faces ----------------------------------------------------------
    spawn "faces --help documents the no-face outcome" 0 -- faces --help
    spawn "faces: a 10 px picture is refused, saying why" 1 "too small to hold a face" -- faces "$FX/ten.png"
    spawn "faces: a huge picture is refused before decoding" 1 "megapixels" -- faces "$FX/huge.png"
    spawn "faces: a missing detector file" 1 "EO_ERR_IO" -- faces "$GROUP" --detector "$FX/no-detector.safetensors"
    spawn "faces: a corrupt detector file (one flipped bit)" 1 "is corrupt" -- faces "$GROUP" --detector "$FX/flipped-detector.safetensors"
    spawn "faces: --threshold above 1" 2 "--threshold" -- faces "$GROUP" --threshold 1.5
    spawn "faces: --min-face under 12" 2 "--min-face" -- faces "$GROUP" --min-face 8
    spawn "faces: a missing photo" 1 "$FX/missing.png" -- faces "$FX/missing.png"
    settle
    check "faces --help: exit 4 when a photo has no face" grep -q "status is then 4" "$TMP/job0/stdout"
    check "a corrupt detector: EO_ERR_FORMAT" grep -q "EO_ERR_FORMAT" "$TMP/job4/stderr"

    expect "faces on a group photo" 0 -- faces "$GROUP"
    cp "$TMP/last/stdout" "$FX/group-faces.json"
    check "five faces, largest first, each box around its landmarks and a known centre" \
        fpy detected "$FX/group-faces.json" 5 "$GROUP.centres"
    expect "faces on the astronaut" 0 -- faces "$ASTRONAUT"
    check "one face in the astronaut" fpy no_faces "$TMP/last/stdout" astronaut.png:1
    expect "faces: a flat picture has no face (exit 4)" 4 "'$FX/flat.png': no face found" -- faces "$FX/flat.png"
    check "... and is listed with an empty list" fpy no_faces "$TMP/last/stdout" flat.png:0
    expect "faces: no face in one photo of three: the others are listed, exit 4" 4 "1 of 3 photos had no face" -- \
        faces "$PAIR" "$FX/flat.png" "$GROUP"
    check "... all three listed, in order" fpy no_faces "$TMP/last/stdout" pair.png:2,flat.png:0,group.png:5
    expect "faces --min-face 200: no face that large (exit 4)" 4 "no face found" -- faces "$GROUP" --min-face 200

    expect "faces --preview DIR" 4 -- faces "$GROUP" "$FX/flat.png" --preview "$FX/preview"
    check "the preview is a new picture of the photo's size, with the faces drawn" "$FPY" -c "
import sys; from PIL import Image; import numpy as np
a, b = Image.open(sys.argv[1]).convert('RGB'), Image.open(sys.argv[2]).convert('RGB')
assert a.size == b.size, (a.size, b.size)
assert (np.asarray(a) != np.asarray(b)).any(axis=2).sum() > 1000
" "$GROUP" "$FX/preview/group-faces.png"
    check "a photo without a face gets its preview too" test -s "$FX/preview/flat-faces.png"
    before=$(fingerprint "$FX/preview")
    expect "faces --preview refuses to write over an existing preview" 1 "exists; give --overwrite" -- \
        faces "$GROUP" --preview "$FX/preview"
    check "... and changed nothing" test "$(fingerprint "$FX/preview")" = "$before"
    expect "faces --preview --overwrite replaces it" 0 -- faces "$GROUP" --preview "$FX/preview" --overwrite
    check "... with a new file (renamed over, not rewritten in place)" test \
        "$(fingerprint "$FX/preview/group-faces.png" | cut -d' ' -f2)" != "$(grep '^group-faces.png ' <<<"$before" | cut -d' ' -f2)"
    cp "$GROUP" "$FX/preview/x.png"
    cp "$PAIR" "$FX/preview/x-faces.png"
    expect "faces --preview never writes over a PHOTO, even with --overwrite" 2 "is one of the inputs" -- \
        faces "$FX/preview/x.png" "$FX/preview/x-faces.png" --preview "$FX/preview" --overwrite
    check "... the photo is untouched" cmp "$PAIR" "$FX/preview/x-faces.png"

    # --- invert --faces, apply --inverted ----------------------------------------
    mkdir -p "$FX/in"
    cp "$GROUP" "$PAIR" "$FX/flat.png" "$FX/in/"
    expect "invert --faces: two groups and a flat picture (exit 4: the flat one)" 4 "'$FX/in/flat.png': no face found" -- \
        invert --faces "$FX/in/group.png" "$FX/in/flat.png" "$FX/in/pair.png" --steps 5 --out "$FX/inv"
    check "... which is named in the summary" grep -q "1 of 3 photos had no face" "$TMP/last/stderr"
    check "... photo, reconstruction, record and latents for each group" test -s "$FX/inv/group-photo.png" -a \
        -s "$FX/inv/group-reconstruction.png" -a -s "$FX/inv/group.json" -a -s "$FX/inv/group.faces.f32" -a \
        -s "$FX/inv/pair.faces.f32"
    check "... and nothing for the flat picture" test -z "$(find "$FX/inv" -name 'flat*')"
    check "the record: 5 faces with box, landmarks, transform, crop, PSNR; 5 latents" \
        fpy record "$FX/inv/group.json" 5 "$RES" "$FLOATS" template
    check "the photo's copy is the photo" fpy same "$GROUP" "$FX/inv/group-photo.png"
    check "the reconstruction changes the faces only" fpy edited "$GROUP" "$FX/inv/group-reconstruction.png" "$FX/inv/group.json" "$RES"

    expect "apply --inverted: one photo per source, every face edited" 0 -- apply --preset "$TMP/sefa.json" \
        --inverted "$FX/inv" --out-dir "$FX/edited" --alphas "$FX/alphas.json" --out-latents-f32 "$FX/edited.f32"
    check "two photos written, no more" test "$(ls "$FX/edited")" = "$(printf 'group.png\npair.png')"
    check "group: every face changed, every pixel outside the faces the photo's" \
        fpy edited "$GROUP" "$FX/edited/group.png" "$FX/inv/group.json" "$RES"
    check "pair: the same" fpy edited "$PAIR" "$FX/edited/pair.png" "$FX/inv/pair.json" "$RES"
    check "one alpha per face" fpy alphas "$FX/alphas.json" group:0,group:1,group:2,group:3,group:4,pair:0,pair:1
    check "one edited latent per face" test "$(stat -c %s "$FX/edited.f32")" -eq $((7 * FLOATS * 4))
    expect "apply --baseline naive --strength 0: an identity edit" 0 -- apply --preset "$TMP/sefa.json" \
        --inverted "$FX/inv" --out-dir "$FX/same" --baseline naive --strength 0
    check "gives each photo back bit for bit" fpy same "$GROUP" "$FX/same/group.png"
    check "... (pair)" fpy same "$PAIR" "$FX/same/pair.png"
    expect "apply --format jpg to face sets" 0 -- apply --preset "$TMP/sefa.json" --inverted "$FX/inv" --out-dir "$FX/jpg" --format jpg
    check "... writes JPEGs of the photos' size" "$FPY" -c "
import sys; from PIL import Image
assert Image.open(sys.argv[1]).format == 'JPEG' and Image.open(sys.argv[1]).size == (640, 480)" "$FX/jpg/group.jpg"
    expect "apply --size is refused for face sets" 2 "at their own size" -- apply --preset "$TMP/sefa.json" \
        --inverted "$FX/inv" --out-dir "$FX/sized" --size 100
    check "... before writing anything" test ! -e "$FX/sized"

    # A folder with a photo inverted whole beside the face sets.
    cp -r "$FX/inv" "$FX/mixed"
    expect "invert a photo whole into the same folder" 0 -- invert "$TMP/photos/seed0007.png" --steps 5 --out "$FX/mixed"
    expect "apply to a folder of face sets and a whole photo" 0 -- apply --preset "$TMP/sefa.json" --inverted "$FX/mixed" \
        --out-dir "$FX/mixed-out" --json
    check "three photos, one alpha per face and one for the whole photo" fpy alphas "$TMP/last/stdout" \
        group:0,group:1,group:2,group:3,group:4,pair:0,pair:1
    check "... (the whole photo's alpha)" python3 -c "
import json, sys; a = json.load(open(sys.argv[1])); assert len(a) == 8 and a[-1]['photo'] == 'seed0007' and 'face' not in a[-1], a[-1]" \
        "$TMP/last/stdout"
    check "... and three photos written" test "$(ls "$FX/mixed-out" | wc -l)" -eq 3

    expect "invert --face 1: only face 1 of the pair" 0 -- invert --face 1 "$PAIR" --steps 5 --out "$FX/one" --json
    check "its record holds face 1 alone" fpy indices "$FX/one/pair.json" 1
    check "invert --json prints that record on one line" python3 -c "
import json, sys; r = json.loads(open(sys.argv[1]).read()); assert [f['index'] for f in r['faces']] == [1]" "$TMP/last/stdout"
    expect "apply edits that face alone" 0 -- apply --preset "$TMP/sefa.json" --inverted "$FX/one" --out-dir "$FX/one-out"
    check "... and nothing outside it" fpy edited "$PAIR" "$FX/one-out/pair.png" "$FX/one/pair.json" "$RES"
    expect "invert --face 7 of a pair: no such face (exit 4)" 4 "no face 7: 2 faces found" -- \
        invert --face 7 "$PAIR" --steps 5 --out "$FX/seven"
    check "... nothing written" test -z "$(ls -A "$FX/seven" 2>/dev/null)"

    expect "invert --faces --align none" 0 -- invert --faces "$PAIR" --align none --steps 5 --out "$FX/none"
    check "the record says none, with upright transforms" fpy record "$FX/none/pair.json" 2 "$RES" "$FLOATS" none
    expect "invert --faces --threshold 0.9 --min-face 30 --detector FILE" 0 -- invert --faces "$PAIR" --threshold 0.9 \
        --min-face 30 --detector "$DETECTOR" --steps 5 --out "$FX/opts" --json
    check "the record keeps the detector's options" python3 -c "
import json, sys; r = json.load(open(sys.argv[1])); assert abs(r['threshold'] - 0.9) < 1e-6 and r['min_face'] == 30, r" "$FX/opts/pair.json"

    # A face cut by the photo's border.
    check "cut the group through its largest face" fpy cut "$GROUP" "$FX/group-faces.json" "$FX/cut.png"
    expect "invert --faces with a face cut by the border" 0 -- invert --faces "$FX/cut.png" --steps 5 --out "$FX/cut-inv"
    check "... which it found, its crop partly outside the photo" python3 -c "
import json, sys; r = json.load(open(sys.argv[1]))
cut = [f for f in r['faces'] if f['box'][0] < 0 and f['crop'][0] == 0 and f['crop'][2] < f['crop'][3]]
assert cut, [(f['box'], f['crop']) for f in r['faces']]" \
        "$FX/cut-inv/cut.json"
    expect "apply to it" 0 -- apply --preset "$TMP/sefa.json" --inverted "$FX/cut-inv" --out-dir "$FX/cut-out"
    check "every face changed, nothing outside them" fpy edited "$FX/cut.png" "$FX/cut-out/cut.png" "$FX/cut-inv/cut.json" "$RES"
    expect "the astronaut: invert --faces" 0 -- invert --faces "$ASTRONAUT" --steps 5 --out "$FX/astro"
    expect "... apply" 0 -- apply --preset "$TMP/sefa.json" --inverted "$FX/astro" --out-dir "$FX/astro-out"
    check "... her face changed, nothing else" fpy edited "$ASTRONAUT" "$FX/astro-out/astronaut.png" "$FX/astro/astronaut.json" "$RES"

    # --- alignment in models: convert --align, info --------------------------------
    MODEL_FILE=$REPO/.cache/models/digiface-dcgan.safetensors
    expect "info: the default model aligns faces to its template" 0 -- info --json
    check "... says info --json" grep -q '"align": "template"' "$TMP/last/stdout"
    expect "convert --align ffhq" 0 -- convert --align ffhq "$MODEL_FILE" "$FX/ffhq.safetensors"
    expect "info on the converted model" 0 -- info --model "$FX/ffhq.safetensors"
    check "... says ffhq" grep -q "^align: *ffhq" "$TMP/last/stdout"
    expect "invert --faces with it aligns the FFHQ way by default" 0 -- invert --faces "$PAIR" --model "$FX/ffhq.safetensors" \
        --steps 5 --out "$FX/ffhq-inv"
    check "... as its record says" fpy record "$FX/ffhq-inv/pair.json" 2 "$RES" "$FLOATS" ffhq
    expect "convert without --align keeps the source's" 0 -- convert "$FX/ffhq.safetensors" "$FX/ffhq2.safetensors"
    check "... (ffhq)" grep -q "faces aligned: ffhq" "$TMP/last/stdout"

    # --- bad options and bad records ----------------------------------------------
    spawn "convert --align bogus" 2 "--align: 'bogus' is not template, ffhq or none" -- \
        convert --align bogus "$MODEL_FILE" "$FX/bogus.safetensors"
    spawn "invert --faces --align bogus" 2 "--align: 'bogus'" -- invert --faces "$PAIR" --align bogus --out "$FX/bogus"
    spawn "invert --align without --faces" 2 "apply to --faces" -- invert "$PAIR" --align ffhq --out "$FX/bogus"
    spawn "invert --faces with a missing detector" 1 "EO_ERR_IO" -- \
        invert --faces "$PAIR" --detector "$FX/no-detector.safetensors" --out "$FX/bogus"
    spawn "invert --faces with a corrupt detector" 1 "EO_ERR_FORMAT" -- \
        invert --faces "$PAIR" --detector "$FX/flipped-detector.safetensors" --out "$FX/bogus"
    spawn "invert --faces of a 10 px picture" 1 "too small to hold a face" -- invert --faces "$FX/ten.png" --out "$FX/bogus"
    spawn "invert --face -1" 2 "--face" -- invert --face -1 "$PAIR" --out "$FX/bogus"
    cp "$PAIR" "$FX/p.faces.png"
    spawn "invert: a photo named NAME.faces.* is refused without --faces" 2 "rename it" -- invert "$FX/p.faces.png" --out "$FX/bogus"
    settle
    check "none of them wrote anything" test -z "$(ls -A "$FX/bogus" 2>/dev/null)" -a ! -e "$FX/bogus.safetensors"

    cp -r "$FX/inv" "$FX/both"
    cp "$FX/mixed/seed0007.f32" "$FX/both/pair.f32"
    expect "apply: one NAME inverted whole and by faces is refused" 2 "holds both pair.f32" -- \
        apply --preset "$TMP/sefa.json" --inverted "$FX/both" --out-dir "$FX/both-out"
    cp -r "$FX/inv" "$FX/broken"
    echo '{"photo": "x.png", "width": 3' >"$FX/broken/pair.json"
    expect "apply: a truncated record" 1 "pair.json': not valid JSON" -- \
        apply --preset "$TMP/sefa.json" --inverted "$FX/broken" --out-dir "$FX/broken-out"
    python3 -c "
import json, sys; r = json.load(open(sys.argv[1])); r['faces'][1]['transform'] = [1, 0, 0]
json.dump(r, open(sys.argv[2], 'w'))" "$FX/inv/pair.json" "$FX/broken/pair.json"
    expect "apply: a record with a bad transform" 1 "faces[1].transform: expected 6 numbers" -- \
        apply --preset "$TMP/sefa.json" --inverted "$FX/broken" --out-dir "$FX/broken-out"
    cp "$FX/inv/pair.json" "$FX/broken/pair.json"
    cp "$FX/none/pair.faces.f32" "$FX/broken/pair.faces.f32"
    expect "apply: latents of another run beside the record" 1 "does not belong with" -- \
        apply --preset "$TMP/sefa.json" --inverted "$FX/broken" --out-dir "$FX/broken-out"
    cp "$FX/inv/pair.faces.f32" "$FX/broken/"
    cp "$FX/inv/group-photo.png" "$FX/broken/pair-photo.png"
    expect "apply: another photo beside the record" 1 "mixes two runs" -- \
        apply --preset "$TMP/sefa.json" --inverted "$FX/broken" --out-dir "$FX/broken-out"
    check "no bad record let apply write anything" test ! -e "$FX/broken-out" -a ! -e "$FX/both-out"
fi
echo "     (the faces tests took $((SECONDS - faces_start)) s)"
