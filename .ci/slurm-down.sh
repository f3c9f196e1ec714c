#!/usr/bin/env bash
# Stop the Slurm daemons that .ci/slurm-up.sh started (and only those: it recorded their pids).
set -euo pipefail

STATE=/run/ferflow-slurm

[ -d "$STATE" ] || { echo "slurm-down: nothing to stop"; exit 0; }
for d in slurmd slurmctld munged; do
    pidfile="$STATE/$d.pid"
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    # stop it only if that pid is still the daemon we started
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$d" ]; then
        echo "slurm-down: stopping $d ($pid)"
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && { echo "slurm-down: $d ($pid) still running, killing"; kill -9 "$pid"; }
    fi
    rm -f "$pidfile"
done
rmdir "$STATE" 2>/dev/null || true
