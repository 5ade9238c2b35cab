#!/usr/bin/env bash
# editone apply as Slurm array jobs, against a real Slurm (issue 24).
#
# Usage, from the repository root, as root:  tests/slurm/run.sh PATH_TO_EDITONE
#
# 1. Bad --shard input and array environments are refused with clear
#    errors, and a folder of another preset is refused (no daemons needed).
# 2. Starts Debian's munged, slurmctld and slurmd on this machine, with a
#    slurm.conf written to a temporary folder and free ports; every daemon
#    it started is stopped on exit, failure included (trap).
# 3. sbatch --array=0-3 applies a preset to 400 seeds: the union of the
#    shards' images equals a single process's, byte for byte, and
#    'editone merge' joins the manifests into that process's --alphas file.
# 4. A task killed midway (scancel --signal=KILL) leaves no corrupt image;
#    merge reports its targets missing; the task resubmitted alone
#    (sbatch --array=1, with --shards 4 --resume) renders only the rest and
#    the run ends complete.
#
# Needs root, slurmctld, slurmd, slurm-client and munge (Debian packages;
# .ci/run installs them) and python3. Anything missing is a failure, not a
# skip. Every wait is bounded. Ends with "N passed, M failed".
set -euo pipefail

# shellcheck source=tests/editone-argument.sh
. "$(dirname "$0")/../editone-argument.sh"
take_editone_argument "$0" "$@"
PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1${2:+: $2}"; }
finish() { echo "$PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; }

if [ ! -x "$EDITONE" ]; then
    echo "FAIL '$EDITONE' is not an executable"
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "FAIL the Slurm test starts slurmctld, slurmd and munged as root; run it as root"
    exit 1
fi
for tool in munged slurmctld slurmd sbatch scancel squeue sinfo python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL '$tool' is missing: install the Debian packages slurmctld slurmd slurm-client munge"
        exit 1
    fi
done

T=$(mktemp -d /tmp/editone-slurm.XXXXXX)
chmod 0755 "$T"

# shellcheck source=tests/slurm/cluster.sh
source "$(dirname "$0")/cluster.sh"
trap 'slurm_stop; rm -rf "$T"' EXIT

# expect NAME WANT_RC TEXT [VAR=VALUE...] -- ARGS...: editone ARGS, with
# only the array variables given, exits WANT_RC and says TEXT on stderr.
expect() {
    local name=$1 want=$2 text=$3 rc=0
    shift 3
    local env=()
    while [ "$1" != "--" ]; do env+=("$1"); shift; done
    shift
    env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_COUNT -u SLURM_ARRAY_TASK_MIN -u SLURM_ARRAY_TASK_MAX \
        -u JOB_COMPLETION_INDEX "${env[@]}" "$EDITONE" "$@" >"$T/out" 2>"$T/err" || rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "$name" "exit $rc, expected $want"; sed -e 's/^/     | /' "$T/err" | head -5
    elif ! grep -qF -- "$text" "$T/err"; then
        fail "$name" "stderr does not say '$text'"; sed -e 's/^/     | /' "$T/err" | head -5
    else
        pass "$name"
    fi
}

# check NAME CMD...: a command that must succeed.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name"; head -20 <<<"$out" | sed -e 's/^/     | /'; fi
}

# same_images A B [FIRST LAST]: the PNGs of A and B (only seedNNNN.png with
# NNNN in FIRST..LAST when given) are the same files, byte for byte.
cat >"$T/same_images.py" <<'PY'
import os, sys
a, b = sys.argv[1], sys.argv[2]
def images(d):
    names = {n for n in os.listdir(d) if n.endswith(".png") and not n.startswith(".")}
    if len(sys.argv) > 3:
        lo, hi = int(sys.argv[3]), int(sys.argv[4])
        names = {n for n in names if lo <= int(n[4:-4]) <= hi}
    return names
na, nb = images(a), images(b)
if na != nb:
    sys.exit(f"{len(na)} images in {a}, {len(nb)} in {b}; e.g. only in one: {sorted(na ^ nb)[:3]}")
for n in sorted(na):
    if open(os.path.join(a, n), "rb").read() != open(os.path.join(b, n), "rb").read():
        sys.exit(f"{n} differs")
print(f"{len(na)} images equal")
PY
same_images() { python3 "$T/same_images.py" "$@"; }

# pngs_whole DIR: every visible PNG decodes (CRCs, inflated size); the
# temporary files of a killed writer are hidden and are no images yet.
cat >"$T/pngs_whole.py" <<'PY'
import os, struct, sys, zlib
count = 0
for name in sorted(os.listdir(sys.argv[1])):
    if not name.endswith(".png") or name.startswith("."):
        continue
    data = open(os.path.join(sys.argv[1], name), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", name
    at, idat, ihdr, end = 8, b"", None, False
    while at + 12 <= len(data):
        (n,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + n]
        (crc,) = struct.unpack(">I", data[at + 8 + n:at + 12 + n])
        assert len(body) == n and zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"{name}: bad chunk {kind}"
        if kind == b"IHDR": ihdr = struct.unpack(">II", body[:8])
        if kind == b"IDAT": idat += body
        if kind == b"IEND": end = at + 12 + n == len(data)
        at += 12 + n
    assert ihdr and end, f"{name}: cut short"
    w, h = ihdr
    assert len(zlib.decompress(idat)) == (1 + 3 * w) * h, f"{name}: wrong pixel data size"
    count += 1
print(f"{count} PNGs whole")
PY
pngs_whole() { python3 "$T/pngs_whole.py" "$@"; }

# --- 1. bad input (no daemons) ----------------------------------------------

check "make a preset (fast, along direction 0)" \
    "$EDITONE" edit --seed 1 --direction 0 --strength 4 --fast --iterations 20 --out "$T/p.json"
P=$T/p.json
A=(apply --preset "$P" --seeds 1-40)
expect "--shard 4/4 is refused" 2 "K counts from 0 and must be below N (0 .. 3)" -- "${A[@]}" --shard 4/4 --out-dir "$T/x"
expect "--shard 0/0 is refused" 2 "N, the number of shards, must be 1" -- "${A[@]}" --shard 0/0 --out-dir "$T/x"
expect "--shard 7/4 (K past N) is refused" 2 "must be below N" -- "${A[@]}" --shard 7/4 --out-dir "$T/x"
expect "--shard without a slash is refused" 2 "expected K/N" -- "${A[@]}" --shard 3 --out-dir "$T/x"
expect "--shard and --shards disagreeing" 2 "--shard 1/4 and --shards 3 disagree" -- \
    "${A[@]}" --shard 1/4 --shards 3 --out-dir "$T/x"
expect "--shard and SLURM_ARRAY_TASK_ID disagreeing" 2 "--shard 1/4, but SLURM_ARRAY_TASK_ID=2" \
    SLURM_ARRAY_TASK_ID=2 -- "${A[@]}" --shard 1/4 --out-dir "$T/x"
expect "SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX disagreeing" 2 "disagree" \
    SLURM_ARRAY_TASK_ID=2 JOB_COMPLETION_INDEX=1 -- "${A[@]}" --shards 4 --out-dir "$T/x"
expect "a task index past --shards" 2 "SLURM_ARRAY_TASK_ID=5 is past the last of 4 shards" \
    SLURM_ARRAY_TASK_ID=5 -- "${A[@]}" --shards 4 --out-dir "$T/x"
expect "an array larger than the shard count" 2 "go up to 7 (SLURM_ARRAY_TASK_MAX), but there are 4 shards" \
    SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_MAX=7 -- "${A[@]}" --shards 4 --out-dir "$T/x"
expect "a task resubmitted alone takes no count from the environment" 2 "state the count with --shards N" \
    SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_COUNT=1 SLURM_ARRAY_TASK_MIN=2 SLURM_ARRAY_TASK_MAX=2 -- \
    "${A[@]}" --out-dir "$T/x"
expect "Kubernetes' index needs --shards" 2 "give the number of shards with --shards N" \
    JOB_COMPLETION_INDEX=1 -- "${A[@]}" --out-dir "$T/x"
expect "--shards without an index" 2 "--shards 4 needs --shard K/4 or an array task's index" -- \
    "${A[@]}" --shards 4 --out-dir "$T/x"
expect "a sharded run needs --out-dir" 2 "a sharded run writes its images and its manifest to --out-dir" -- \
    "${A[@]}" --shard 0/2 --json
expect "a bad SLURM_ARRAY_TASK_ID" 2 "SLURM_ARRAY_TASK_ID='x' is not a whole number" \
    SLURM_ARRAY_TASK_ID=x -- "${A[@]}" --shards 4 --out-dir "$T/x"
check "nothing was written by the refused runs" test ! -e "$T/x"
expect "shard 2 of 4 from the array's environment, with a notice" 0 \
    "shard 2 of 4 from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT" \
    SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_COUNT=4 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=3 -- \
    "${A[@]}" --out-dir "$T/env"
check "it wrote seeds 21-30 and its manifest" test "$(ls "$T/env" | tr '\n' ' ')" = \
    "editone-run.json editone-shard-2-of-4.json seed0021.png seed0022.png seed0023.png seed0024.png seed0025.png seed0026.png seed0027.png seed0028.png seed0029.png seed0030.png "
expect "a folder of another strength is refused" 1 "holds the images of another preset or of other options" -- \
    "${A[@]}" --shard 1/4 --strength 2 --out-dir "$T/env"
expect "even with --resume" 1 "holds the images of another preset" -- \
    "${A[@]}" --shard 2/4 --strength 2 --resume --out-dir "$T/env"
expect "without --resume a shard's existing images are refused" 1 "exist; give --overwrite" -- \
    "${A[@]}" --shard 2/4 --out-dir "$T/env"
"$EDITONE" "${A[@]}" --out-dir "$T/plain" 2>/dev/null
expect "--resume refuses images that no run record vouches for" 1 "no editone-run.json" -- \
    "${A[@]}" --resume --out-dir "$T/plain"

# --- 2. a Slurm on this machine ------------------------------------------------

if ! slurm_start "$T/slurm"; then
    fail "slurmctld and slurmd came up with an idle node within 30 s"
    tail -5 "$T"/slurm/log/* 2>/dev/null | sed -e 's/^/     | /'
    finish
    exit 1
fi
mkdir -p "$T/jobs"
pass "munged, slurmctld and slurmd are up, on free ports"

# The job script: its first argument is the output folder, the rest apply's.
cat >"$T/job.sh" <<EOF
#!/bin/bash
out=\$1
shift
exec "$EDITONE" --threads 1 apply --preset "$P" --out-dir "\$out" "\$@"
EOF
chmod +x "$T/job.sh"

# submit ARGS...: prints sbatch's job id; the tasks' logs go to $T/jobs.
submit() {
    timeout 300 sbatch --parsable --cpus-per-task=1 --output="$T/jobs/%A_%a.log" "$@"
}

# --- 3. sbatch --array=0-3 over 400 seeds -----------------------------------------

check "a single process: 400 seeds" "$EDITONE" apply --preset "$P" --seeds 1-400 --out-dir "$T/single" \
    --alphas "$T/single-alphas.json"
start=$SECONDS
if job=$(submit --array=0-3 --wait "$T/job.sh" "$T/array" --seeds 1-400); then
    pass "sbatch --array=0-3 --wait: every task succeeded ($((SECONDS - start)) s)"
else
    fail "sbatch --array=0-3 --wait" "a task failed"
    tail -3 "$T"/jobs/*.log | sed -e 's/^/     | /'
fi
check "each task took N from SLURM_ARRAY_TASK_COUNT, with a notice" \
    test "$(grep -l "from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT" "$T"/jobs/"${job:-x}"_*.log | wc -l)" -eq 4
check "the union of the shards equals the single process, byte for byte" same_images "$T/single" "$T/array"
check "merge joins 4 manifests, nothing missing or duplicated" \
    "$EDITONE" merge "$T/array" --alphas "$T/merged-alphas.json"
check "the merged alphas are the single process's --alphas, byte for byte" \
    cmp "$T/single-alphas.json" "$T/merged-alphas.json"
check "one manifest per shard, each on its own slice" python3 -c "
import json
for k in range(4):
    m = json.load(open(f'$T/array/editone-shard-{k}-of-4.json'))
    assert (m['first'], m['count'], len(m['alphas'])) == (100 * k, 100, 100), m['first']
    assert [a['seed'] for a in m['alphas']] == list(range(100 * k + 1, 100 * k + 101))
"

# --- 4. a task killed midway, resubmitted with --resume ---------------------------

# 800 seeds at 512 px: a shard of 200 takes seconds, long enough to kill.
R=(--seeds 1-800 --size 512 --shards 4 --resume)
job=$(submit --array=0-3 "$T/job.sh" "$T/resume" "${R[@]}" || :)
for i in $(seq 1200); do # task 1's first chunk written (up to 120 s)
    [ -e "$T/resume/seed0201.png" ] && break
    sleep 0.1
done
timeout 10 scancel --full --signal=KILL "${job}_1" || :
for i in $(seq 600); do # the killed task ends, the others finish (up to 120 s)
    [ -z "$(timeout 5 squeue -h -j "$job" 2>/dev/null)" ] && break
    sleep 0.2
done
kept=$(ls "$T/resume" | grep -cE '^seed0(20[1-9]|2[1-9][0-9]|3[0-9][0-9]|400)\.png$' || :)
if [ -e "$T/resume/editone-shard-1-of-4.json" ] || [ "$kept" -eq 0 ]; then
    fail "task 1 was killed midway" "it had written $kept of its 200 images, and $(ls "$T/resume" | grep -c shard-1 || :) manifest"
else
    pass "task 1 killed with $kept of its 200 images written"
fi
check "no corrupt image after the kill" pngs_whole "$T/resume"
rc=0
merge_out=$("$EDITONE" merge "$T/resume" 2>&1) || rc=$?
if [ "$rc" -eq 1 ] && grep -qF "missing: targets 200 .. 399 of 800 (shard 1 of 4)" <<<"$merge_out"; then
    pass "merge reports shard 1's targets missing (exit 1)"
else
    fail "merge reports shard 1's targets missing (exit 1)" "exit $rc"
    sed -e 's/^/     | /' <<<"$merge_out"
fi
ls -i "$T/resume" | grep ' seed' >"$T/inodes-before" || :
if job2=$(submit --array=1 --wait "$T/job.sh" "$T/resume" "${R[@]}"); then
    pass "task 1 resubmitted alone (sbatch --array=1) with --shards 4 --resume"
else
    fail "task 1 resubmitted alone" "it failed"
    tail -3 "$T"/jobs/*.log | sed -e 's/^/     | /'
fi
check "it kept the images it found and rendered only the rest" \
    grep -qE "wrote [0-9]+ images? to .*; $kept were there already" "$T/jobs/${job2:-x}_1.log"
ls -i "$T/resume" | grep ' seed' >"$T/inodes-after" || :
check "the kept images are the very files the killed task wrote (none rendered twice)" python3 -c "
before = dict(l.split()[::-1] for l in open('$T/inodes-before'))
after = dict(l.split()[::-1] for l in open('$T/inodes-after'))
changed = [n for n in before if after.get(n) != before[n]]
assert not changed, f'rewritten: {changed[:3]}'
print(f'{len(before)} files kept')
"
check "the run is complete: merge finds every target once" "$EDITONE" merge "$T/resume"
check "every image is whole" pngs_whole "$T/resume"
check "a single process: shard 1's seeds 201-400 at 512 px" \
    "$EDITONE" apply --preset "$P" --seeds 201-400 --size 512 --out-dir "$T/single512"
check "the resumed shard equals the single process, byte for byte" \
    same_images "$T/single512" "$T/resume" 201 400

finish
