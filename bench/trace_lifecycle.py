#!/usr/bin/python3
"""Where a virtplane Start, Suspend, Resume and Destroy spend their time, measured from the
domain service's own system calls.

Starts `virtplane-domaind --driver qemu`, warms it up with one lifecycle iteration (so its
threads exist), attaches `strace` to each of its threads (not following forks: QEMU itself
is not traced, since a traced QEMU slows down badly — every signal that kicks a vCPU would stop
it), drives it with `virtplane-bench lifecycle` on its socket, then splits each operation at
the service's system calls into phases and prints the median / p90 of each (ms).
Not part of run.sh: the traced service is slower (every system call of it stops for strace);
use this to attribute, bench/run.sh for the figures.

usage: trace_lifecycle.py [--starts 10] [--cycles 10] [--bin target/release] [--keep DIR]
"""
import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TRACED = "mkdir,clone3,execve,connect,sendto,recvfrom,openat,fsync,rename,writev,kill,unlink,rmdir"
LINE = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(\d+\.\d+) (.*)$")
DURATION = re.compile(r"<(\d+\.\d+)>$")


def parse(path):
    """strace -f -ttt -T lines → calls (pid, name, start, end, text); unfinished calls are
    joined with their resumption."""
    pending, calls = {}, []
    with open(path, errors="replace") as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            pid, t, rest = m.group(1), float(m.group(2)), m.group(3)
            if rest.endswith("<unfinished ...>"):
                pending[pid] = (t, rest)
                continue
            r = re.match(r"<\.\.\. (\w+) resumed>(.*)$", rest)
            if r:
                start, text = pending.pop(pid, (t, r.group(1) + "("))
                calls.append((pid, r.group(1), start, t, text + r.group(2)))
                continue
            name = rest.split("(", 1)[0]
            d = DURATION.search(rest)
            calls.append((pid, name, t, t + (float(d.group(1)) if d else 0.0), rest))
    calls.sort(key=lambda c: c[2])
    return [(p, n, a, b, t.replace('\\"', '"')) for p, n, a, b, t in calls]


def phases(calls, pids):
    """Splits the service's calls into operations and phases (ms)."""
    ours = [c for c in calls if c[0] in pids]
    out = {"start": [], "suspend": [], "resume": [], "destroy": []}
    i = 0

    def find(pred, frm):
        if frm is None:
            return None
        for j in range(frm, len(ours)):
            if pred(ours[j]):
                return j
        return None

    def is_(name, needle=""):
        return lambda c: c[1] == name and needle in c[4]

    status_commit = (is_("openat", ".status.tmp"), is_("fsync"))
    while i < len(ours):
        c = ours[i]
        if c[1] == "mkdir" and "/run/qemu/" in c[4] and "= 0" in c[4]:
            # Start: mkdir run dir ... writev of the response
            marks = {"begin": c[2]}
            j = find(is_("clone3", "CLONE_VFORK"), i)
            k1 = find(lambda x: x[1] == "connect" and "qmp.sock" in x[4] and "= 0" in x[4], j)
            g1 = find(lambda x: x[1] == "recvfrom" and '"QMP"' in x[4], k1)
            rec = find(is_("rename", "process.json"), g1)
            k2 = find(lambda x: x[1] == "connect" and "qmp.sock" in x[4] and "= 0" in x[4], rec)
            caps = find(is_("sendto", "qmp_capabilities"), k2)
            caps_r = find(lambda x: x[1] == "recvfrom" and '"id": 1}' in x[4], caps)
            cont = find(is_("sendto", '"cont"'), caps_r)
            cont_r = find(lambda x: x[1] == "recvfrom" and '"return"' in x[4], cont)
            st0 = find(status_commit[0], cont_r)
            reply = find(lambda x: x[1] == "writev", st0)
            after = find(lambda x: x[1] == "sendto" and '"execute"' in x[4], cont_r + 1
                         if cont_r is not None else None)
            if None in (j, k1, g1, rec, k2, caps, caps_r, cont, cont_r, st0, reply) or (
                    after is not None and after < st0):
                i += 1
                continue
            marks.update({
                "spawned": ours[j][3], "socket": ours[k1][3], "greeting": ours[g1][3],
                "record": ours[find(is_("fsync"), rec)][3],
                "cgroup": ours[k2 - 1][3],
                "connect2": ours[k2][3], "caps": ours[caps_r][3], "cont": ours[cont_r][3],
                "status": ours[reply - 1][3], "reply": ours[reply][2],
            })
            out["start"].append(marks)
            i = reply + 1
            continue
        if c[1] == "sendto" and ('"stop"' in c[4] or '"cont"' in c[4]):
            kind = "suspend" if '"stop"' in c[4] else "resume"
            r = find(lambda x: x[1] == "recvfrom" and '"return"' in x[4], i)
            st0 = find(status_commit[0], r)
            reply = find(lambda x: x[1] == "writev", st0)
            following = find(lambda x: x[1] == "sendto" and '"execute"' in x[4], i + 1)
            if reply is None or (following is not None and following < st0):
                # The commit ran on a thread strace did not attach to (a blocking-pool
                # thread started after the attach): not attributable, skipped.
                i += 1
                continue
            out[kind].append({"begin": c[2], "qmp": ours[r][3], "status_begin": ours[st0][2],
                              "status": ours[reply - 1][3], "reply": ours[reply][2]})
            i = reply + 1
            continue
        if c[1] == "kill" and "SIGTERM" in c[4]:
            un = find(lambda x: x[1] == "unlink" and ".status" in x[4], i)
            reply = find(lambda x: x[1] == "writev", un) if un is not None else None
            if reply is None:
                i += 1
                continue
            rm = [n for n in range(un, reply) if ours[n][1] == "rmdir"]
            out["destroy"].append({"begin": c[2], "gone": ours[un][2],
                                   "status": ours[(rm[0] if rm else reply) - 1][3],
                                   "cleanup": ours[reply - 1][3], "reply": ours[reply][2]})
            i = reply + 1
            continue
        i += 1
    return out


def pct(v, p):
    v = sorted(v)
    return v[max(0, min(len(v) - 1, math.ceil(p / 100 * len(v)) - 1))]


def report(ops):
    names = {
        "start": [("begin", "spawned", "run dir, log header, spawn QEMU"),
                  ("spawned", "socket", "wait for the QMP socket (polled every 10 ms)"),
                  ("socket", "greeting", "QEMU's greeting (1st connection)"),
                  ("greeting", "record", "process.json: write, fsync, rename, fsync dir"),
                  ("record", "cgroup", "cgroup placement (mkdir + cgroup.procs, all hierarchies)"),
                  ("cgroup", "connect2", "2nd QMP connection"),
                  ("connect2", "caps", "greeting + qmp_capabilities"),
                  ("caps", "cont", "cont"),
                  ("cont", "status", "status file: write, fsync, rename, fsync dir"),
                  ("status", "reply", "to the reply"),
                  ("begin", "reply", "total (run dir created → reply written)")],
        "suspend": [("begin", "qmp", "QMP stop"), ("qmp", "status_begin", "to the commit"),
                    ("status_begin", "status", "status file: write, fsync, rename, fsync dir"),
                    ("status", "reply", "to the reply"), ("begin", "reply", "total")],
        "destroy": [("begin", "gone", "SIGTERM → seen gone (polled every 10 ms)"),
                    ("gone", "status", "status file removed, fsync dir"),
                    ("status", "cleanup", "run dir, cgroups"),
                    ("cleanup", "reply", "to the reply"), ("begin", "reply", "total")],
    }
    names["resume"] = [(a, b, d.replace("stop", "cont")) for a, b, d in names["suspend"]]
    for op in ("start", "suspend", "resume", "destroy"):
        rows = ops[op]
        print(f"\n{op} (n={len(rows)}; ms median / p90)")
        for a, b, what in names[op]:
            v = [(r[b] - r[a]) * 1000 for r in rows if a in r and b in r]
            if v:
                print(f"  {statistics.median(v):8.3f} / {pct(v, 90):8.3f}  {what}")


def bench(a, sock, starts, cycles):
    run = subprocess.run(
        [os.path.join(a.bin, "virtplane-bench"), "--server", f"unix:{sock}", "--label",
         "traced", "lifecycle", "--starts", str(starts), "--cycles", str(cycles)],
        capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise SystemExit(f"virtplane-bench failed: {run.stderr.strip()}")
    return run.stdout.strip()


def remove_cgroups(root):
    """The VMs' cgroup root, once their QEMUs are reaped (PID 1 here reaps slowly)."""
    for _ in range(75):
        left = [d for d in (f"/sys/fs/cgroup/{h}/{root}" for h in os.listdir("/sys/fs/cgroup"))
                if os.path.isdir(d)]
        for d in left:
            for c in os.scandir(d):
                if c.is_dir():
                    try:
                        os.rmdir(c.path)
                    except OSError:
                        pass
            try:
                os.rmdir(d)
            except OSError:
                pass
        if not left:
            return
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    # Short on purpose: a blocking-pool thread that the service starts after strace attached
    # (one idle for 10 s exits and is replaced) is not traced, and its operations are skipped.
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "target",
                                                  "release"))
    ap.add_argument("--keep", help="keep the strace log in this directory")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vpbt.")
    log = os.path.join(tmp, "strace.txt")
    sock = os.path.join(tmp, "d.sock")
    root = f"virtplane.bench-trace-{os.getpid()}"
    svc = subprocess.Popen(
        [os.path.join(a.bin, "virtplane-domaind"), "--driver", "qemu",
         "--state-dir", os.path.join(tmp, "s"), "--listen", f"unix:{sock}",
         "--vm-cgroup-root", root],
        stderr=open(os.path.join(tmp, "domaind.log"), "w"))
    tracer = None
    try:
        for _ in range(500):
            if os.path.exists(sock):
                break
            time.sleep(0.02)
        bench(a, sock, 2, 5)  # warm-up: the runtime's and the blocking pool's threads exist
        tasks = os.listdir(f"/proc/{svc.pid}/task")
        tracer = subprocess.Popen(
            ["strace", "-ttt", "-T", "-s", "96", "-e", f"trace={TRACED}", "-o", log] +
            [x for t in tasks for x in ("-p", t)], stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        print(bench(a, sock, a.starts, a.cycles))
    finally:
        if tracer:
            tracer.send_signal(2)  # strace detaches on SIGINT
            tracer.wait(timeout=30)
        svc.terminate()
        svc.wait(timeout=60)
        remove_cgroups(root)
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
        shutil.copy(log, a.keep)
    try:
        calls = parse(log)
        report(phases(calls, {c[0] for c in calls}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
