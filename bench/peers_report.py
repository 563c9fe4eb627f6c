#!/usr/bin/env python3
"""bench/peers_report.py CSV SVG: the side-by-side table, the ratios and a
bar chart from bench/peers_guest.py's rows.

Prints, per N, one table (cycles down, tools across; seconds and zfs
executions per cell) and the ratios zrelay/bzfs and zrelay/floor per cycle
(below 1: zrelay is faster). Writes a grouped bar chart of the seconds as an
SVG. Exits non-zero when any target failed its check.
"""

import csv
import html
import sys
from collections import OrderedDict

ORDER = ["zrelay", "bzfs", "syncoid", "zfs-autobackup", "floor"]
COLOURS = {"zrelay": "#1f77b4", "bzfs": "#ff7f0e", "syncoid": "#2ca02c",
           "zfs-autobackup": "#9467bd", "floor": "#7f7f7f"}
CYCLES = ["initial", "inc1", "inc2", "noop"]


def load(path):
    runs = OrderedDict()
    failed = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            n = int(row["n"])
            runs.setdefault(n, {})[(row["tool"], row["cycle"])] = (
                float(row["seconds"]), int(row["zfs_execs"]))
            if row["checked"].startswith("FAILED"):
                failed.append(f"N={n} {row['tool']} {row['cycle']}: {row['checked']}")
    return runs, failed


def table(n, cells):
    tools = [t for t in ORDER if any((t, c) in cells for c in CYCLES)]
    lines = [f"N = {n} filesystems (+ their parent)", "",
             "| cycle | " + " | ".join(tools) + " | zrelay/bzfs | zrelay/floor |",
             "|---" * (len(tools) + 3) + "|"]
    for c in CYCLES:
        row = [c]
        for t in tools:
            v = cells.get((t, c))
            row.append(f"{v[0]:.1f} s, {v[1]}" if v else "—")
        z = cells.get(("zrelay", c))
        for peer in ("bzfs", "floor"):
            p = cells.get((peer, c))
            row.append(f"{z[0] / p[0]:.2f}" if z and p and p[0] > 0.05 else "—")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def svg(runs):
    bar, gap, group_gap, height, top, left = 14, 2, 24, 260, 30, 60
    groups = [(n, c) for n in runs for c in CYCLES]
    width = max(720, left + 20 + sum(
        group_gap + len([t for t in ORDER if (t, c) in runs[n]]) * (bar + gap)
        for n, c in groups))
    peak = max((v[0] for cells in runs.values() for v in cells.values()), default=1.0)
    scale = (height - top - 40) / peak
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 60}" '
           f'font-family="sans-serif" font-size="10">',
           f'<text x="{left}" y="16" font-size="13">seconds per cycle (lower is better); '
           f'the number above a bar is its zfs executions</text>']
    base = height - 20
    out.append(f'<line x1="{left - 5}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="black"/>')
    for k in range(5):
        v = peak * k / 4
        y = base - v * scale
        label = f"{v:.1f}" if peak < 20 else f"{v:.0f}"
        out.append(f'<text x="{left - 8}" y="{y + 3:.0f}" text-anchor="end">{label}</text>')
        out.append(f'<line x1="{left - 5}" y1="{y:.0f}" x2="{width - 10}" y2="{y:.0f}" '
                   f'stroke="#ddd"/>')
    x = left
    for n, c in groups:
        x += group_gap
        x0 = x
        for t in ORDER:
            v = runs[n].get((t, c))
            if not v:
                continue
            h = v[0] * scale
            out.append(f'<rect x="{x}" y="{base - h:.1f}" width="{bar}" height="{h:.1f}" '
                       f'fill="{COLOURS[t]}"><title>{html.escape(t)} N={n} {c}: '
                       f'{v[0]:.1f} s, {v[1]} zfs</title></rect>')
            out.append(f'<text x="{x + bar / 2}" y="{base - h - 3:.1f}" text-anchor="middle" '
                       f'font-size="7">{v[1]}</text>')
            x += bar + gap
        out.append(f'<text x="{(x0 + x) / 2:.0f}" y="{base + 14}" text-anchor="middle">'
                   f'{c}</text>')
        out.append(f'<text x="{(x0 + x) / 2:.0f}" y="{base + 26}" text-anchor="middle" '
                   f'fill="#555">N={n}</text>')
    lx = left
    for t in ORDER:
        out.append(f'<rect x="{lx}" y="{height + 36}" width="10" height="10" fill="{COLOURS[t]}"/>')
        out.append(f'<text x="{lx + 14}" y="{height + 45}">{t}</text>')
        lx += 110
    out.append("</svg>")
    return "\n".join(out)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: peers_report.py CSV SVG")
    runs, failed = load(sys.argv[1])
    for n, cells in runs.items():
        print(table(n, cells))
        print()
    with open(sys.argv[2], "w") as f:
        f.write(svg(runs))
    print(f"chart: {sys.argv[2]}")
    if failed:
        print("TARGETS THAT DID NOT CHECK OUT:\n  " + "\n  ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
