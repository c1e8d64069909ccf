#!/usr/bin/env bash
# Storage transfers (issue 5, "Numbers"): vol-upload / vol-download of one dense file of random
# data through the gateway, directly on the storage service, and with libvirt's virsh, next to
# the floor `dd bs=1M conv=fsync` of the same file on the same file system. See bench/README.md,
# "Storage transfers".
#
#   bench/storage.sh [OUTDIR]     (run.sh calls it as its STORAGE part)
#   STORAGE_MB=N                  size of the file in MiB (default 1024; QUICK=1: 256)
#   STORAGE_RUNS=N                runs per contender (default 3; QUICK=1: 1)
#   STORAGE_DIR=DIR               where the temp dir goes (default /var/tmp): source file, both
#                                 pools and every output live in it, so on one file system
#   SKIP_LIBVIRT=1                virtplane and dd only
#
# Each run: `sync` (untimed, so no earlier write is still being flushed), then the transfer,
# timed; then `sync -d` of the file it wrote, timed apart ("+ sync": what the transfer left
# unflushed); then the SHA-256 of every downloaded file is compared with the source's (a
# mismatch fails the run). The source is read before the runs and again before every upload,
# so every contender reads it from the page cache; a volume is downloaded right after its upload.
# Needs: release binaries in target/release (run.sh builds them), libvirt installed (run.sh
# installs it), root. Only what this script started is stopped; the temp dir is removed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LV=${LVBENCH_DIR:-$(cd "$ROOT/../shared/libvirt-bench" 2>/dev/null && pwd || echo /work/shared/libvirt-bench)}
OUT=${1:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)}
BIN=${BIN:-$ROOT/target/release}
PY=${PY:-/usr/bin/python3}
if [ "${QUICK:-0}" = 1 ]; then MB=${STORAGE_MB:-256}; RUNS=${STORAGE_RUNS:-1}
else MB=${STORAGE_MB:-1024}; RUNS=${STORAGE_RUNS:-3}; fi
BYTES=$((MB * 1024 * 1024))
T=900   # seconds any one command may take (a stalled transfer fails the run)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
log() { echo "[$(date -u +%H:%M:%S)] storage: $*" | tee -a "$OUT/run.log" >&2; }
die() { log "FAILED: $*"; exit 1; }

for b in virtplane-storaged virtplane-gateway virtctl; do
    [ -x "$BIN/$b" ] || die "$BIN/$b missing (cargo build --release --bins)"
done
WITH_LIBVIRT=1
if [ "${SKIP_LIBVIRT:-0}" = 1 ]; then WITH_LIBVIRT=0
elif ! command -v virsh >/dev/null || ! command -v libvirtd >/dev/null; then
    die "libvirt is not installed: run bench/run.sh (it installs it) or set SKIP_LIBVIRT=1"
fi

WORK=$(mktemp -d "${STORAGE_DIR:-/var/tmp}/vpbs.XXXXXX")
PIDS=()
LV_POOL=
LV_STOP=   # the daemon.sh command that undoes what our `daemon.sh start` started, if anything
virsh_() { timeout "$T" virsh -q -c qemu:///system "$@"; }
cleanup() {
    local p
    trap '' INT TERM   # a second Ctrl-C must not cut the clean-up short; every step is bounded
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
    if [ -n "$LV_POOL" ]; then
        for p in pool-destroy pool-delete pool-undefine; do
            timeout 60 virsh -q -c qemu:///system "$p" "$LV_POOL" >/dev/null 2>&1 || true
        done
        LV_POOL=
    fi
    if [ -n "$LV_STOP" ]; then "$LV/daemon.sh" "$LV_STOP" >>"$OUT/run.log" 2>&1 || true; LV_STOP=; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fs_of() { df -T "$1" | awk 'NR==2 {print $1, $2, $7}'; }
[ "$(stat -c %d "$WORK")" = "$(stat -c %d "$OUT")" ] \
    || log "note: results ($OUT) and data ($WORK) are on different file systems; all data is on the latter"
{
    echo "storage_mb: $MB runs: $RUNS libvirt: $WITH_LIBVIRT"
    echo "storage_fs: $(fs_of "$WORK") (source, dd outputs, both pools, downloads: $WORK)"
    echo "storage_disk: $(lsblk -dno NAME,TYPE,ROTA,SIZE "$(df --output=source "$WORK" | tail -1)" 2>/dev/null | tr -s ' ' || echo -) (name type rotational size)"
} >> "$OUT/env.txt"

# ------------------------------------------------------------------ the source file
SRC=$WORK/src.img
log "making a dense ${MB} MiB file of random data ($SRC)"
timeout "$T" dd if=/dev/urandom of="$SRC" bs=1M count="$MB" iflag=fullblock conv=fsync status=none
[ "$(stat -c %s "$SRC")" = "$BYTES" ] || die "$SRC has $(stat -c %s "$SRC") bytes, not $BYTES"
[ $(($(stat -c %b "$SRC") * $(stat -c %B "$SRC"))) -ge "$BYTES" ] || die "$SRC is sparse"
sha_of() { # FILE: its SHA-256 (openssl's uses the CPU's SHA instructions; sha256sum does not)
    if command -v openssl >/dev/null; then timeout "$T" openssl dgst -sha256 -r "$1" | cut -d' ' -f1
    else timeout "$T" sha256sum "$1" | cut -d' ' -f1; fi
}
SRC_SHA=$(sha_of "$SRC")   # also reads it into the page cache

# ------------------------------------------------------------------ virtplane
TOKEN=bench-$RANDOM$RANDOM
printf '%s\n' "bench admin $(printf %s "$TOKEN" | timeout 30 "$BIN/virtplane-gateway" hash-token)" > "$WORK/tokens"
STORAGE_ADDR=unix:$WORK/st.sock
GATEWAY=unix:$WORK/gw.sock
"$BIN/virtplane-storaged" --driver dir --state-dir "$WORK/vp-state" --run-dir "$WORK/vp-run" \
    --listen "$STORAGE_ADDR" 2>"$OUT/storaged.log" & PIDS+=($!)
"$BIN/virtplane-gateway" --listen "$GATEWAY" --backend "storage=$STORAGE_ADDR" --tokens "$WORK/tokens" \
    --audit-log "$WORK/audit.log" 2>"$OUT/gateway-storage.log" & PIDS+=($!)
for _ in $(seq 1 500); do [ -S "$WORK/st.sock" ] && [ -S "$WORK/gw.sock" ] && break; sleep 0.01; done
[ -S "$WORK/gw.sock" ] || die "virtplane did not start, see $OUT/storaged.log, $OUT/gateway-storage.log"
STORAGED_PID=${PIDS[0]} GATEWAY_PID=${PIDS[1]}
log "virtplane-storaged pid $STORAGED_PID, gateway pid $GATEWAY_PID, data in $WORK"
# Direct: no token and no identity headers, i.e. a trusted local caller (services/common/src/identity.rs).
vp_direct() { timeout "$T" "$BIN/virtctl" --server "$STORAGE_ADDR" --token '' "$@"; }
vp_gateway() { VIRTPLANE_TOKEN=$TOKEN timeout "$T" "$BIN/virtctl" --server "$GATEWAY" "$@"; }
VP_POOL=bench
VP_DIR=$WORK/vp-pool
{
    vp_direct pool-define-as "$VP_POOL" dir --target "$VP_DIR"
    vp_direct pool-build "$VP_POOL"
    vp_direct pool-start "$VP_POOL"
} >>"$OUT/storage.log" 2>&1 || die "virtplane pool setup failed, see $OUT/storage.log"

# ------------------------------------------------------------------ libvirt
LIBVIRTD_PID=
LV_DIR=$WORK/lv-pool
if [ "$WITH_LIBVIRT" = 1 ]; then
    started=$("$LV/daemon.sh" start 2>&1) || die "daemon.sh start: $started"
    echo "$started" >> "$OUT/run.log"
    case "$started" in
        *"started virtlogd"*"started libvirtd"*) LV_STOP=stop ;;
        *"started libvirtd"*) LV_STOP=stop-libvirtd ;;
    esac
    LIBVIRTD_PID=$(cat /run/libvirtd.pid)
    grep -q "^libvirt:" "$OUT/env.txt" 2>/dev/null || echo "libvirt: $(libvirtd --version)" >> "$OUT/env.txt"
    LV_POOL=vpbench-$$
    {
        virsh_ pool-define-as "$LV_POOL" dir --target "$LV_DIR"
        virsh_ pool-build "$LV_POOL"
        virsh_ pool-start "$LV_POOL"
    } >>"$OUT/storage.log" 2>&1 || die "libvirt pool setup failed, see $OUT/storage.log"
    log "libvirtd pid $LIBVIRTD_PID ($([ -n "$LV_STOP" ] && echo "started here" || echo "already running")), pool $LV_POOL"
fi

# ------------------------------------------------------------------ measuring
SAMPLES=$OUT/storage_samples.jsonl
: > "$SAMPLES"
cpu_ticks() { # PID: utime+stime of a process, in clock ticks (0 if none)
    [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || { echo 0; return; }
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
children_cpu() { # CPU seconds of this shell's waited-for children so far (`times` must run
    # in this shell, not in a $(...) subshell, whose children are not ours)
    times > "$WORK/times"
    awk 'NR==2 {split($1, u, "m"); split($2, s, "m"); print u[1] * 60 + u[2] + s[1] * 60 + s[2]}' "$WORK/times"
}
TCK=$(getconf CLK_TCK)
# measure CONTENDER DIRECTION RUN WRITTEN_FILE [NAME=PID]... -- COMMAND...
# NAME=PID: a server process whose CPU time over the transfer is recorded under NAME.
measure() {
    local contender=$1 direction=$2 run=$3 written=$4; shift 4
    local servers=() before=() after=() i
    while [ "$1" != -- ]; do servers+=("$1"); shift; done; shift
    # The source was read before the runs; read it again (untimed) before an upload so it is
    # in the page cache even if the host's proactive reclaim (DAMON pageout of memory idle
    # for 60 s; see README) dropped it meanwhile. A volume is downloaded right after its upload.
    [ "$direction" != upload ] || timeout "$T" cat "$SRC" > /dev/null
    timeout "$T" sync
    local la0 la1 t0 t1 t2 c0 c1
    la0=$(cut -d' ' -f1-3 /proc/loadavg)
    for i in "${servers[@]}"; do before+=("$(cpu_ticks "${i#*=}")"); done
    children_cpu > "$WORK/c0"
    t0=$(date +%s%N)
    "$@" >>"$OUT/storage.log" 2>&1 || die "$contender $direction run $run: '$*' failed, see $OUT/storage.log"
    t1=$(date +%s%N)
    children_cpu > "$WORK/c1"
    c0=$(cat "$WORK/c0") c1=$(cat "$WORK/c1")
    for i in "${servers[@]}"; do after+=("$(cpu_ticks "${i#*=}")"); done
    timeout "$T" sync -d "$written"
    t2=$(date +%s%N)
    la1=$(cut -d' ' -f1-3 /proc/loadavg)
    local server_cpu=0 by=
    for i in "${!servers[@]}"; do
        server_cpu=$((server_cpu + after[i] - before[i]))
        by+=$(awk -v n="${servers[i]%%=*}" -v t="$((after[i] - before[i]))" -v h="$TCK" -v c="${by:+,}" \
            'BEGIN {printf "%s\"%s\":%.3f", c, n, t / h}')
    done
    printf '{"contender":"%s","direction":"%s","run":%d,"bytes":%d,"seconds":%s,"sync_seconds":%s,"client_cpu_s":%s,"server_cpu_s":%s,"server_cpu_s_by":{%s},"loadavg_before":"%s","loadavg_after":"%s"}\n' \
        "$contender" "$direction" "$run" "$BYTES" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", (b - a) / 1e9}')" \
        "$(awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.4f", (b - a) / 1e9}')" \
        "$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.3f", b - a}')" \
        "$(awk -v t="$server_cpu" -v h="$TCK" 'BEGIN {printf "%.3f", t / h}')" "$by" \
        "$la0" "$la1" >> "$SAMPLES"
    log "$contender $direction run $run: $(awk -v a="$t0" -v b="$t1" -v c="$t2" -v mb="$MB" \
        'BEGIN {printf "%.0f MiB/s (%.2f s, then sync -d %.2f s)", mb / ((b - a) / 1e9), (b - a) / 1e9, (c - b) / 1e9}'), load $la0"
}
check_sha() { # CONTENDER FILE: the downloaded file must be the source, byte for byte
    local got
    got=$(sha_of "$2")
    [ "$got" = "$SRC_SHA" ] || die "$1: downloaded $2 has SHA-256 $got, the source $SRC_SHA"
}

mkdir -p "$WORK/dd" "$WORK/down"
run_dd() { # RUN
    local dst=$WORK/dd/up-$1.img out=$WORK/down/dd-$1.img
    measure dd upload "$1" "$dst" -- timeout "$T" dd if="$SRC" of="$dst" bs=1M conv=fsync status=none
    measure dd download "$1" "$out" -- timeout "$T" dd if="$dst" of="$out" bs=1M conv=fsync status=none
    check_sha dd "$out"
    rm -f "$dst" "$out"
}
run_virtplane() { # gateway|direct RUN
    local via=$1 run=$2 vol=v-$1-$2.img out=$WORK/down/vp-$1-$2.img client=vp_direct
    local servers=("storaged=$STORAGED_PID")
    if [ "$via" = gateway ]; then client=vp_gateway; servers+=("gateway=$GATEWAY_PID"); fi
    $client vol-create-as "$VP_POOL" "$vol" "$BYTES" --allocation 0 --format raw >>"$OUT/storage.log" 2>&1 \
        || die "virtctl vol-create-as $vol failed, see $OUT/storage.log"
    measure "virtplane-$via" upload "$run" "$VP_DIR/$vol" "${servers[@]}" -- \
        $client vol-upload --pool "$VP_POOL" "$vol" "$SRC"
    measure "virtplane-$via" download "$run" "$out" "${servers[@]}" -- \
        $client vol-download --pool "$VP_POOL" "$vol" "$out"
    check_sha "virtplane-$via" "$out"
    $client vol-delete --pool "$VP_POOL" "$vol" >>"$OUT/storage.log" 2>&1 || die "virtctl vol-delete $vol failed"
    rm -f "$out"
}
run_libvirt() { # RUN
    local vol=v-$1.img out=$WORK/down/lv-$1.img
    virsh_ vol-create-as "$LV_POOL" "$vol" "$BYTES" --format raw --allocation 0 >>"$OUT/storage.log" 2>&1 \
        || die "virsh vol-create-as $vol failed, see $OUT/storage.log"
    measure libvirt upload "$1" "$LV_DIR/$vol" "libvirtd=$LIBVIRTD_PID" -- virsh_ vol-upload --pool "$LV_POOL" "$vol" "$SRC"
    measure libvirt download "$1" "$out" "libvirtd=$LIBVIRTD_PID" -- virsh_ vol-download --pool "$LV_POOL" "$vol" "$out"
    check_sha libvirt "$out"
    virsh_ vol-delete --pool "$LV_POOL" "$vol" >>"$OUT/storage.log" 2>&1 || die "virsh vol-delete $vol failed"
    rm -f "$out"
}

# Contenders take turns, in an order rotated every run, so a drift of the machine's load
# does not always fall on the same one.
CONTENDERS=(dd gateway direct)
[ "$WITH_LIBVIRT" = 1 ] && CONTENDERS+=(libvirt)
n=${#CONTENDERS[@]}
for run in $(seq 1 "$RUNS"); do
    for k in $(seq 0 $((n - 1))); do
        c=${CONTENDERS[$(((run - 1 + k) % n))]}
        case $c in
            dd) run_dd "$run" ;;
            gateway | direct) run_virtplane "$c" "$run" ;;
            libvirt) run_libvirt "$run" ;;
        esac
    done
done

"$PY" "$HERE/summarize_storage.py" --json "$OUT" > "$OUT/storage.json"
cleanup
trap - EXIT
log "done: $OUT/storage.json"
