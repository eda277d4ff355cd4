"""``benchmarks/bench_before_after.py``: each tree runs its own package, and the comparison sees a change.

Why: the script's one claim is "the earlier revision and the working tree said the same, at these speeds".
That claim is empty if the child process silently imports the installed package instead of the tree it
was given, or if the comparison cannot tell two different reports apart.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from istvt_explain.data.media import make_face_video

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its sibling ``reporting``
    try:
        yield importlib.import_module("bench_before_after")
    finally:
        sys.path.remove(str(BENCHMARKS))


def fake_run(bench: ModuleType, scores: list[float], maps: dict[int, np.ndarray], verdict: str = "REAL"):
    report = {"verdict": verdict, "fake_probability": float(np.mean(scores)),
              "clips": [{"fake_probability": s} for s in scores]}
    return bench.Run(wall_s=1.0, cpu_s=1.0, report=report, maps=maps)


def test_the_comparison_tells_a_changed_report_from_the_same_one(bench: ModuleType) -> None:
    rng = np.random.default_rng(5)
    maps = {i: rng.random((36, 64)).astype(np.float16) for i in range(4)}
    same = bench.compare_reports(fake_run(bench, [0.2, 0.7], maps), fake_run(bench, [0.2, 0.7], dict(maps)))
    assert same["max_clip_score_difference"] == 0 and same["lowest_map_correlation"] == pytest.approx(1.0)
    assert same["map_frames_compared"] == 4

    other = {i: rng.random((36, 64)).astype(np.float16) for i in range(4)}  # fresh noise, not the maps
    changed = bench.compare_reports(fake_run(bench, [0.2, 0.7], maps),
                                    fake_run(bench, [0.2, 0.75], {**maps, 2: other[2]}, verdict="FAKE"))
    assert changed["max_clip_score_difference"] == pytest.approx(0.05)
    assert changed["lowest_map_correlation"] < 0.5  # one frame's map replaced is enough to show
    assert (changed["verdict_before"], changed["verdict_after"]) == ("REAL", "FAKE")
    fewer = bench.compare_reports(fake_run(bench, [0.2, 0.7], maps), fake_run(bench, [0.2], maps))
    assert fewer["max_clip_score_difference"] is None  # clip counts differ: no pairing pretended


def test_each_tree_runs_its_own_package_and_the_same_code_agrees(bench: ModuleType, tmp_path: Path) -> None:
    video = tmp_path / "face.mp4"
    make_face_video(video, frames=12, size=(320, 240), fps=12.0)
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    before = bench.unpack("HEAD", unpacked)
    assert (unpacked / "istvt_explain" / "cli" / "__init__.py").is_file()
    runs = []
    for tree in (before, bench.working_tree()):
        scratch = tmp_path / tree.name
        scratch.mkdir()
        runs.append(bench.run_command(tree, video, "rollout", 3, scratch, with_maps=True))
    agreement = bench.compare_reports(*runs)
    assert agreement["clips_before"] == agreement["clips_after"] == 2
    assert agreement["map_frames_compared"] == 12
    # the same commit (the working tree may differ only where it is being edited): the same report
    assert agreement["verdict_before"] == agreement["verdict_after"]
    assert agreement["max_clip_score_difference"] < 1e-4
    assert agreement["lowest_map_correlation"] > 0.999

    empty = bench.Tree("before", "none", tmp_path / "empty")  # no package there: the child would fall
    empty.root.mkdir()                                         # back on the installed one, which is refused
    with pytest.raises(SystemExit, match="not its own tree"):
        bench.run_command(empty, video, "rollout", 3, tmp_path / "before")
