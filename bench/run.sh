#!/usr/bin/env bash
# virtplane vs libvirt, same machine, same run, same method (see bench/README.md).
#
#   bench/run.sh [OUTDIR]        full run (~15 min); OUTDIR defaults to bench/results/<UTC timestamp>
#   QUICK=1 bench/run.sh         ~3 min smoke run (1 and 1000 domains, short trials)
#   SKIP_LIBVIRT=1 bench/run.sh  virtplane only
#   NO_BUILD=1 bench/run.sh      use the release binaries already in target/release
#
# virtplane: builds the release binaries, starts virtplane-domaind (test driver, durable state
# dir) and virtplane-gateway on a temp dir and drives them with virtplane-bench, directly on
# the domain socket and through the gateway, with 1/100/1000 defined domains; times
# `virtctl list --all` as a whole command (hyperfine if installed).
# libvirt: the anchor scripts in ../shared/libvirt-bench (daemon.sh, 02_rpc.py, cleanup.py),
# with the same durations/trials, plus `virsh list --all` timed like `virtctl list --all`.
# Only processes this script started are stopped; the temp dir is removed on exit.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LV=${LVBENCH_DIR:-$(cd "$ROOT/../shared/libvirt-bench" 2>/dev/null && pwd || echo /work/shared/libvirt-bench)}
OUT=${1:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)}
BIN=$ROOT/target/release
PY=/usr/bin/python3   # Debian's python3-libvirt is not visible to pyenv's python

if [ "${QUICK:-0}" = 1 ]; then
    COUNTS="1 1000"; SECONDS_PER_TRIAL=0.5; TRIALS=1; REPS=5; WARMUP=1
else
    COUNTS="1 100 1000"; SECONDS_PER_TRIAL=2; TRIALS=3; REPS=30; WARMUP=3
fi
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/run.log" >&2; }

# ------------------------------------------------------------------ build
if [ "${NO_BUILD:-0}" != 1 ]; then
    log "cargo build --release --bins"
    (cd "$ROOT" && cargo build --release --bins) 2>&1 | tail -3 >&2
fi
for b in virtplane-domaind virtplane-gateway virtctl virtplane-bench; do
    [ -x "$BIN/$b" ] || { echo "run.sh: $BIN/$b missing (build first)" >&2; exit 1; }
done

# ------------------------------------------------------------------ environment
{
    echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -) ($(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) files changed)"
    echo "kernel: $(uname -r)"
    echo "cpus: $(nproc) x$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    echo "mem: $(grep MemTotal /proc/meminfo | tr -s ' ')"
    echo "quick: ${QUICK:-0} counts: $COUNTS seconds: $SECONDS_PER_TRIAL trials: $TRIALS reps: $REPS"
    echo "loadavg_start: $(cat /proc/loadavg)"
} > "$OUT/env.txt"

# ------------------------------------------------------------------ virtplane
TMP=$(mktemp -d /tmp/virtplane-bench.XXXXXX)
echo "state_dir_fs: $(df -T "$TMP" | awk 'NR==2 {print $1, $2}') (libvirt: $(df -T /etc/libvirt | awk 'NR==2 {print $1, $2}'))" >> "$OUT/env.txt"
PIDS=()
LIBVIRT_STARTED=0
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
    rm -rf "$TMP"
    if [ "$LIBVIRT_STARTED" = 1 ]; then
        "$PY" "$LV/cleanup.py" >/dev/null 2>&1 || true
        "$LV/daemon.sh" stop >/dev/null 2>&1 || true
        LIBVIRT_STARTED=0
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TOKEN=bench-$RANDOM$RANDOM
echo "bench admin $(printf %s "$TOKEN" | "$BIN/virtplane-gateway" hash-token)" > "$TMP/tokens"
DOMAIN=unix:$TMP/domain.sock
GATEWAY=unix:$TMP/gw.sock
"$BIN/virtplane-domaind" --driver test --state-dir "$TMP/domain" --listen "$DOMAIN" \
    2>"$OUT/domaind.log" & PIDS+=($!)
"$BIN/virtplane-gateway" --listen "$GATEWAY" --backend "domain=$DOMAIN" --tokens "$TMP/tokens" \
    --audit-log "$TMP/audit.log" 2>"$OUT/gateway.log" & PIDS+=($!)
for _ in $(seq 1 500); do [ -S "$TMP/domain.sock" ] && [ -S "$TMP/gw.sock" ] && break; sleep 0.01; done
[ -S "$TMP/gw.sock" ] || { echo "run.sh: daemons did not start, see $OUT/*.log" >&2; exit 1; }
log "virtplane-domaind pid ${PIDS[0]}, gateway pid ${PIDS[1]}, state in $TMP"

bench() { # TARGET-LABEL SERVER ARGS...
    local label=$1 server=$2; shift 2
    "$BIN/virtplane-bench" --server "$server" --token "$TOKEN" --label "$label" \
        --watch-pid "${PIDS[0]}" --watch-pid "${PIDS[1]}" --seconds "$SECONDS_PER_TRIAL" --trials "$TRIALS" "$@" | tee -a "$OUT/virtplane.jsonl"
}
time_cmd() { # NAME ENV... -- CMD: whole-command wall time, hyperfine JSON or a date loop
    local name=$1; shift
    if command -v hyperfine >/dev/null; then
        hyperfine -N --style none --warmup "$WARMUP" --runs "$REPS" \
            --export-json "$OUT/$name.json" "$*" >/dev/null
    else
        local i t0 t1
        for i in $(seq 1 $((REPS + WARMUP))); do
            t0=$(date +%s%N); $* >/dev/null; t1=$(date +%s%N)
            [ "$i" -gt "$WARMUP" ] && echo $(((t1 - t0) / 1000))
        done | "$PY" -c 'import json,sys; v=[int(x)/1e6 for x in sys.stdin]; print(json.dumps({"results":[{"command":sys.argv[1],"times":v}]}))' "$*" \
            > "$OUT/$name.json"
    fi
}

for N in $COUNTS; do
    log "virtplane: $N defined domains"
    bench direct "$DOMAIN" --clients 8 populate "$N"
    for target in direct gateway; do
        server=$DOMAIN; [ "$target" = gateway ] && server=$GATEWAY
        for c in 1 8; do
            bench "$target" "$server" --clients "$c" lookup-info
            bench "$target" "$server" --clients "$c" list
            bench "$target" "$server" --clients "$c" define-undefine
        done
    done
    VIRTPLANE_SERVER=$GATEWAY VIRTPLANE_TOKEN=$TOKEN time_cmd "virtctl_list_all_$N" "$BIN/virtctl" list --all
done
bench direct "$DOMAIN" --clients 8 cleanup
cleanup   # stop virtplane before libvirt runs

# ------------------------------------------------------------------ libvirt
if [ "${SKIP_LIBVIRT:-0}" != 1 ]; then
    if ! "$PY" -c 'import libvirt' 2>/dev/null || ! command -v libvirtd >/dev/null || [ ! -x /usr/bin/qemu-system-x86_64 ]; then
        log "installing libvirt (as ../shared/libvirt-bench/README.md says)"
        apt-get install -y --no-install-recommends libvirt-daemon-system libvirt-clients \
            python3-libvirt strace qemu-system-x86 >"$OUT/apt.log" 2>&1
    fi
    log "libvirt: daemon.sh start"
    "$LV/daemon.sh" start | tee -a "$OUT/run.log" >&2
    LIBVIRT_STARTED=1
    echo "libvirt: $(libvirtd --version)" >> "$OUT/env.txt"
    counts_csv=$(echo "$COUNTS" | tr ' ' ',')
    log "libvirt: 02_rpc.py --counts $counts_csv"
    "$PY" "$LV/02_rpc.py" "$OUT/libvirt" --counts "$counts_csv" --duration "$SECONDS_PER_TRIAL" \
        --trials "$TRIALS" --virsh-reps "$REPS" --keep 2>&1 | tee "$OUT/libvirt_02_rpc.log" >&2
    last=${COUNTS##* }
    time_cmd "virsh_list_all_$last" virsh -c qemu:///system list --all
    "$PY" "$LV/cleanup.py" | tee -a "$OUT/run.log" >&2
    "$LV/daemon.sh" stop | tee -a "$OUT/run.log" >&2
    LIBVIRT_STARTED=0
fi

echo "loadavg_end: $(cat /proc/loadavg)" >> "$OUT/env.txt"
"$PY" "$HERE/summarize.py" "$OUT" > "$OUT/summary.md"
log "done: $OUT/summary.md"
cat "$OUT/summary.md"
