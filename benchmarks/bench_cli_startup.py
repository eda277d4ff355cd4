"""How fast the command line answers when it has nothing heavy to do: help, version, bad input.

Why: these answers must come in under a second (issue 13), which holds only while torch, timm,
Captum, OpenCV and matplotlib are imported where they are used, never at ``import istvt_explain``.
Each case runs as a fresh process (what a user waits for, interpreter start included); the
median of several runs is reported, with the slowest, because the machine is shared.

    python benchmarks/bench_cli_startup.py [--runs 7] [--out benchmarks/results/cli_startup.md]
        [--baseline DIR]   # also time another checkout of the package, e.g. `git archive HEAD | tar -x -C DIR`

The command line runs as ``python -c "from istvt_explain.cli import main; ..."`` (what the console
script does), so that ``--baseline`` can time another copy of the code through ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 1.0
REPO = Path(__file__).resolve().parents[1]


def _command() -> list[str]:
    return [sys.executable, "-c", "import sys; from istvt_explain.cli import main; sys.exit(main())"]


def cases(scratch: Path) -> dict[str, list[str]]:
    cli = _command()
    video = scratch / "clip.mp4"
    video.write_bytes(b"not looked at: the output's extension is refused first")
    return {
        "python -c pass (the interpreter alone)": [sys.executable, "-c", "pass"],
        "python -c 'import istvt_explain'": [sys.executable, "-c", "import istvt_explain"],
        "python -c 'import torch' (for scale)": [sys.executable, "-c", "import torch"],
        "istvt-explain --help": [*cli, "--help"],
        "istvt-explain --version": [*cli, "--version"],
        "istvt-explain VIDEO --help": [*cli, str(video), "--help"],
        "istvt-explain missing.mp4 --out x.mp4": [*cli, str(scratch / "missing.mp4"), "--out", str(scratch / "x.mp4")],
        "istvt-explain VIDEO --out x.avi": [*cli, str(video), "--out", str(scratch / "x.avi")],
        "istvt-explain scan missing/ --out R/": [*cli, "scan", str(scratch / "missing"), "--out", str(scratch / "R")],
        "istvt-explain train --help": [*cli, "train", "--help"],
        "istvt-explain model-info --help (imports torch: not ours)": [*cli, "model-info", "--help"],
    }


def time_case(argv: list[str], runs: int, pythonpath: Path | None = None) -> tuple[float, float, int]:
    """(median, slowest) wall seconds over ``runs`` fresh processes, and the last exit status."""
    times, code = [], 0
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    cwd = tempfile.gettempdir()  # not the repository: `python -c` puts the working folder first on sys.path
    subprocess.run(argv, capture_output=True, env=env, cwd=cwd)  # warm the file cache once, untimed
    for _ in range(runs):
        start = time.perf_counter()
        code = subprocess.run(argv, capture_output=True, env=env, cwd=cwd).returncode
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times), code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cli_startup.md")
    parser.add_argument("--baseline", type=Path, help="another checkout to time as well (its PYTHONPATH)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in cases(Path(tmp)).items():
            median, slowest, code = time_case(argv, args.runs, REPO)
            base = time_case(argv, args.runs, args.baseline.resolve())[0] if args.baseline else None
            rows.append((name, median, slowest, code, base))
            print(f"{name:45s} median {median:.3f} s  slowest {slowest:.3f} s  exit {code}"
                  + (f"  baseline median {base:.3f} s" if base is not None else ""), file=sys.stderr)
    lines = [
        "# Command-line startup: help, version and bad input",
        "",
        f"`python benchmarks/bench_cli_startup.py --runs {args.runs}`: each case a fresh process, median and "
        f"slowest of {args.runs} runs (after one untimed warm-up run). Goal: under {GOAL_S:g} s for every "
        "`istvt-explain` row.",
        "",
        f"{platform.machine()}, {os.cpu_count()} cores visible, Python {platform.python_version()}, load average "
        f"{load:.1f} at the start (a shared machine).",
        "",
        "| case | median s | slowest s | exit status |" + (" baseline median s |" if args.baseline else ""),
        "|---|---|---|---|" + ("---|" if args.baseline else ""),
    ]
    lines += [f"| {name} | {median:.3f} | {slowest:.3f} | {code} |" + (f" {base:.3f} |" if base is not None else "")
              for name, median, slowest, code, base in rows]
    if args.baseline:
        lines += ["", f"Baseline: the code before the lazy imports (`{args.baseline}`, the last commit without "
                  "them, run the same way in the same session). There `--out x.avi` was not checked (the run "
                  "failed later, on the unreadable input) and `scan` did not exist (read as a missing video): "
                  "those rows time how long it took to fail."]
    lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}", file=sys.stderr)
    slow = [name for name, median, *_ in rows
            if name.startswith("istvt-explain") and "not ours" not in name and median > GOAL_S]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
