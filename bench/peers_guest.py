#!/usr/bin/env python3
"""bench/peers_guest.py: the side-by-side benchmark's part inside the guest.

bench/peers boots the bench image (the test image plus syncoid, bzfs,
zfs-autobackup and process accounting) and runs this once. For each N it
builds one source tree per tool (`bsrc/<tool>/data` with N children, a 4 KiB
and a 2 KiB file in each), so that no tool sees another's snapshots, and
runs every tool with its defaults through four cycles:

- initial: everything up to `@s1`, into an empty target;
- inc1, inc2: 4 KiB more in every filesystem, then `zfs snapshot -r @s2`
  (`@s3`), replicated incrementally;
- noop: nothing new.

Each run is timed (wall clock) and its zfs executions are counted with BSD
process accounting (`accton`, `lastcomm --command zfs`), which costs the
tools nothing. After the last incremental and again after the no-op run,
every target is checked snapshot by snapshot: each filesystem's newest
source snapshot (`@s3`, or zfs-autobackup's own newest) is on the target
with the same GUID. A row that fails the check says so; the host refuses to
report a run with an unchecked target.

The floor is a serial shell loop of one `zfs send [-i] | zfs recv -u` per
filesystem, parents first: what any tool must at least do, one filesystem
at a time.

Writes CSV rows `n,tool,cycle,seconds,zfs_execs,checked` to --out.
"""

import argparse
import csv
import os
import subprocess
import sys
import time

SRC, DST = "bsrc", "bdst"
CYCLES = [("initial", "s1"), ("inc1", "s2"), ("inc2", "s3"), ("noop", None)]
# On a tmpfs where there is one: accounting pauses when the file's
# filesystem runs low, and the pools' files share the guest's disk.
PACCT = ("/run" if os.path.ismount("/run") else "/var/tmp") + "/zrelay-bench.pacct"


def sh(script):
    """Run a bash script; its stdout, or exit with its stderr."""
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench: failed ({r.returncode}): {script[:300]}\n{r.stderr[-2000:]}")
    return r.stdout


def log(msg):
    print(f"bench [{time.monotonic() - STARTED:7.1f}s] {msg}", flush=True)


def children(n):
    return [f"fs{i:04d}" for i in range(n)]


def make_pools(vdev_dir):
    """Two pools on sparse files. Their size is bounded by the free space of
    the guest's disk, so that even files written full leave room: BSD
    accounting pauses below 2 % free (and would count nothing), and a file
    vdev that cannot grow suspends its pool."""
    os.makedirs(vdev_dir, exist_ok=True)
    for pool in (SRC, DST):
        sh(f"zpool destroy -f {pool} 2>/dev/null || true; rm -f {vdev_dir}/{pool}.img")
    st = os.statvfs(vdev_dir)
    free = st.f_bavail * st.f_frsize
    size = min(4 << 30, (free - (512 << 20)) // 2)
    if size < 512 << 20:
        sys.exit(f"bench: {free >> 20} MiB free in {vdev_dir}, too little for two pools")
    log(f"two pools of {size >> 20} MiB on {vdev_dir} ({free >> 20} MiB free)")
    for pool in (SRC, DST):
        sh(f"truncate -s {size} {vdev_dir}/{pool}.img; "
           f"zpool create -f -o cachefile=none -m /{pool} {pool} {vdev_dir}/{pool}.img")


def make_tree(tool, n):
    """bsrc/<tool>/data and its N children, each with two files, at @s1."""
    root = f"{SRC}/{tool}/data"
    lines = [f"zfs create -p {root}"]
    for c in children(n):
        lines.append(f"zfs create {root}/{c}")
        lines.append(f"head -c 4096 /dev/urandom > /{root}/{c}/a; head -c 2048 /dev/urandom > /{root}/{c}/b")
    lines.append(f"zfs snapshot -r {root}@s1")
    sh("\n".join(lines))
    if tool == "zfs-autobackup":
        sh(f"zfs set autobackup:bench=true {root}")
    sh(f"zfs create -p {DST}/{tool}")


def change_and_snapshot(tool, n, snap):
    root = f"{SRC}/{tool}/data"
    lines = [f"head -c 4096 /dev/urandom >> /{root}/{c}/a" for c in children(n)]
    lines.append(f"zfs snapshot -r {root}@{snap}")
    sh("\n".join(lines))


def floor_script(n, cycle, snap, prev):
    src, dst = f"{SRC}/floor/data", f"{DST}/floor/data"
    pairs = [(src, dst)] + [(f"{src}/{c}", f"{dst}/{c}") for c in children(n)]
    if cycle == "initial":
        return "\n".join(f"zfs send {s}@{snap} | zfs recv -u {d}" for s, d in pairs)
    if snap is None:
        return "true"
    return "\n".join(f"zfs send -i @{prev} {s}@{snap} | zfs recv -u {d}" for s, d in pairs)


def command(tool, n, cycle, snap, prev):
    root = f"{SRC}/{tool}/data"
    if tool == "zrelay":
        return [os.environ.get("ZRELAY_BIN", "zrelay"), "replicate", "--job", "bench",
                "--from", root, "--to", f"{DST}/zrelay"]
    if tool == "bzfs":
        return ["bzfs", root, f"{DST}/bzfs/data", "--recursive"]
    if tool == "syncoid":
        return ["syncoid", "--recursive", "--no-privilege-elevation", root, f"{DST}/syncoid/data"]
    if tool == "zfs-autobackup":
        return ["zfs-autobackup", "bench", f"{DST}/zfs-autobackup", "--no-progress"]
    if tool == "floor":
        return ["bash", "-euo", "pipefail", "-c", floor_script(n, cycle, snap, prev)]
    raise SystemExit(f"bench: unknown tool {tool}")


def target_root(tool):
    """Where the tool puts bsrc/<tool>/data."""
    if tool in ("zrelay", "zfs-autobackup"):
        return f"{DST}/{tool}/{SRC}/{tool}/data"
    return f"{DST}/{tool}/data"


def timed_and_counted(argv):
    """(seconds, zfs executions, output tail) of one run."""
    sh(f"rm -f {PACCT}; touch {PACCT}; accton {PACCT}")
    t = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True)
    secs = time.monotonic() - t
    sh("accton off")
    execs = int(sh(f"lastcomm --file {PACCT} --command zfs | wc -l").strip())
    if execs == 0 and argv[0] != "bash":
        log(f"warning: no zfs execution recorded for {argv[0]} "
            f"(accounting paused? {sh('df -h /var/tmp /run | tail -n +2').strip()})")
    if r.returncode != 0:
        sys.exit(f"bench: {argv[0]} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return secs, execs


def guids(root):
    out = sh(f"zfs list -H -p -r -t snapshot -o name,guid {root}")
    got = {}
    for line in out.splitlines():
        name, guid = line.split("\t")
        got[name] = guid
    return got


def check(tool, n, snap):
    """Every filesystem's newest source snapshot is on the target, same GUID.
    Returns None when it checks out, else what is wrong."""
    src_root, dst_root = f"{SRC}/{tool}/data", target_root(tool)
    src, dst = guids(src_root), guids(dst_root)
    fss = [""] + [f"/{c}" for c in children(n)]
    for fs in fss:
        if tool == "zfs-autobackup":
            own = sorted(k.split("@", 1)[1] for k in src if k.startswith(f"{src_root}{fs}@bench-"))
            if not own:
                return f"{src_root}{fs} has no zfs-autobackup snapshot"
            want = own[-1]
        else:
            want = snap
        s, d = src.get(f"{src_root}{fs}@{want}"), dst.get(f"{dst_root}{fs}@{want}")
        if s is None or s != d:
            return f"{dst_root}{fs}@{want}: guid {d} on the target, {s} on the source"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--vdev-dir", default="/var/tmp/zrelay-bench")
    ap.add_argument("--run", action="append", required=True,
                    help="N:tool,tool,... (repeatable)")
    args = ap.parse_args()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["n", "tool", "cycle", "seconds", "zfs_execs", "checked"])
        for spec in args.run:
            n_s, tools_s = spec.split(":", 1)
            n, tools = int(n_s), tools_s.split(",")
            make_pools(args.vdev_dir)
            for tool in tools:
                log(f"N={n}: creating the source tree of {tool}")
                make_tree(tool, n)
            prev = None
            for cycle, snap in CYCLES:
                for tool in tools:
                    if snap and cycle != "initial":
                        change_and_snapshot(tool, n, snap)
                for tool in tools:
                    secs, execs = timed_and_counted(command(tool, n, cycle, snap, prev))
                    checked = "-"
                    if cycle in ("inc2", "noop"):
                        bad = check(tool, n, "s3")
                        checked = "ok" if bad is None else f"FAILED: {bad}"
                    log(f"N={n} {tool} {cycle}: {secs:.1f}s, {execs} zfs executions, check {checked}")
                    out.writerow([n, tool, cycle, f"{secs:.2f}", execs, checked])
                    f.flush()
                if snap:
                    prev = snap
            sh(f"zpool destroy -f {SRC}; zpool destroy -f {DST}")


STARTED = time.monotonic()
if __name__ == "__main__":
    main()
