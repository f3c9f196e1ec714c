#!/usr/bin/env bash
# Bring up a single-node Slurm cluster on localhost for tests/test_slurm.py (Debian, as root).
#   .ci/slurm-up.sh      install (once), configure, start munged/slurmctld/slurmd, wait for an idle node
#   .ci/slurm-down.sh    stop the daemons this script started
# Idempotent: daemons already running are kept, so a second call returns in about a second.
# The node offers this machine's CPUs and memory plus two stand-in GPUs (GRES gpu:2 with AutoDetect=off on
# two character devices made like /dev/null, /dev/ferflow-gpu0 and 1), so a `gpu=1` request (sbatch --gpus=1)
# is scheduled as on a real GPU node: two such jobs run at once, each with its own CUDA_VISIBLE_DEVICES.
set -euo pipefail

CONF_DIR=/etc/slurm                      # the plugin's inner srun only finds the config here
STATE=/run/ferflow-slurm                 # pids of the daemons this script started
LOG_DIR=/var/log/slurm
GPUS=2                                   # stand-in GPUs of the node
SPOOL=/var/spool/slurm

say() { echo "slurm-up: $*"; }
die() { echo "slurm-up: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages and starts daemons)"

# --- packages -------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "apt-get not found (Debian/Ubuntu only)"
    say "installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# --- munge ----------------------------------------------------------------------------------
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile /etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key

mkdir -p "$STATE"
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do alive /run/munge/munged.pid && break; sleep 0.1; done
    alive /run/munge/munged.pid || die "munged did not start (see /var/log/munge/munged.log)"
    cp /run/munge/munged.pid "$STATE/munged.pid"
fi

# --- configuration --------------------------------------------------------------------------
# The node's hardware as slurmd sees it (a node configured with more than that goes INVAL).
hw=$(slurmd -C | head -1)
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$hw"; }
cpus=$(field CPUs); boards=$(field Boards); sockets=$(field SocketsPerBoard)
cores=$(field CoresPerSocket); threads=$(field ThreadsPerCore); mem=$(field RealMemory)
for value in "$cpus" "$boards" "$sockets" "$cores" "$threads" "$mem"; do
    [ -n "$value" ] || die "cannot read the node's hardware from 'slurmd -C': $hw"
done
mem=$(( mem * 9 / 10 ))                  # leave headroom: slurmd may see slightly less later

mkdir -p "$CONF_DIR" "$LOG_DIR" "$SPOOL/ctld" "$SPOOL/d"
conf=$(cat <<EOF
# Written by .ci/slurm-up.sh: a single-node test cluster on localhost.
ClusterName=ferflow
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus Boards=$boards SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem Gres=gpu:$GPUS State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
)
gres="AutoDetect=off"
for i in $(seq 0 $((GPUS - 1))); do
    dev=/dev/ferflow-gpu$i               # a stand-in GPU: a character device that behaves like /dev/null
    [ -c "$dev" ] || mknod -m 666 "$dev" c 1 3 || die "cannot create the stand-in GPU $dev (mknod)"
    gres+=$'\n'"NodeName=localhost Name=gpu File=$dev"
done
changed=0
if [ "$(cat "$CONF_DIR/slurm.conf" 2>/dev/null)" != "$conf" ]; then
    printf '%s\n' "$conf" >"$CONF_DIR/slurm.conf"; changed=1
fi
if [ "$(cat "$CONF_DIR/gres.conf" 2>/dev/null)" != "$gres" ]; then
    printf '%s\n' "$gres" >"$CONF_DIR/gres.conf"; changed=1
fi

# --- daemons --------------------------------------------------------------------------------
if [ "$changed" = 1 ] && { alive /run/slurmctld.pid || alive /run/slurmd.pid; }; then
    say "configuration changed: restarting slurmctld and slurmd"
    for d in slurmd slurmctld; do
        alive /run/$d.pid && kill "$(cat /run/$d.pid)"
        for _ in $(seq 100); do alive /run/$d.pid || break; sleep 0.1; done
    done
fi
if ! alive /run/slurmctld.pid; then
    say "starting slurmctld"
    /usr/sbin/slurmctld
    for _ in $(seq 100); do alive /run/slurmctld.pid && break; sleep 0.1; done
    alive /run/slurmctld.pid || die "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
    cp /run/slurmctld.pid "$STATE/slurmctld.pid"
fi
if ! alive /run/slurmd.pid; then
    say "starting slurmd"
    /usr/sbin/slurmd -N localhost
    for _ in $(seq 100); do alive /run/slurmd.pid && break; sleep 0.1; done
    alive /run/slurmd.pid || die "slurmd did not start (see $LOG_DIR/slurmd.log)"
    cp /run/slurmd.pid "$STATE/slurmd.pid"
fi

# --- wait for the node ----------------------------------------------------------------------
state=""
for i in $(seq 60); do
    state=$(sinfo -h -N -n localhost -o %T 2>/dev/null | head -1)
    case "$state" in
        idle|mixed|allocated) say "node localhost is $state ($cpus CPUs, ${mem} MB, gpu:$GPUS)"; exit 0 ;;
        down*|drain*) if [ "$i" = 10 ]; then scontrol update NodeName=localhost State=RESUME 2>/dev/null || true; fi ;;
    esac
    sleep 1
done
die "node localhost not idle after 60 s (state: ${state:-unknown}); see $LOG_DIR/slurmctld.log and slurmd.log"
