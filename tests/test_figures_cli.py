"""The analysis commands end to end on a very small checkpoint: files written, summaries printed, bad usage = 2."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from analysis_support import small_weights

from istvt_explain.cli import main


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return small_weights(tmp_path_factory.mktemp("w") / "small.safetensors")


def test_figures_command_passes_its_choices_on(weights, tmp_path, capsys, monkeypatch):
    # The figures themselves are drawn by notebook 04's test (the same call); here: the command's wiring.
    from istvt_explain.analysis import paper

    seen = {}

    def fake_make(model, data, out, settings, progress=None, cache_dir=None, reuse=False):
        seen.update(model=model, data=data, out=out, settings=settings, cache_dir=cache_dir, reuse=reuse)
        result = paper.PaperResults(np.array([0.2, 0.7]), np.array([0, 1]), ["a", "b"], [],
                                    paper.SensitivityResult([], "rollout", {}, {}))
        result.files["roc"] = [out / "roc.png"]
        return result

    monkeypatch.setattr(paper, "make_paper_figures", fake_make)
    assert main(["figures", "--out", str(tmp_path), "--weights", str(weights), "--level", "smoke",
                 "--clips", "6", "--seed", "3"]) == 0
    assert seen["settings"].clips == 6 and seen["settings"].seed == 3 and seen["settings"].judging_steps == 3
    assert len(seen["data"]) == 6 and set(seen["data"].labels.tolist()) == {0, 1}
    assert seen["model"].config.image_size == 64 and seen["out"] == tmp_path
    assert seen["cache_dir"] == tmp_path / ".cache" and seen["reuse"] is False
    assert "2 clips: AUC 1.0" in capsys.readouterr().out


def test_figures_rerun_reuses_every_stage_and_says_so(weights, tmp_path, capsys):
    """The real stages on the smoke level: a second run with --reuse computes nothing and names what it reused."""
    from istvt_explain.analysis import paper

    args = ["figures", "--out", str(tmp_path), "--weights", str(weights), "--level", "smoke"]
    assert main(args) == 0
    first = capsys.readouterr().err
    for number, stage in enumerate(paper.STAGES, start=1):  # progress for every stage
        assert f"[{number}/{len(paper.STAGES)}] {stage}: done in" in first
    before = (tmp_path / "summary.json").read_text()
    calls = []
    original = paper.fake_probabilities
    paper.fake_probabilities = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        assert main([*args, "--reuse"]) == 0
    finally:
        paper.fake_probabilities = original
    second = capsys.readouterr().err
    assert not calls and "computing" not in second
    assert f"reused from the cache: {', '.join(paper.STAGES)}" in second
    assert (tmp_path / "summary.json").read_text() == before


def test_hard_samples_command_writes_the_table_and_the_gallery(weights, tmp_path, capsys):
    out = tmp_path / "hard"
    assert main(["hard-samples", "--out", str(out), "--weights", str(weights), "--max-clips", "6",
                 "--methods", "rollout", "--top", "2", "--limit", "3"]) == 0
    rows = list(csv.DictReader(open(out / "hard_samples.csv")))
    assert 1 <= len(rows) <= 6 and (out / "index.html").exists() and (out / "gallery.png").exists()
    assert "explained" in capsys.readouterr().out


def test_sensitivity_command_writes_a_row_per_clip_perturbation_and_strength(weights, tmp_path):
    out = tmp_path / "sens"
    assert main(["sensitivity", "--out", str(out), "--weights", str(weights), "--clips", "2", "--method", "attention",
                 "--perturbations", "noise", "drop_frames"]) == 0
    rows = list(csv.DictReader(open(out / "sensitivity.csv")))
    assert len(rows) == 2 * (4 + 3) and {r["label"] for r in rows} == {"0", "1"}
    assert (out / "sensitivity.png").exists() and (out / "sensitivity_summary.csv").exists()


@pytest.mark.parametrize("argv", [
    ["hard-samples", "--methods", "magic"],
    ["hard-samples", "--top", "0"],
    ["sensitivity", "--method", "magic"],
    ["figures", "--clips", "2"],
    ["sensitivity", "--device", "nowhere"],
])
def test_bad_usage_exits_2_with_one_line(argv, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("istvt-explain: error:")
