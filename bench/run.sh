#!/usr/bin/env bash
# virtplane vs libvirt, same machine, same run, same method (see bench/README.md).
#
#   bench/run.sh [OUTDIR]        full run (~15 min); OUTDIR defaults to bench/results/<UTC timestamp>
#   QUICK=1 bench/run.sh         ~3 min smoke run (1 and 1000 domains, short trials)
#   SKIP_LIBVIRT=1 bench/run.sh  virtplane only
#   NO_BUILD=1 bench/run.sh      use the release binaries already in target/release
#   LIFECYCLE=0 bench/run.sh     skip the lifecycle part (start/suspend/resume/destroy, restart)
#   RPC=0 bench/run.sh           skip the RPC part (lookup/list/define), e.g. lifecycle only
#   RESTART_VMS=N                VMs running during the restart benchmark (default 100)
#   STORAGE=0 bench/run.sh       skip the storage part (vol-upload/vol-download vs dd and virsh)
#   RPC=0 LIFECYCLE=0 bench/run.sh   the storage part alone (bench/storage.sh; STORAGE_MB=N,
#                                STORAGE_RUNS=N, STORAGE_DIR=DIR: see that script)
#
# virtplane: builds the release binaries, starts virtplane-domaind (test driver, durable state
# dir) and virtplane-gateway on a temp dir and drives them with virtplane-bench, directly on
# the domain socket and through the gateway, with 1/100/1000 defined domains; times
# `virtctl list --all` as a whole command (hyperfine if installed).
# lifecycle: virtplane-domaind --driver qemu behind a gateway; virtplane-bench lifecycle (direct
# and through the gateway), floor (the driver's own QEMU command line driven over raw QMP) and
# restart (its own domaind with RESTART_VMS VMs, SIGKILLed and restarted); libvirt's 03_start.py.
# libvirt: the anchor scripts in ../shared/libvirt-bench (daemon.sh, 02_rpc.py, cleanup.py),
# with the same durations/trials, plus `virsh list --all` timed like `virtctl list --all`.
# storage: bench/storage.sh (its own virtplane-storaged, gateway and libvirt pool), last.
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
    LC_STARTS=5; LC_CYCLES=10; LC_ROUNDS=1; LC_RAW_REPS=6
else
    COUNTS="1 100 1000"; SECONDS_PER_TRIAL=2; TRIALS=3; REPS=30; WARMUP=3
    LC_STARTS=20; LC_CYCLES=25; LC_ROUNDS=3; LC_RAW_REPS=30   # raw: destroy rotates 3 ways
fi
RPC=${RPC:-1}; LIFECYCLE=${LIFECYCLE:-1}; RESTART_VMS=${RESTART_VMS:-100}; STORAGE=${STORAGE:-1}
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
    echo "quick: ${QUICK:-0} rpc: $RPC counts: $COUNTS seconds: $SECONDS_PER_TRIAL trials: $TRIALS reps: $REPS"
    echo "lifecycle: $LIFECYCLE starts: $LC_STARTS cycles: $LC_CYCLES restart_vms: $RESTART_VMS rounds: $LC_ROUNDS"
    echo "storage: $STORAGE"
    echo "loadavg_start: $(cat /proc/loadavg)"
} > "$OUT/env.txt"

# ------------------------------------------------------------------ virtplane
TMP=$(mktemp -d /tmp/virtplane-bench.XXXXXX)
echo "state_dir_fs: $(df -T "$TMP" | awk 'NR==2 {print $1, $2}') (libvirt: $(df -T /etc/libvirt | awk 'NR==2 {print $1, $2}'))" >> "$OUT/env.txt"
PIDS=()
SHM=
LIBVIRT_STARTED=0
CGROUP_ROOT=virtplane.bench-$$   # the lifecycle VMs' cgroups, removed at the end
# Fallback for the lifecycle part: QEMUs still running from our temp dir (their QMP sockets
# live there), found by pid from /proc, never by name; then our cgroup roots, once empty.
kill_our_qemus() {
    local d pid dir i
    for dir in "${TMP:-}" "${SHM:-}"; do
        [ -n "$dir" ] || continue
        for d in /proc/[0-9]*; do
            pid=${d#/proc/}
            if tr '\0' '\n' 2>/dev/null < "$d/cmdline" | grep -q "^-chardev$" \
                && tr '\0' ' ' 2>/dev/null < "$d/cmdline" | grep -qF "path=$dir/"; then
                echo "run.sh: killing leftover QEMU $pid" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done
    done
    for i in $(seq 1 75); do   # this host's PID 1 reaps orphans every 1-2 s
        rmdir /sys/fs/cgroup/*/"$CGROUP_ROOT"*/* 2>/dev/null || true
        rmdir /sys/fs/cgroup/*/"$CGROUP_ROOT"* 2>/dev/null || true
        compgen -G "/sys/fs/cgroup/*/$CGROUP_ROOT*" >/dev/null || break
        sleep 0.2
    done
    return 0
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
    kill_our_qemus
    rm -rf "$TMP"
    if [ -n "${SHM:-}" ]; then rm -rf "$SHM"; SHM=; fi
    if [ "$LIBVIRT_STARTED" = 1 ]; then
        "$PY" "$LV/cleanup.py" >/dev/null 2>&1 || true
        "$LV/daemon.sh" stop >/dev/null 2>&1 || true
        LIBVIRT_STARTED=0
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TOKEN=bench-$RANDOM$RANDOM
hash=$(printf %s "$TOKEN" | "$BIN/virtplane-gateway" hash-token)
echo "bench admin $hash" > "$TMP/tokens"
DOMAIN=unix:$TMP/domain.sock
GATEWAY=unix:$TMP/gw.sock
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

if [ "$RPC" != 0 ]; then   # ---------------- RPC part (test driver)
"$BIN/virtplane-domaind" --driver test --state-dir "$TMP/domain" --listen "$DOMAIN" \
    2>"$OUT/domaind.log" & PIDS+=($!)
"$BIN/virtplane-gateway" --listen "$GATEWAY" --backend "domain=$DOMAIN" --tokens "$TMP/tokens" \
    --audit-log "$TMP/audit.log" 2>"$OUT/gateway.log" & PIDS+=($!)
for _ in $(seq 1 500); do [ -S "$TMP/domain.sock" ] && [ -S "$TMP/gw.sock" ] && break; sleep 0.01; done
[ -S "$TMP/gw.sock" ] || { echo "run.sh: daemons did not start, see $OUT/*.log" >&2; exit 1; }
log "virtplane-domaind pid ${PIDS[0]}, gateway pid ${PIDS[1]}, state in $TMP"

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
fi # RPC
cleanup   # stop virtplane before the next part

# ------------------------------------------------------------------ lifecycle (qemu driver)
if [ "$LIFECYCLE" != 0 ]; then
    TMP=$(mktemp -d /tmp/vpbl.XXXXXX)   # short: QMP socket paths are limited to 107 bytes
    echo "bench admin $hash" > "$TMP/tokens"
    QDOMAIN=unix:$TMP/q.sock
    QGATEWAY=unix:$TMP/gw.sock
    "$BIN/virtplane-domaind" --driver qemu --state-dir "$TMP/q" --listen "$QDOMAIN" \
        --vm-cgroup-root "$CGROUP_ROOT" 2>"$OUT/domaind-qemu.log" & PIDS+=($!)
    "$BIN/virtplane-gateway" --listen "$QGATEWAY" --backend "domain=$QDOMAIN" --tokens "$TMP/tokens" \
        --audit-log "$TMP/audit.log" 2>"$OUT/gateway-qemu.log" & PIDS+=($!)
    for _ in $(seq 1 500); do [ -S "$TMP/q.sock" ] && [ -S "$TMP/gw.sock" ] && break; sleep 0.01; done
    [ -S "$TMP/gw.sock" ] || { echo "run.sh: qemu daemons did not start, see $OUT/*-qemu.log" >&2; exit 1; }
    log "lifecycle: virtplane-domaind --driver qemu pid ${PIDS[0]}, gateway pid ${PIDS[1]}, state in $TMP"
    LC=(--starts "$LC_STARTS" --cycles "$LC_CYCLES")
    log "lifecycle: floor (the driver's command line over raw QMP)"
    "$BIN/virtplane-bench" --label floor floor "${LC[@]}" | tee -a "$OUT/virtplane.jsonl"
    for target in gateway direct; do
        server=$QDOMAIN; [ "$target" = gateway ] && server=$QGATEWAY
        log "lifecycle: $target"
        bench "$target" "$server" lifecycle "${LC[@]}"
    done
    log "lifecycle: floor again (the load drifts on this shared machine)"
    "$BIN/virtplane-bench" --label floor-2 floor "${LC[@]}" | tee -a "$OUT/virtplane.jsonl"
    log "lifecycle: floor with the driver's cgroup placement (what that step costs, untraced)"
    "$BIN/virtplane-bench" --label floor-cgroup floor "${LC[@]}" --place-cgroup | tee -a "$OUT/virtplane.jsonl"
    # Once more through the gateway with the run dir (runtime status files, QMP sockets) on
    # tmpfs, where a stock host has /run; here /run is on the root ext4, libvirt's too.
    kill -TERM "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
    SHM=$(mktemp -d /dev/shm/vpbl.XXXXXX)
    rm -f "$TMP/q.sock"
    "$BIN/virtplane-domaind" --driver qemu --state-dir "$TMP/q" --run-dir "$SHM" --listen "$QDOMAIN" \
        --vm-cgroup-root "$CGROUP_ROOT" 2>>"$OUT/domaind-qemu.log" & PIDS[0]=$!
    for _ in $(seq 1 500); do [ -S "$TMP/q.sock" ] && break; sleep 0.01; done
    log "lifecycle: gateway, run dir on tmpfs ($SHM)"
    bench gateway-tmpfs-run "$QGATEWAY" lifecycle "${LC[@]}"
    # The restart benchmark runs its own domaind on the same socket, behind the same gateway.
    kill -TERM "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
    PIDS=("${PIDS[1]}")
    rm -rf "$SHM"; SHM=
    log "lifecycle: restart with $RESTART_VMS VMs, $LC_ROUNDS rounds (through the gateway)"
    "$BIN/virtplane-bench" --server "$QGATEWAY" --token "$TOKEN" --label gateway restart \
        --count "$RESTART_VMS" --rounds "$LC_ROUNDS" --domaind "$BIN/virtplane-domaind" \
        --state-dir "$TMP/r" --listen "$QDOMAIN" --vm-cgroup-root "$CGROUP_ROOT-r" \
        --log "$OUT/domaind-restart.log" | tee -a "$OUT/virtplane.jsonl"
    cleanup
fi

# ------------------------------------------------------------------ libvirt
ensure_libvirt() {
    if ! "$PY" -c 'import libvirt' 2>/dev/null || ! command -v libvirtd >/dev/null || [ ! -x /usr/bin/qemu-system-x86_64 ]; then
        log "installing libvirt (as ../shared/libvirt-bench/README.md says)"
        apt-get install -y --no-install-recommends libvirt-daemon-system libvirt-clients \
            python3-libvirt strace qemu-system-x86 >"$OUT/apt.log" 2>&1
    fi
}
if [ "${SKIP_LIBVIRT:-0}" != 1 ] && { [ "$RPC" != 0 ] || [ "$LIFECYCLE" != 0 ]; }; then
    ensure_libvirt
    log "libvirt: daemon.sh start"
    "$LV/daemon.sh" start | tee -a "$OUT/run.log" >&2
    LIBVIRT_STARTED=1
    echo "libvirt: $(libvirtd --version)" >> "$OUT/env.txt"
    if [ "$RPC" != 0 ]; then
        counts_csv=$(echo "$COUNTS" | tr ' ' ',')
        log "libvirt: 02_rpc.py --counts $counts_csv"
        "$PY" "$LV/02_rpc.py" "$OUT/libvirt" --counts "$counts_csv" --duration "$SECONDS_PER_TRIAL" \
            --trials "$TRIALS" --virsh-reps "$REPS" --keep 2>&1 | tee "$OUT/libvirt_02_rpc.log" >&2
        last=${COUNTS##* }
        time_cmd "virsh_list_all_$last" virsh -c qemu:///system list --all
    fi
    if [ "$LIFECYCLE" != 0 ]; then
        log "libvirt: 03_start.py --reps $LC_STARTS --cycles $LC_CYCLES"
        "$PY" "$LV/03_start.py" "$OUT/libvirt" --reps "$LC_STARTS" --cycles "$LC_CYCLES" \
            --raw-reps "$LC_RAW_REPS" --virsh-reps 5 2>&1 | tee "$OUT/libvirt_03_start.log" >&2
    fi
    "$PY" "$LV/cleanup.py" | tee -a "$OUT/run.log" >&2
    "$LV/daemon.sh" stop | tee -a "$OUT/run.log" >&2
    LIBVIRT_STARTED=0
fi

# ------------------------------------------------------------------ storage (own daemons, libvirt pool)
if [ "$STORAGE" != 0 ]; then
    [ "${SKIP_LIBVIRT:-0}" = 1 ] || ensure_libvirt
    log "storage: bench/storage.sh (vol-upload/vol-download vs dd and virsh)"
    BIN=$BIN PY=$PY LVBENCH_DIR=$LV "$HERE/storage.sh" "$OUT"
fi

echo "loadavg_end: $(cat /proc/loadavg)" >> "$OUT/env.txt"
{
    if [ -e "$OUT/virtplane.jsonl" ]; then
        "$PY" "$HERE/summarize.py" "$OUT"
        [ ! -e "$OUT/storage.json" ] || "$PY" "$HERE/summarize_storage.py" "$OUT"
    elif [ -e "$OUT/storage.json" ]; then
        "$PY" "$HERE/summarize_storage.py" --header "$OUT"
    fi
} > "$OUT/summary.md"
log "done: $OUT/summary.md"
cat "$OUT/summary.md"
