#!/usr/bin/env bash
# editone apply as 4 Slurm array tasks against one process (issue 24): a
# report, never asserted. Run as root (it starts munged, slurmctld and
# slurmd on this machine; see tests/slurm/cluster.sh), on an idle machine.
#
# Usage, from the repository root:  benches/slurm.sh PATH_TO_EDITONE [COUNT]
#
# Applies one preset to COUNT seeds (default 10,000) of the default model:
# once in one process (all cores), then as sbatch --array=0-3 (one core per
# task). Prints the wall time of each, each task's time and peak memory
# (GNU time), what merge says (no target missing or duplicated), each
# task's own count of the images it rendered, and whether the two outputs
# are the same files byte for byte.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 PATH_TO_EDITONE [COUNT]" >&2
    exit 2
fi
EDITONE=$1
case $EDITONE in /*) ;; *) EDITONE=$PWD/$EDITONE ;; esac
COUNT=${2:-10000}
if [ "$(id -u)" -ne 0 ]; then
    echo "$0: run as root: it starts slurmctld, slurmd and munged" >&2
    exit 1
fi
T=$(mktemp -d /tmp/editone-bench-slurm.XXXXXX)
chmod 0755 "$T"
# shellcheck source=tests/slurm/cluster.sh
source "$(dirname "$0")/../tests/slurm/cluster.sh"
trap 'slurm_stop; rm -rf "$T"' EXIT

"$EDITONE" edit --seed 1 --direction 0 --strength 4 --fast --iterations 20 --out "$T/p.json" 2>/dev/null >/dev/null
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"

/usr/bin/time -f "%e s wall, peak %M KiB" -o "$T/single.time" \
    "$EDITONE" apply --preset "$T/p.json" --seeds "1-$COUNT" --out-dir "$T/single" 2>"$T/single.log"
echo "one process, $COUNT images: $(cat "$T/single.time")"

if ! slurm_start "$T/slurm"; then
    echo "$0: the Slurm daemons did not come up; see $T/slurm/log" >&2
    trap 'slurm_stop' EXIT
    exit 1
fi
cat >"$T/job.sh" <<EOF
#!/bin/bash
exec /usr/bin/time -f "task \$SLURM_ARRAY_TASK_ID: %e s wall, peak %M KiB" -o "$T/task-\$SLURM_ARRAY_TASK_ID.time" \\
    "$EDITONE" --threads 1 apply --preset "$T/p.json" --seeds "1-$COUNT" --shards 4 --resume --out-dir "$T/array"
EOF
chmod +x "$T/job.sh"
mkdir -p "$T/jobs"
start=$(date +%s.%N)
timeout 3600 sbatch --parsable --wait --array=0-3 --cpus-per-task=1 --output="$T/jobs/%a.log" "$T/job.sh" >/dev/null
end=$(date +%s.%N)
echo "4 array tasks (1 core each, $(nproc) at a time), submission to last task's end:" \
    "$(python3 -c "print(f'{$end - $start:.1f}')") s"
cat "$T"/task-*.time
for k in 0 1 2 3; do echo "task $k: $(grep -o 'wrote .*' "$T/jobs/$k.log")"; done
"$EDITONE" merge "$T/array"
if diff -rq -x 'editone-*.json' "$T/single" "$T/array" >/dev/null; then
    echo "the array's $(ls "$T/array" | grep -c '\.png$') images are the single process's, byte for byte"
else
    echo "the array's images differ from the single process's"
fi
