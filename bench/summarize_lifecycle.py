"""Lifecycle part of summarize.py: start, suspend+resume, destroy and service restart of the
qemu driver, next to the floor (the driver's own QEMU command line over raw QMP) and libvirt
(../shared/libvirt-bench/03_start.py) measured in the same run, with the issue's bars.

Inputs in OUTDIR: virtplane.jsonl (scenarios lifecycle, floor, restart) and
libvirt/03_start.json + libvirt/raw/03_start_samples.json (libvirt's samples, in seconds,
from which p90 is computed the way lvbench.py computes its percentiles).
"""
import json
import math
import os
import statistics

# The bars, all through the gateway.
BAR_START_X_FLOOR = 1.25     # start within 1.25x the floor (medians)
BAR_SUSPEND_RESUME_MS = 3.0  # suspend+resume round trip, median, under
BAR_DESTROY_MS = 30.0        # destroy, median, under
BAR_RESTART_MS = 1000.0      # restart with 100 VMs reattached, under


def pct(sorted_vals, p):
    k = max(0, min(len(sorted_vals) - 1, math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def stats_s(samples):
    v = sorted(x * 1000.0 for x in samples)
    if not v:
        return None
    return {"n": len(v), "median_ms": statistics.median(v), "p90_ms": pct(v, 90),
            "p95_ms": pct(v, 95), "p99_ms": pct(v, 99)}


def load(out):
    rows = {}
    try:
        with open(os.path.join(out, "virtplane.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                if r.get("scenario") in ("lifecycle", "floor", "restart"):
                    rows[(r["scenario"], r["label"])] = r
    except OSError:
        pass
    lv = {}
    try:
        with open(os.path.join(out, "libvirt", "raw", "03_start_samples.json")) as f:
            raw = json.load(f)
        for side, ops in raw.items():
            lv[side] = {k: stats_s(v) for k, v in ops.items()}
    except OSError:
        pass
    return rows, lv


def cell(s):
    if not s:
        return "–"
    return f"{s['median_ms']:.2f} / {s['p90_ms']:.2f} / {s['p99_ms']:.2f}"


def med(s):
    return s["median_ms"] if s else None


def fmt(x, d=1):
    return "–" if x is None else f"{x:,.{d}f}"


def yes(ok):
    return "–" if ok is None else ("**yes**" if ok else "**no**")


def section(out, p=print):
    rows, lv = load(out)
    if not rows:
        return
    gw, dr = rows.get(("lifecycle", "gateway")), rows.get(("lifecycle", "direct"))
    shm = rows.get(("lifecycle", "gateway-tmpfs-run"))
    floors = [rows[k] for k in (("floor", "floor"), ("floor", "floor-2")) if k in rows]
    fl = min(floors, key=lambda r: r["start"]["median_ms"]) if floors else None
    rs = rows.get(("restart", "gateway")) or next(
        (r for k, r in rows.items() if k[0] == "restart"), None)
    lp = lv.get("libvirt_python", {})
    lraw = lv.get("raw_libvirt_argv", {})
    dtype = (gw or dr or fl or {}).get("domain_type", "?")

    p(f"## Lifecycle (qemu driver, `<domain type='{dtype}'>`, 03_start.py's minimal domain)\n")
    p("Start = API call until it returns with the guest running; suspend+resume = one Suspend "
      "and one Resume back to back; destroy = API call until it returns, QEMU gone. Floor = "
      "the driver's own command line run directly over raw QMP (spawn → greeting → "
      "qmp_capabilities → cont; stop+cont; SIGTERM → exited); of its two runs (before and "
      "after the API runs) the faster one is the reference. libvirt = `03_start.py` in the same "
      "run (libvirt-python `dom.create()`, `suspend()+resume()`, `destroy()`).\n")

    p("### The bars (through the gateway)\n")
    p("| bar | virtplane gateway (median) | floor | libvirt (same run) | met |")
    p("|---|---|---|---|---|")
    if gw and fl:
        g, f = gw["start"]["median_ms"], fl["start"]["median_ms"]
        p(f"| start within {BAR_START_X_FLOOR}× the floor | {g:.1f} ms = {g / f:.2f}× floor "
          f"| {f:.1f} ms | {fmt(med(lp.get('create')))} ms | {yes(g <= BAR_START_X_FLOOR * f)} |")
        g, f = gw["suspend_resume"]["median_ms"], fl["suspend_resume"]["median_ms"]
        p(f"| suspend+resume < {BAR_SUSPEND_RESUME_MS:.0f} ms | {g:.2f} ms | {f:.2f} ms "
          f"| {fmt(med(lp.get('suspend_resume_rt')), 2)} ms | {yes(g < BAR_SUSPEND_RESUME_MS)} |")
        if shm:
            g = shm["suspend_resume"]["median_ms"]
            p(f"| (for information) suspend+resume, run dir on tmpfs | {g:.2f} ms | | "
              f"| {'would meet' if g < BAR_SUSPEND_RESUME_MS else 'would not meet'} |")
        g, f = gw["destroy"]["median_ms"], fl["destroy"]["median_ms"]
        p(f"| destroy < {BAR_DESTROY_MS:.0f} ms | {g:.1f} ms | {f:.1f} ms "
          f"| {fmt(med(lp.get('destroy')))} ms | {yes(g < BAR_DESTROY_MS)} |")
    if rs and rs.get("with_vms_ready"):
        worst = rs["with_vms_ready"]["max_ms"]
        p(f"| restart with {rs['count']} VMs reattached < {BAR_RESTART_MS / 1000:.0f} s "
          f"(worst of {rs['with_vms_ready']['n']}) | {worst:.0f} ms "
          f"| (no VMs: {rs['baseline_ready']['max_ms']:.0f} ms) | – | "
          f"{yes(worst < BAR_RESTART_MS and rs['vms_kept'])} |")
    p()

    p("### Latency (ms, median / p90 / p99)\n")
    p("| op | virtplane direct | virtplane gateway | gateway, run dir on tmpfs "
      "| floor (driver's argv, raw QMP) | libvirt | libvirt's argv, raw QMP "
      "| minimal argv, raw QMP |")
    p("|---|---|---|---|---|---|---|---|")
    lmin = lv.get("raw_min", {})
    for op, lkey, rkey in [("start", "create", "start"),
                           ("suspend", "suspend", "suspend"),
                           ("resume", "resume", "resume"),
                           ("suspend_resume", "suspend_resume_rt", "suspend_resume_rt"),
                           ("destroy", "destroy", None),
                           ("destroy_exited", None, None)]:
        if op == "destroy_exited":
            p(f"| destroy, until reaped | | | | {cell((fl or {}).get(op))} | | "
              f"{cell(lraw.get('destroy_sigterm'))} | {cell(lmin.get('destroy_sigterm'))} |")
            continue
        raw = (lraw.get(rkey), lmin.get(rkey)) if rkey else (None, None)
        p(f"| {op.replace('_', '+')} | {cell((dr or {}).get(op))} | {cell((gw or {}).get(op))} "
          f"| {cell((shm or {}).get(op))} | {cell((fl or {}).get(op))} | {cell(lp.get(lkey))} "
          f"| {cell(raw[0])} | {cell(raw[1])} |")
    n = lambda r, k: (r or {}).get(k, {}) or {}  # noqa: E731
    p("\nDestroy = until the service's call returns (virtplane; its QEMU counts as gone once "
      "`/proc/PID/stat` says zombie), until `/proc/PID/stat` says zombie (floor), until the call "
      "returns (libvirt); \"until reaped\" = until `waitpid` returns, i.e. every QEMU thread has "
      "exited (the raw columns of 03_start.py measure only this).")
    p(f"\nSamples: virtplane {n(gw, 'start').get('n', '–')} starts × "
      f"{(gw or {}).get('cycles', '–')} suspend+resume; floor {n(fl, 'start').get('n', '–')} "
      f"× {(fl or {}).get('cycles', '–')}; libvirt {n(lp, 'create').get('n', '–')} starts; "
      f"raw destroys rotate SIGTERM / QMP quit / SIGKILL, the SIGTERM ones are shown "
      f"(n={n(lraw, 'destroy_sigterm').get('n', '–')}). The raw libvirt columns start QEMU "
      f"without `-S` (minimal) or with libvirt's argv and `cont`.\n")

    if fl:
        p("### Where the floor's start goes (ms, median / p90 / p99)\n")
        p("| spawn() | socket accepts | greeting | qmp_capabilities | cont | total |")
        p("|---|---|---|---|---|---|")
        ph = fl["start_phases"]
        p("| " + " | ".join(cell(ph.get(k)) for k in
                             ("spawn", "socket", "greeting", "capabilities", "cont")) +
          f" | {cell(fl['start'])} |\n")

    fc = rows.get(("floor", "floor-cgroup"))
    if fc and fc.get("cgroup_place"):
        p(f"Moving a starting QEMU into its own cgroups in every hierarchy (the driver's "
          f"`VmCgroups::place`, after the greeting, as the driver does; floor run "
          f"`--place-cgroup`): {cell(fc['cgroup_place'])} ms; that floor's start: "
          f"{cell(fc['start'])} ms.\n")

    if rs:
        p(f"### Service restart with {rs['count']} VMs (through the gateway)\n")
        p(f"{rs['count']} VMs ({'paused (-S)' if rs['paused'] else 'running'}, "
          f"{rs['qemu_rss_mib']:.0f} MiB RSS in all, started in {rs['start_all_s']:.1f} s); "
          f"`virtplane-domaind` SIGKILLed and started again; time from spawning it until `List` "
          f"shows every VM in its state and `GetInfo` answered for each. QEMU pids unchanged: "
          f"{'yes' if rs['vms_kept'] else '**no**'}.\n")
        p("| round | no VMs: first answer / ready (ms) | with VMs: first answer / listed / ready (ms) |")
        p("|---:|---|---|")
        for i, (b, w) in enumerate(zip(rs["baseline"], rs["with_vms"]), 1):
            p(f"| {i} | {b['first_answer_ms']:.1f} / {b['ready_ms']:.1f} "
              f"| {w['first_answer_ms']:.1f} / {w['listed_ms']:.1f} / {w['ready_ms']:.1f} |")
        p()

    loads = sorted({r[k].split()[0] for r in rows.values()
                    for k in ("loadavg_before", "loadavg_after") if r.get(k)}, key=float)
    if loads:
        p(f"1-min load average during the lifecycle measurements: {loads[0]}–{loads[-1]}.")
    try:
        with open(os.path.join(out, "libvirt", "03_start.json")) as f:
            j = json.load(f)
        p(f"Load average before/after 03_start.py: "
          f"{j.get('load_before', {}).get('loadavg', '?').split()[0]} / "
          f"{j.get('load_after', {}).get('loadavg', '?').split()[0]}.")
    except OSError:
        pass
    p()
