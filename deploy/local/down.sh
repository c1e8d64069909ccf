#!/usr/bin/env bash
# Stops the daemons deploy/local/up.sh started for a state dir (by their pid files), and
# nothing else. Domains, networks and pools follow their drivers' own rules (the state stays on
# disk).
#
#   deploy/local/down.sh [--state-dir DIR]
set -euo pipefail

state_dir=.virtplane
while [ $# -gt 0 ]; do
    case $1 in
        --state-dir) state_dir=${2:?--state-dir needs a directory}; shift 2 ;;
        --state-dir=*) state_dir=${1#*=}; shift ;;
        -h|--help) sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "down.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
run_dir=$state_dir/run

# The gateway first, so no new call reaches a service that is stopping.
for binary in virtplane-gateway virtplane-storaged virtplane-networkd virtplane-domaind; do
    pid_file=$run_dir/$binary.pid
    [ -f "$pid_file" ] || continue
    pid=$(cat "$pid_file")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q "$binary" "/proc/$pid/cmdline" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$binary (pid $pid) did not stop within 10 s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "stopped $binary (pid $pid)"
    fi
    rm -f "$pid_file"
done
