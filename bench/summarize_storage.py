#!/usr/bin/env python3
"""Storage part of a bench/run.sh results directory (bench/storage.sh): vol-upload and
vol-download throughput through the gateway and directly on the storage service, next to the
floor (`dd bs=1M conv=fsync` of the same file) and libvirt (`virsh vol-upload/vol-download`)
measured in the same run, with issue 5's bars.

usage: summarize_storage.py --json OUTDIR > OUTDIR/storage.json   (storage.sh does this)
       summarize_storage.py [--header] OUTDIR >> OUTDIR/summary.md
--header first prints the title and env.txt, for a run with no other part to summarize.

Input: OUTDIR/storage_samples.jsonl, one line per timed transfer (seconds = the transfer,
sync_seconds = a `sync -d` of the written file right after it). A contender's durable time is
the sum of the two: dd and virtplane's upload fsync by themselves (their sync is ~0), virsh
and both downloads do not. Throughput is MiB per second of the median time over the runs.
"""
import json
import os
import statistics
import sys

BAR_X_FLOOR = 0.70   # through the gateway, at least this share of the dd floor's throughput
CONTENDERS = ["dd", "virtplane-gateway", "virtplane-direct", "libvirt"]
LABELS = {
    "dd": "floor: `dd bs=1M conv=fsync`",
    "virtplane-gateway": "virtplane, through the gateway",
    "virtplane-direct": "virtplane, storage service directly",
    "libvirt": "libvirt `virsh vol-upload` / `vol-download`",
}
DIRECTIONS = ["upload", "download"]


def aggregate(samples):
    """Per contender and direction: medians over the runs."""
    groups = {}
    for s in samples:
        groups.setdefault((s["contender"], s["direction"]), []).append(s)
    result = {}
    for (contender, direction), runs in groups.items():
        mib = runs[0]["bytes"] / 2**20
        secs = statistics.median(r["seconds"] for r in runs)
        durable = statistics.median(r["seconds"] + r["sync_seconds"] for r in runs)
        result.setdefault(contender, {})[direction] = {
            "runs": len(runs),
            "mib": mib,
            "seconds_median": secs,
            "sync_seconds_median": statistics.median(r["sync_seconds"] for r in runs),
            "durable_seconds_median": durable,
            "mib_per_s": mib / secs,
            "durable_mib_per_s": mib / durable,
            "durable_mib_per_s_min": min(mib / (r["seconds"] + r["sync_seconds"]) for r in runs),
            "durable_mib_per_s_max": max(mib / (r["seconds"] + r["sync_seconds"]) for r in runs),
            "client_cpu_s_median": statistics.median(r["client_cpu_s"] for r in runs),
            "server_cpu_s_median": statistics.median(r["server_cpu_s"] for r in runs),
            "server_cpu_s_by_median": {
                name: statistics.median(r.get("server_cpu_s_by", {}).get(name, 0.0) for r in runs)
                for name in runs[0].get("server_cpu_s_by", {})},
            "loadavg_1min": [float(r[k].split()[0]) for r in runs
                             for k in ("loadavg_before", "loadavg_after")],
        }
    floor = result.get("dd", {})
    for per in result.values():
        for direction, agg in per.items():
            f = floor.get(direction)
            agg["x_floor"] = agg["durable_mib_per_s"] / f["durable_mib_per_s"] if f else None
    return result


def bars(agg):
    """The issue's bars, through the gateway, on durable figures (libvirt: also as it is)."""
    gw, lv = agg.get("virtplane-gateway", {}), agg.get("libvirt", {})
    out = {}
    for d in DIRECTIONS:
        g = gw.get(d)
        if not g:
            continue
        entry = {"x_floor": g["x_floor"],
                 "x_floor_met": None if g["x_floor"] is None else g["x_floor"] >= BAR_X_FLOOR}
        if d in lv:
            entry["x_libvirt_durable"] = g["durable_mib_per_s"] / lv[d]["durable_mib_per_s"]
            entry["x_libvirt_as_is"] = g["mib_per_s"] / lv[d]["mib_per_s"]
            entry["faster_than_libvirt"] = entry["x_libvirt_durable"] > 1.0
        out[d] = entry
    return out


def load(out):
    with open(os.path.join(out, "storage_samples.jsonl")) as f:
        samples = [json.loads(line) for line in f if line.strip()]
    agg = aggregate(samples)
    return {"bar_x_floor": BAR_X_FLOOR, "aggregates": agg, "bars": bars(agg), "samples": samples}


def fmt(x, digits=0):
    return "–" if x is None else f"{x:,.{digits}f}"


def yes(ok):
    return "–" if ok is None else ("**yes**" if ok else "**no**")


def section(out, p=print):
    path = os.path.join(out, "storage.json")
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
    elif os.path.exists(os.path.join(out, "storage_samples.jsonl")):
        data = load(out)
    else:
        return
    agg, bar = data["aggregates"], data["bars"]
    any_run = next(iter(next(iter(agg.values())).values()))
    mib, runs = any_run["mib"], any_run["runs"]
    loads = [x for per in agg.values() for a in per.values() for x in a["loadavg_1min"]]

    p(f"## Storage transfers ({mib:,.0f} MiB dense file, median of {runs} run(s))\n")
    p("One dense file of random data, warm in the page cache for every contender; every write "
      "goes to the same ext4 file system. Upload = file → new volume; download = volume → new "
      "file (the volume warm in the cache). Durable = the transfer plus a `sync -d` of what it "
      "wrote, timed right after it: dd (`conv=fsync`) and virtplane's upload sync by "
      "themselves, libvirt and both downloads leave it to the sync. Ratios use durable "
      "throughputs.\n")
    p("### The bars (through the gateway)\n")
    p("| bar | virtplane gateway | floor (dd) | libvirt (same run): durable / as is | met |")
    p("|---|---|---|---|---|")
    for d in DIRECTIONS:
        g, f, lv, b = (agg.get("virtplane-gateway", {}).get(d), agg.get("dd", {}).get(d),
                       agg.get("libvirt", {}).get(d), bar.get(d, {}))
        if not g:
            continue
        lv_cell = f"{fmt(lv['durable_mib_per_s'])} / {fmt(lv['mib_per_s'])} MiB/s" if lv else "–"
        p(f"| {d} ≥ {BAR_X_FLOOR:.0%} of the dd floor | {fmt(g['durable_mib_per_s'])} MiB/s "
          f"= **{fmt(b.get('x_floor'), 2)}×** floor | {fmt(f['durable_mib_per_s']) if f else '–'} "
          f"MiB/s | | {yes(b.get('x_floor_met'))} |")
        if lv:
            p(f"| {d} faster than libvirt | {fmt(g['durable_mib_per_s'])} MiB/s = "
              f"**{fmt(b['x_libvirt_durable'], 2)}×** libvirt durable "
              f"({fmt(b['x_libvirt_as_is'], 2)}× as is) | | {lv_cell} "
              f"| {yes(b.get('faster_than_libvirt'))} |")
    p("")
    for d in DIRECTIONS:
        p(f"### {d.capitalize()} (MiB/s of the median time; s = median seconds)\n")
        p("| contender | transfer s | MiB/s | then `sync -d` s | durable MiB/s (runs: min–max) "
          "| ÷ dd floor | CPU s: client / server |")
        p("|---|---:|---:|---:|---:|---:|---:|")
        for c in CONTENDERS:
            a = agg.get(c, {}).get(d)
            if not a:
                continue
            by = a.get("server_cpu_s_by_median") or {}
            server = ("–" if c == "dd" else " + ".join(f"{v:.2f} {k}" for k, v in by.items())
                      or fmt(a["server_cpu_s_median"], 2))
            p(f"| {LABELS[c]} | {a['seconds_median']:.2f} | {fmt(a['mib_per_s'])} "
              f"| {a['sync_seconds_median']:.2f} | {fmt(a['durable_mib_per_s'])} "
              f"({fmt(a.get('durable_mib_per_s_min'))}–{fmt(a.get('durable_mib_per_s_max'))}) "
              f"| {fmt(a['x_floor'], 2)}× | {fmt(a['client_cpu_s_median'], 2)} / {server} |")
        p("")
    p("CPU (medians, seconds for the whole file): client = the command (dd, virtctl, virsh) "
      "and its children; server = each daemon's own threads over the transfer.")
    if loads:
        p(f"1-min load average before/after the transfers: {min(loads):.2f}–{max(loads):.2f} "
          "(2 vCPUs; the machine is shared).\n")


def main():
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--json":
        json.dump(load(args[1]), sys.stdout, indent=1)
        print()
        return
    header = bool(args) and args[0] == "--header"
    if header:
        args = args[1:]
    if len(args) != 1:
        sys.exit(__doc__)
    out = args[0]
    if header:
        print(f"# virtplane vs libvirt — `{os.path.basename(os.path.normpath(out))}`\n")
        try:
            with open(os.path.join(out, "env.txt")) as f:
                print("```\n" + f.read().strip() + "\n```\n")
        except OSError:
            pass
    section(out)


if __name__ == "__main__":
    main()
