"""The command end to end, as an earlier revision runs it and as the working tree runs it, in one run.

Why: issue 25's changes (one decode, the device's batch, the clip sources) must not make CPU-only machines
slower, and must not change what the command says.  ``bench_e2e.py`` compares settings inside one tree
(decode once or again); this compares two trees of the repository: a git revision unpacked into a scratch
folder (``--before``) and the working tree.  Each run is a fresh process of ``istvt-explain VIDEO --out
heatmap.mp4 --json report.json`` with ``PYTHONPATH`` pointing at its tree (checked: the process reports
which package it imported).  The two trees alternate, so a change in the machine's load hits both; fastest
of ``--repeats`` per tree.  Besides the speed, one more untimed run per tree writes the maps, and the two
are compared: verdict, clip scores, and the Pearson correlation of every face frame's full-size map.

    python benchmarks/bench_before_after.py --before 375b0e9 --out benchmarks/results/before_after_cpu
    python benchmarks/bench_before_after.py --before 375b0e9 --video my.mp4 --methods rollout --repeats 5 --out OUT
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from reporting import REPO, repo_command, repo_path

# Run inside the child: import the tree's package, say where it came from, then run its command.
CHILD = ("import sys, istvt_explain; print('package:', istvt_explain.__file__, file=sys.stderr); "
         "from istvt_explain.cli import main; sys.exit(main(sys.argv[1:]))")


@dataclass
class Tree:
    """One version of the package: ``root`` holds its ``istvt_explain/``."""

    name: str
    revision: str
    root: Path


@dataclass
class Run:
    wall_s: float
    cpu_s: float  # user + system time of the child process, all threads
    report: dict
    maps: dict[int, np.ndarray]  # frame index -> heatmap, frames with a face (``with_maps`` runs only)


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout.strip()


def unpack(revision: str, folder: Path) -> Tree:
    """The package as it was at ``revision``, written into ``folder`` (``git archive``: no worktree to clean up)."""
    commit = git("rev-parse", "--short", f"{revision}^{{commit}}")
    archive = subprocess.Popen(["git", "-C", str(REPO), "archive", "--format=tar", commit, "istvt_explain"],
                               stdout=subprocess.PIPE)
    with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
        tar.extractall(folder, filter="data")
    if archive.wait() != 0:
        raise SystemExit(f"git archive of {revision} failed")
    return Tree("before", commit, folder)


def working_tree() -> Tree:
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--", "istvt_explain") else ""
    return Tree("after", git("rev-parse", "--short", "HEAD") + dirty, REPO)


def run_command(tree: Tree, video: Path, method: str, detect_every: int, scratch: Path, *,
                with_maps: bool = False) -> Run:
    """One fresh process of the command from ``tree``: its wall and CPU time and its report.

    Timed runs write what the issue's command writes (the heatmap video, and the JSON report to compare
    scores); ``with_maps`` writes the full-size maps instead of the video, for comparing them (a 720p
    video's maps are hundreds of MB, which would weigh on the timing).
    """
    stem = scratch / tree.name
    report, maps = stem.with_suffix(".json"), stem.with_suffix(".npz")
    outputs = ["--maps", str(maps)] if with_maps else ["--out", str(stem.with_suffix(".mp4"))]
    argv = [str(video), *outputs, "--json", str(report), "--method", method, "--detect-every", str(detect_every),
            "--device", "cpu", "--force", "-q"]
    env = {**os.environ, "PYTHONPATH": str(tree.root)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *argv], env=env, cwd=scratch, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{tree.name} ({tree.revision}) failed on {video.name}: {done.stderr.strip()[-500:]}")
    imported = next((line.split(":", 1)[1].strip() for line in done.stderr.splitlines()
                     if line.startswith("package:")), "")
    if not Path(imported).resolve().is_relative_to(tree.root.resolve()):
        raise SystemExit(f"{tree.name} imported {imported}, not its own tree {tree.root}")
    face_maps: dict[int, np.ndarray] = {}
    if with_maps:
        with np.load(maps) as saved:  # one map per video frame; only the frames with a face carry one
            shown = saved["face_frames"] & saved["processed"]
            every_map = saved["maps"]  # float16; read once (each key access reads the whole array)
            face_maps = {int(i): every_map[i] for i in np.flatnonzero(shown)}
        maps.unlink()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu, json.loads(report.read_text()), face_maps)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def compare_reports(before: Run, after: Run) -> dict:
    """What the command says, before against after: the verdict, the scores, the maps."""
    clips_b = [c["fake_probability"] for c in before.report["clips"]]
    clips_a = [c["fake_probability"] for c in after.report["clips"]]
    same_clips = len(clips_b) == len(clips_a)
    shared = sorted(set(before.maps) & set(after.maps))
    correlations = [correlation(before.maps[i], after.maps[i]) for i in shared]
    return {
        "verdict_before": before.report["verdict"], "verdict_after": after.report["verdict"],
        "clips_before": len(clips_b), "clips_after": len(clips_a),
        "max_clip_score_difference": float(np.max(np.abs(np.subtract(clips_b, clips_a)))) if same_clips else None,
        "video_score_difference": abs(before.report["fake_probability"] - after.report["fake_probability"]),
        "map_frames_compared": len(shared), "map_frames_before": len(before.maps), "map_frames_after": len(after.maps),
        "lowest_map_correlation": min(correlations) if correlations else None,
    }


def bench_setting(trees: list[Tree], video: Path, method: str, detect_every: int, repeats: int,
                  scratch: Path) -> dict:
    runs: dict[str, list[Run]] = {tree.name: [] for tree in trees}
    for repeat in range(repeats):
        order = trees if repeat % 2 == 0 else trees[::-1]  # neither tree always runs first
        for tree in order:
            run = run_command(tree, video, method, detect_every, scratch)
            runs[tree.name].append(run)
            print(f"  {video.name} {method} every {detect_every}, {tree.name}: {run.wall_s:.1f} s wall, "
                  f"{run.cpu_s:.1f} s CPU, {run.report['verdict']}", flush=True)
    frames = len(runs["after"][0].report["frames"])  # the report lists every frame the command decoded
    best = {name: min(r.wall_s for r in rs) for name, rs in runs.items()}
    best_cpu = {name: min(r.cpu_s for r in rs) for name, rs in runs.items()}
    return {
        "video": video.name, "frames": frames, "method": method, "detect_every": detect_every,
        "wall_s": {name: [r.wall_s for r in rs] for name, rs in runs.items()},
        "cpu_s": {name: [r.cpu_s for r in rs] for name, rs in runs.items()},
        "frames_per_s": {name: frames / s for name, s in best.items()},
        "speed_after_over_before": best["before"] / best["after"],
        "cpu_speed_after_over_before": best_cpu["before"] / best_cpu["after"],
        "agreement": compare_reports(*(run_command(tree, video, method, detect_every, scratch, with_maps=True)
                                       for tree in trees)),
    }


def generated_video(folder: Path, size: tuple[int, int], fps: float, seconds: float) -> Path:
    from istvt_explain.data.media import make_face_video

    path = folder / f"generated_{size[0]}x{size[1]}_{fps:g}fps.mp4"
    make_face_video(path, frames=round(fps * seconds), size=size, fps=fps, second_face=False)
    return path


def markdown(result: dict) -> str:
    trees, rows = result["trees"], result["settings"]
    lines = [
        "# The command end to end: before against after, on the same machine in one run",
        "",
        f"`{result['command']}`",
        "",
        f"- before: `{trees['before']}`; after: `{trees['after']}`.",
        f"- {result['machine']}; load average {result['load_start']:.1f} at the start and "
        f"{result['load_end']:.1f} at the end.",
        f"- Each row: a fresh `istvt-explain VIDEO --out heatmap.mp4 --json report.json` process per run, the trees alternating, "
        f"fastest of {result['repeats']} per tree. frames/s = the video's frames / the process's wall time "
        "(start-up included).",
        "",
        "| video | frames | method | detect every | before frames/s | after frames/s | after / before (wall) "
        "| after / before (CPU) | verdict before / after | largest clip score difference | lowest map correlation |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        agree = row["agreement"]
        score = agree["max_clip_score_difference"]
        corr = agree["lowest_map_correlation"]
        lines.append(
            f"| {row['video']} | {row['frames']} | {row['method']} | {row['detect_every']} "
            f"| {row['frames_per_s']['before']:.1f} | {row['frames_per_s']['after']:.1f} "
            f"| {row['speed_after_over_before']:.2f}x | {row['cpu_speed_after_over_before']:.2f}x "
            f"| {agree['verdict_before']} / {agree['verdict_after']} "
            f"| {'clip counts differ' if score is None else f'{score:.1e}'} "
            f"| {'none compared' if corr is None else f'{corr:.4f}'} |")
    ratios = [row["speed_after_over_before"] for row in rows]
    lines += ["", f"Speed after / before (wall), median over the rows: {float(np.median(ratios)):.2f}x "
              f"(from {min(ratios):.2f}x to {max(ratios):.2f}x)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git revision to compare against (e.g. 375b0e9)")
    parser.add_argument("--video", action="append", type=Path, default=[],
                        help="a video to run on (repeatable); default: one generated face video")
    parser.add_argument("--size", type=int, nargs=2, default=(1280, 720), metavar=("W", "H"),
                        help="the generated video's size (default 1280 720)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="the generated video's length")
    parser.add_argument("--methods", nargs="+", default=["relevance", "rollout"])
    parser.add_argument("--detect-every", type=int, nargs="+", default=[3])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.md and OUT.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="before_after_") as tmp:
        scratch = Path(tmp)
        (scratch / "before").mkdir()
        trees = [unpack(args.before, scratch / "before"), working_tree()]
        videos = [v.resolve() for v in args.video] or [generated_video(scratch, tuple(args.size), args.fps,
                                                                       args.seconds)]
        load_start = os.getloadavg()[0]
        settings = []
        for video in videos:
            for method in args.methods:
                for every in args.detect_every:
                    settings.append(bench_setting(trees, video, method, every, args.repeats, scratch))
        load_end = os.getloadavg()[0]

    import torch

    result = {
        "command": repo_command("benchmarks/bench_before_after.py", argv if argv is not None else sys.argv[1:]),
        "trees": {tree.name: tree.revision for tree in trees},
        "videos": [repo_path(v) for v in videos],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores visible, torch {torch.__version__}",
        "load_start": load_start, "load_end": load_end, "repeats": args.repeats, "settings": settings,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
