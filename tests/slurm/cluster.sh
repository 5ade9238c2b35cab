# A one-machine Slurm for tests and benchmarks, sourced by tests/slurm/run.sh
# and benches/slurm.sh (as root; Debian: slurmctld slurmd slurm-client munge).
#
#   slurm_start DIR   writes munge's key and a slurm.conf under DIR (free
#                     ports, no systemd, no cgroups, no accounting), starts
#                     munged, slurmctld and slurmd in the foreground of this
#                     shell's jobs, exports SLURM_CONF and waits (up to 30 s)
#                     for an idle node; returns 1 if it does not come.
#   slurm_stop        cancels the cluster's jobs (bounded), then stops each
#                     daemon slurm_start started, by its process id: TERM,
#                     then KILL after 10 s. Safe to call when nothing started.

SLURM_DAEMONS=()

slurm_start() {
    local dir=$1 ctld_port slurmd_port host socket i state=""
    mkdir -p "$dir/munge/run" "$dir/state" "$dir/spool" "$dir/log"
    chmod 0711 "$dir/munge/run" # munged refuses a socket folder that others may write to
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2>/dev/null
    chmod 0400 "$dir/munge/munge.key"
    socket=$dir/munge/run/munge.socket.2
    munged -F --key-file="$dir/munge/munge.key" --socket="$socket" --pid-file="$dir/munge/run/munged.pid" \
        --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" >"$dir/log/munged.out" 2>&1 &
    SLURM_DAEMONS+=($!)
    # Two free TCP ports: Slurm's defaults (6817, 6818) may be taken.
    read -r ctld_port slurmd_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
    host=$(hostname -s)
    # batch_sched_delay, sched_interval and bf_interval start array tasks at
    # once (not 3 s apart); cred_expire=5 lets a requeued task start in
    # seconds rather than 120 s.
    cat >"$dir/slurm.conf" <<EOF
ClusterName=editone-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket,cred_expire=5
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=1
ReturnToService=2
KillWait=5
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=editone Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$dir/slurm.conf
    for i in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
    slurmctld -D -i -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
    SLURM_DAEMONS+=($!)
    slurmd -D -N "$host" -f "$SLURM_CONF" >"$dir/log/slurmd.out" 2>&1 &
    SLURM_DAEMONS+=($!)
    for i in $(seq 150); do
        state=$(timeout 5 sinfo -h -N -o %T 2>/dev/null || :)
        [ "$state" = idle ] && return 0
        sleep 0.2
    done
    return 1
}

slurm_stop() {
    local pid i
    if [ ${#SLURM_DAEMONS[@]} -gt 1 ]; then
        timeout 10 scancel --full --signal=KILL --user=root >/dev/null 2>&1 || :
        timeout 10 scancel --user=root >/dev/null 2>&1 || :
        for i in $(seq 50); do
            [ -z "$(timeout 5 squeue -h 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
    for pid in "${SLURM_DAEMONS[@]}"; do kill -TERM "$pid" 2>/dev/null || :; done
    for pid in "${SLURM_DAEMONS[@]}"; do
        for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || :
    done
    wait "${SLURM_DAEMONS[@]}" 2>/dev/null || :
    SLURM_DAEMONS=()
}
