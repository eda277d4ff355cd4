"""Videos per hour of `istvt-explain scan` on this machine, with the bundled demo weights.

Generates N short face videos (640x360, 25 fps, one real face panning and zooming), then times
the scan command end to end (a fresh process each: imports and model loading included, as a
user waits for them) with and without a worker process finding the faces of the next video.

    python benchmarks/bench_scan.py [--videos 8] [--frames 75] [--workers 0 1] [--out benchmarks/results/scan_cpu.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from istvt_explain.data.media import make_face_video


def run_scan(inputs: Path, out: Path, workers: int, method: str) -> float:
    argv = [sys.executable, "-c", "import sys; from istvt_explain.cli import main; sys.exit(main())",
            "scan", str(inputs), "--out", str(out), "--workers", str(workers), "--method", method, "-q"]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=75, help="frames per video (75 = 3 s at 25 fps)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--method", default="relevance")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scan_cpu.md")
    args = parser.parse_args()
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "videos"
        inputs.mkdir()
        for i in range(args.videos):
            make_face_video(inputs / f"v{i:02d}.mp4", frames=args.frames, size=(640, 360), fps=25.0,
                            period=3.0 + i % 3)
        for workers in args.workers:
            seconds = run_scan(inputs, Path(tmp) / f"results-{workers}", workers, args.method)
            rows.append((workers, seconds))
            print(f"workers {workers}: {seconds:.1f} s, {args.videos * 3600 / seconds:.0f} videos/hour",
                  file=sys.stderr)
    end_load = os.getloadavg()
    lines = [
        "# `istvt-explain scan`: videos per hour on the CPU",
        "",
        f"`python benchmarks/bench_scan.py --videos {args.videos} --frames {args.frames} --method {args.method}`: "
        f"{args.videos} generated 640x360 face videos of {args.frames} frames ({args.frames / 25:.0f} s at 25 fps), "
        "the bundled demo weights (tiny preset), default options (detect every 3rd frame), one run of the whole "
        "command each (process start, imports, model loading, reports, thumbnails, table and index included).",
        "",
        f"{platform.machine()}, {os.cpu_count()} cores visible, niceness {os.nice(0)}, load average {load[0]:.1f} at "
        f"the start and {end_load[0]:.1f} at the end (a shared machine: other jobs took part of the cores; "
        "`benchmarks/results/e2e_cpu.md` measured 47 frames/s for the same job on a quiet machine). Rerun on an "
        "idle machine before quoting.",
        "",
        "| workers | seconds | seconds per video | videos per hour | frames per second |",
        "|---|---|---|---|---|",
    ]
    for workers, seconds in rows:
        lines.append(f"| {workers} | {seconds:.1f} | {seconds / args.videos:.2f} | {args.videos * 3600 / seconds:.0f} "
                     f"| {args.videos * args.frames / seconds:.1f} |")
    lines += ["", "`--workers 1` decodes the next video and finds its faces in another process while the model "
              "explains the current one: it can only gain where a core is free, and it costs one more process "
              "start (torch's import, seconds). Clips are batched across videos in both rows.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
