"""Peak memory of `istvt-explain scan` over a folder of junk files: does it stay flat with the count?

Makes folders of N broken ".mp4" files (a deterministic mix of five kinds: empty, random bytes,
a real H.264 video truncated to a third, the same video with 200 random bytes overwritten in its
payload, and a real header followed by random bytes), then runs the scan command on each folder
in a fresh process under GNU time (``/usr/bin/time -v``: the peak resident set size of the largest
process) while sampling the sum over its process tree (workers included), and reads back the table it wrote: every file must have its row.

    python benchmarks/bench_scan_junk.py --counts 10 10000 [--workers 0] --out benchmarks/results/scan_junk

The goal (issue "hostile folders"): 10,000 junk files end with 10,000 rows, peak memory within
100 MB of the scan of 10 files.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from reporting import repo_command

KINDS = ("empty", "random bytes", "truncated to a third", "payload overwritten", "header then random bytes")


def make_junk(folder: Path, count: int, real: bytes, seed: int = 0) -> None:
    """``count`` broken videos, the kinds in turn (file i is of kind i % 5)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        kind = i % len(KINDS)
        if kind == 0:
            data = b""
        elif kind == 1:
            data = rng.randbytes(2048)
        elif kind == 2:
            data = real[: len(real) // 3]
        elif kind == 3:
            broken = bytearray(real)
            for _ in range(200):
                broken[rng.randrange(2000, len(broken))] = rng.randrange(256)
            data = bytes(broken)
        else:
            data = real[:64] + rng.randbytes(4096)
        (folder / f"junk{i:05d}.mp4").write_bytes(data)


def run_scan(folder: Path, out: Path, workers: int) -> dict:
    """One scan under GNU time: wall seconds, peak RSS (MB), exit status and the table's rows."""
    argv = ["/usr/bin/time", "-v", sys.executable, "-c",
            "import sys; from istvt_explain.cli import main; sys.exit(main())",
            "scan", str(folder), "--out", str(out), "--workers", str(workers), "-q"]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tree_peak = 0.0
    while proc.poll() is None:  # the sum over the process tree (workers included), sampled
        tree_peak = max(tree_peak, tree_rss_mb(proc.pid))
        time.sleep(0.1)
    stderr = proc.stderr.read()
    seconds = time.perf_counter() - started
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    errors = Counter(re.sub(r" \(.*|\d+", "#", r["error"]) if r["error"] else f"verdict {r['verdict']}"
                     for r in rows)
    return {"files": sum(1 for _ in folder.iterdir()), "rows": len(rows), "exit": proc.returncode,
            "seconds": round(seconds, 1), "peak_rss_mb": round(int(peak.group(1)) / 1024, 1) if peak else None,
            # a sample can miss the peak of a short run; no sum is below the largest process's peak
            "tree_peak_rss_mb": round(max(tree_peak, int(peak.group(1)) / 1024 if peak else 0.0), 1),
            "outcomes": dict(errors.most_common())}


def tree_rss_mb(root: int) -> float:
    """Resident memory of process ``root`` and all its descendants, in MB (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10, 10000])
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scan_junk")
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        raise SystemExit("bench_scan_junk: GNU time (/usr/bin/time) is needed for the peak memory")
    from istvt_explain.data.demo_video import make_demo_video

    load = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        source = make_demo_video(Path(tmp) / "real.mp4", frames_per_half=24, size=(320, 240)).path
        real = Path(source).read_bytes()
        for count in args.counts:
            folder = Path(tmp) / f"junk{count}"
            make_junk(folder, count, real)
            run = {"count": count, "workers": args.workers, **run_scan(folder, Path(tmp) / f"out{count}",
                                                                          args.workers)}
            print(json.dumps(run), file=sys.stderr)
            runs.append(run)
            shutil.rmtree(folder)
    base = runs[0]["peak_rss_mb"]
    tree_base = runs[0]["tree_peak_rss_mb"]
    for run in runs:
        run["peak_over_first_mb"] = round(run["peak_rss_mb"] - base, 1)
        run["tree_peak_over_first_mb"] = round(run["tree_peak_rss_mb"] - tree_base, 1)
    result = {"command": repo_command("benchmarks/bench_scan_junk.py", sys.argv[1:]),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores visible",
              "load_average": [round(load[0], 1), round(os.getloadavg()[0], 1)], "kinds": list(KINDS), "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"workers{args.workers}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# `istvt-explain scan` over junk files: peak memory (--workers {args.workers})", "",
             f"`{result['command']}` on {result['machine']}, load average {result['load_average'][0]} at the "
             f"start and {result['load_average'][1]} at the end.  Junk kinds in turn: {', '.join(KINDS)}.", "",
             "| files | rows in results.csv | exit | seconds | peak RSS, largest process (MB) | over the first run "
             "| peak RSS, all processes (MB) | over the first run |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['count']:,} | {r['rows']:,} | {r['exit']} | {r['seconds']} | {r['peak_rss_mb']} | "
              f"{r['peak_over_first_mb']:+} | {r['tree_peak_rss_mb']} | {r['tree_peak_over_first_mb']:+} |"
              for r in runs]
    lines += ["", "Largest process: GNU time's maximum resident set size (the largest single process of the run). "
              "All processes: the sum over the scan's process tree (its workers included), sampled every 0.1 s "
              "(at least the largest process's peak: a sample can miss the peak of a short run)."]
    lines += ["", "Outcomes of the largest run (error messages with numbers and details folded):", ""]
    lines += [f"- {outcome}: {n:,}" for outcome, n in runs[-1]["outcomes"].items()]
    (args.out / f"workers{args.workers}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
