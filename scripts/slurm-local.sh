#!/usr/bin/env bash
# A one-node Slurm for tests, without systemd: `slurm-local.sh start DIR`
# writes a munge key and slurm.conf under DIR, starts munged (as the munge
# user), slurmctld -D and slurmd -D in the background, waits until the node
# is idle and prints `export SLURM_CONF=DIR/slurm.conf`; `slurm-local.sh
# stop DIR` kills exactly the daemons it started (their PIDs in DIR/pids).
# Needs root and Debian's slurm-wlm and munge packages.
set -euo pipefail
cmd="${1:?usage: slurm-local.sh start|stop DIR}"
dir="$(mkdir -p "${2:?usage: slurm-local.sh start|stop DIR}" && cd "$2" && pwd)"

stop() {
  # munged runs under runuser: its own PID too.
  [[ -f "$dir/munge/munged.pid" && -f "$dir/pids" ]] && cat "$dir/munge/munged.pid" >> "$dir/pids"
  [[ -f "$dir/pids" ]] || return 0
  while read -r pid; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done < "$dir/pids"
  for _ in $(seq 50); do
    alive=0
    while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done < "$dir/pids"
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$dir/pids"
  rm -f "$dir/pids"
}

if [[ "$cmd" == stop ]]; then stop; exit 0; fi
[[ "$cmd" == start ]] || { echo "usage: slurm-local.sh start|stop DIR" >&2; exit 2; }
for b in munged slurmctld slurmd sinfo; do
  command -v "$b" >/dev/null || { echo "slurm-local: $b not found (apt-get install slurm-wlm munge)" >&2; exit 3; }
done
stop
node="$(hostname -s)"
cpus="$(nproc)"
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 3 / 4 ))
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chown munge:munge "$dir/munge" && chmod 0711 "$dir/munge"
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chown munge:munge "$dir/munge/munge.key" && chmod 0400 "$dir/munge/munge.key"
runuser -u munge -- munged --force --foreground --key-file="$dir/munge/munge.key" \
  --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
  --seed-file="$dir/munge/munge.seed" --log-file="$dir/log/munged.log" >>"$dir/log/munged.out" 2>&1 &
echo $! >> "$dir/pids"
cat > "$dir/slurm.conf" <<CONF
ClusterName=peftc-local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$(( mem_mb / cpus ))
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=$(( 16817 + RANDOM % 1000 ))
SlurmdPort=$(( 17818 + RANDOM % 1000 ))
ReturnToService=2
KillWait=10
MinJobAge=600
JobRequeue=1
MaxArraySize=10001
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
for _ in $(seq 50); do [[ -S "$dir/munge/munge.socket" ]] && break; sleep 0.1; done
slurmctld -D -i -f "$SLURM_CONF" >>"$dir/log/slurmctld.out" 2>&1 &
echo $! >> "$dir/pids"
slurmd -D -N "$node" -f "$SLURM_CONF" >>"$dir/log/slurmd.out" 2>&1 &
echo $! >> "$dir/pids"
for _ in $(seq 300); do
  state="$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)"
  [[ "$state" == idle ]] && { echo "export SLURM_CONF=$SLURM_CONF"; exit 0; }
  sleep 0.1
done
echo "slurm-local: the node did not become idle (state: ${state:-none}); logs in $dir/log" >&2
tail -5 "$dir"/log/*.log >&2 || true
stop
exit 1
