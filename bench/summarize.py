#!/usr/bin/env python3
"""Markdown summary of one bench/run.sh results directory: virtplane (direct and through
the gateway) next to libvirt measured in the same run, with ratios and the issue's bars.

usage: summarize.py OUTDIR > OUTDIR/summary.md

The lifecycle part (qemu driver, floor, 03_start.py) is summarize_lifecycle.py's.

Inputs (all optional except virtplane.jsonl):
  virtplane.jsonl              virtplane-bench JSON lines
  libvirt/02_rpc.json          ../shared/libvirt-bench/02_rpc.py output
  virtctl_list_all_N.json      hyperfine export (times in s) of `virtctl list --all`
  virsh_list_all_N.json        the same for `virsh -c qemu:///system list --all`
Ratios are "virtplane is x times better": ops/s divided by libvirt's, or libvirt's latency
divided by virtplane's.
"""
import glob
import json
import os
import statistics
import sys

import summarize_lifecycle

# The bars, all through the gateway.
BAR_LOOKUP_INFO_8 = 15000.0   # lookup+info calls/s, 8 clients, at least
BAR_LIST_1000_MS = 2.0        # List of 1000 domains, median ms, under
BAR_DEFINE_8 = 1000.0         # durable define+undefine/s, 8 clients, at least
BAR_VIRTCTL_MS = 30.0         # `virtctl list --all` with 1000 domains, median ms, under

# virtplane scenario -> libvirt 02_rpc.py kind; clients -> libvirt mode
LV_KIND = {"lookup-info": "lookup_info", "info": "lookup_info",
           "list": "list_all", "define-undefine": "define_undefine"}
LV_MODE = {1: "1thr", 8: "8thr_conn_each"}


def load_virtplane(out):
    rows = {}
    with open(os.path.join(out, "virtplane.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if "ops_per_s_median" in r:
                rows[(r["scenario"], r["label"], r["clients"], r["domains"])] = r
    return rows


def load_libvirt(out):
    try:
        with open(os.path.join(out, "libvirt", "02_rpc.json")) as f:
            return json.load(f)
    except OSError:
        return None


def lv_row(lv, kind, clients, count):
    if not lv:
        return None
    return lv["by_count"].get(str(count), {}).get(f"{LV_KIND[kind]}/{LV_MODE[clients]}")


def cmd_median_ms(out, name):
    try:
        with open(os.path.join(out, f"{name}.json")) as f:
            times = json.load(f)["results"][0]["times"]
    except (OSError, KeyError, IndexError):
        return None
    v = sorted(t * 1000.0 for t in times)
    return {"median_ms": statistics.median(v),
            "p95_ms": v[max(0, -(-95 * len(v) // 100) - 1)], "n": len(v)}


def fmt(x, digits=1):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if not a or not b:
        return "–"
    return f"{a / b:.1f}×"


def main():
    out = sys.argv[1]
    vp = load_virtplane(out)
    lv = load_libvirt(out)
    counts = sorted({k[3] for k in vp})
    p = print

    p(f"# virtplane vs libvirt — `{os.path.basename(os.path.normpath(out))}`\n")
    try:
        p("```\n" + open(os.path.join(out, "env.txt")).read().strip() + "\n```\n")
    except OSError:
        pass

    if vp:
        rpc_sections(out, vp, lv, counts)
    summarize_lifecycle.section(out)


def rpc_sections(out, vp, lv, counts):
    """The RPC part: bars, throughput, latency, whole commands."""
    p = print
    # ------------------------------------------------------------- bars
    p("## The bars (through the gateway)\n")
    p("| bar | virtplane gateway | libvirt (same run) | virtplane ÷ libvirt | met |")
    p("|---|---|---|---|---|")

    def worst(scenario, clients):
        got = [(vp[k]["ops_per_s_median"], k[3]) for k in vp
               if k[0] == scenario and k[1] == "gateway" and k[2] == clients]
        return min(got) if got else (None, None)

    for scen, clients, bar, what in [
        ("lookup-info", 8, BAR_LOOKUP_INFO_8, "lookup+info calls/s, 8 clients"),
        ("define-undefine", 8, BAR_DEFINE_8, "durable define+undefine/s, 8 clients"),
    ]:
        v, n = worst(scen, clients)
        lvr = lv_row(lv, scen, clients, n) if n is not None else None
        lvv = lvr["ops_per_s_median"] if lvr else None
        met = "–" if v is None else ("**yes**" if v >= bar else "**no**")
        p(f"| ≥ {bar:,.0f} {what} (worst of {len(counts)} populations: {n} domains) "
          f"| {fmt(v, 0)} | {fmt(lvv, 0)} | {ratio(v, lvv)} | {met} |")
    v, n = worst("info", 8)
    if v is not None:
        lvr = lv_row(lv, "info", 8, n)
        lvv = lvr["ops_per_s_median"] if lvr else None
        p(f"| (for information) GetInfo by name alone, 1 RPC with what lookup+info returns, "
          f"8 clients (worst: {n} domains) | {fmt(v, 0)} | {fmt(lvv, 0)} (lookup+info) "
          f"| {ratio(v, lvv)} | {'would meet' if v >= BAR_LOOKUP_INFO_8 else 'would not meet'} |")
    n = max(counts) if counts else None
    r = vp.get(("list", "gateway", 1, n))
    v = r["latency"]["median_ms"] if r and r.get("latency") else None
    lvr = lv_row(lv, "list", 1, n)
    lvv = lvr["median_ms"] if lvr else None
    met = "–" if v is None else ("**yes**" if v < BAR_LIST_1000_MS else "**no**")
    p(f"| List of {n} domains < {BAR_LIST_1000_MS} ms median (1 client) | {fmt(v, 3)} ms "
      f"| {fmt(lvv, 3)} ms | {ratio(lvv, v)} faster | {met} |")
    vc = cmd_median_ms(out, f"virtctl_list_all_{n}")
    vs = cmd_median_ms(out, f"virsh_list_all_{n}")
    vcm, vsm = (vc or {}).get("median_ms"), (vs or {}).get("median_ms")
    met = "–" if vcm is None else ("**yes**" if vcm < BAR_VIRTCTL_MS else "**no**")
    p(f"| `virtctl list --all` with {n} domains < {BAR_VIRTCTL_MS:.0f} ms (whole command, "
      f"median) | {fmt(vcm, 1)} ms | `virsh list --all`: {fmt(vsm, 1)} ms "
      f"| {ratio(vsm, vcm)} faster | {met} |")
    p()

    # ------------------------------------------------------------- throughput
    p("## Throughput (ops/s, median of trials)\n")
    p("One op = one libvirt call sequence: lookup-info = Lookup+GetInfo (2 RPCs; libvirt "
      "lookupByName+info), info = GetInfo alone (1 RPC, compared with libvirt's lookupByName+info, "
      "which is how libvirt gets the same information), list = List all (1 RPC), "
      "define-undefine = Define+Undefine (2 durable RPCs). libvirt: 1 thread, or 8 threads "
      "with a connection each; virtplane: 1 or 8 clients with a connection each.\n")
    p("| domains | op | clients | direct | gateway | libvirt | gateway ÷ libvirt |")
    p("|---:|---|---:|---:|---:|---:|---:|")
    for n in counts:
        for scen in ("lookup-info", "info", "list", "define-undefine"):
            for c in (1, 8):
                d, g = vp.get((scen, "direct", c, n)), vp.get((scen, "gateway", c, n))
                if not d and not g:
                    continue
                lvr = lv_row(lv, scen, c, n)
                lvv = lvr["ops_per_s_median"] if lvr else None
                dv = d["ops_per_s_median"] if d else None
                gv = g["ops_per_s_median"] if g else None
                p(f"| {n} | {scen} | {c} | {fmt(dv, 0)} | {fmt(gv, 0)} | {fmt(lvv, 0)} "
                  f"| {ratio(gv, lvv)} |")
    p()

    # ------------------------------------------------------------- latency
    p("## Latency per op (ms, median / nearest-rank p95 over all samples)\n")
    p("| domains | op | clients | direct | gateway | libvirt | libvirt ÷ gateway (median) |")
    p("|---:|---|---:|---:|---:|---:|---:|")
    for n in counts:
        for scen in ("lookup-info", "info", "list", "define-undefine"):
            for c in (1, 8):
                d, g = vp.get((scen, "direct", c, n)), vp.get((scen, "gateway", c, n))
                if not d and not g:
                    continue
                lvr = lv_row(lv, scen, c, n)

                def ml(r):
                    if not r:
                        return "–", None
                    s = r.get("latency") or r
                    return f"{s['median_ms']:.3f} / {s['p95_ms']:.3f}", s["median_ms"]
                ds, _ = ml(d)
                gs, gm = ml(g)
                ls, lm = ml(lvr)
                p(f"| {n} | {scen} | {c} | {ds} | {gs} | {ls} | {ratio(lm, gm)} |")
    p()

    # ------------------------------------------------------------- whole commands
    p("## Whole commands (ms, median / p95)\n")
    p("| domains | `virtctl list --all` (gateway) | `virsh list --all` | virsh ÷ virtctl |")
    p("|---:|---:|---:|---:|")
    for n in counts:
        vc = cmd_median_ms(out, f"virtctl_list_all_{n}")
        vs = cmd_median_ms(out, f"virsh_list_all_{n}")
        lvr = (lv or {}).get("by_count", {}).get(str(n), {}).get("virsh_list_all")
        if not vs and lvr:
            vs = lvr  # 02_rpc.py's own timing of the same command
        cell = (lambda s: f"{s['median_ms']:.1f} / {s['p95_ms']:.1f}" if s else "–")
        p(f"| {n} | {cell(vc)} | {cell(vs)} | "
          f"{ratio((vs or {}).get('median_ms'), (vc or {}).get('median_ms'))} |")
    p()

    loads = sorted({r["loadavg_before"].split()[0] for r in vp.values()} |
                   {r["loadavg_after"].split()[0] for r in vp.values()}, key=float)
    if loads:
        p(f"1-min load average during the virtplane measurements: {loads[0]}–{loads[-1]} "
          f"(2 vCPUs; the machine is shared).")
    if lv:
        lb = lv.get("load_before", {}).get("loadavg", "?").split()[0]
        la = lv.get("load_after", {}).get("loadavg", "?").split()[0]
        p(f"Load average before/after the libvirt measurements: {lb} / {la}.")
    extra = sorted(glob.glob(os.path.join(out, "*.json")))
    if extra:
        p("\nRaw files: " + ", ".join(f"`{os.path.basename(x)}`" for x in extra) +
          ", `virtplane.jsonl`, `libvirt/`.")


if __name__ == "__main__":
    main()
