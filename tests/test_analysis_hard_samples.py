"""Hard samples: rankings, mistakes, evaluation files, explanations and the gallery."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from analysis_support import content_explain, small_model, smooth_uint8_clips

from istvt_explain.analysis.gallery import write_gallery
from istvt_explain.analysis.hard_samples import (
    ClipScore,
    clips_from_array,
    clips_from_dataset_items,
    explain_hard_samples,
    rank_hard_samples,
    score_clips,
    score_dataset_clips,
)
from istvt_explain.analysis.scores_io import load_evaluation
from istvt_explain.errors import InputError

SCORES = [
    ClipScore("r-sure", "v1", 0, 0, 0.05),
    ClipScore("r-fp", "v1", 1, 0, 0.90),
    ClipScore("r-unsure", "v2", 0, 0, 0.48),
    ClipScore("f-sure", "v3", 0, 1, 0.97),
    ClipScore("f-fn", "v3", 1, 1, 0.20),
    ClipScore("f-unsure", "v4", 0, 1, 0.53),
]


def test_clip_loss_is_the_clamped_log_loss_and_margin_the_distance_to_the_threshold():
    s = ClipScore("x", "v", 0, 1, 0.25)
    assert s.loss == pytest.approx(-math.log(0.25))
    assert ClipScore("x", "v", 0, 0, 0.25).loss == pytest.approx(-math.log(0.75))
    assert s.margin(0.5) == pytest.approx(0.25) and s.predicted(0.2) == 1
    assert ClipScore("x", "v", 0, 1, 0.0).loss < 20  # clamped, never infinite


def test_rankings_list_the_hardest_clips_and_mistakes_whatever_the_input_order():
    hard = rank_hard_samples(SCORES, top=3)
    assert [s.id for s in hard.by_loss] == ["r-fp", "f-fn", "r-unsure"]
    assert [s.id for s in hard.near_threshold] == ["r-unsure", "f-unsure", "f-fn"]
    assert [s.id for s in hard.false_positives] == ["r-fp"]
    assert [s.id for s in hard.false_negatives] == ["f-fn"]
    selected = [s.id for s in hard.selected()]
    assert selected[:2] == ["f-fn", "r-fp"] and len(selected) == len(set(selected))
    assert hard.reasons()["f-fn"] == ["false_negative", "high_loss", "near_threshold"]
    # Order of the input does not matter.
    again = rank_hard_samples(list(reversed(SCORES)), top=3)
    assert [s.id for s in again.by_loss] == [s.id for s in hard.by_loss]


def test_threshold_moves_the_mistakes():
    hard = rank_hard_samples(SCORES, threshold=0.5 + 0.04)
    assert {s.id for s in hard.false_negatives} == {"f-fn", "f-unsure"}
    with pytest.raises(ValueError):
        rank_hard_samples(SCORES, threshold=1.0)
    with pytest.raises(ValueError):
        rank_hard_samples([])


def test_csv_lists_every_selected_clip(tmp_path):
    hard = rank_hard_samples(SCORES, top=2)
    rows = list(csv.DictReader(open(hard.to_csv(tmp_path / "h.csv"))))
    assert [r["id"] for r in rows] == [s.id for s in hard.selected()]
    assert rows[0]["reasons"].startswith("false_negative")


def test_scores_load_from_a_run_folder_or_a_report_and_a_bad_file_is_named(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("video_id,manipulation,label,score\nv0,real,0,0.100000\nv0,pseudofake,1,0.300000\n")
    scores = load_evaluation(tmp_path)  # the run's folder works too
    assert [(s.clip, s.label, s.probability) for s in scores] == [(0, 0, 0.1), (1, 1, 0.3)]
    assert scores[1].id == "1:v0:pseudofake"
    report = {"videos": [{"video": "a.mp4", "label": "fake", "clip_scores": [0.2, 0.9]}]}
    (tmp_path / "r.json").write_text(json.dumps(report))
    scores = load_evaluation(tmp_path / "r.json")
    assert [(s.video, s.clip, s.label) for s in scores] == [("a.mp4", 0, 1), ("a.mp4", 1, 1)]
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="bad.json"):
        load_evaluation(tmp_path / "bad.json")


def test_gallery_shows_one_explained_row_per_selected_clip(tmp_path):
    clips = smooth_uint8_clips(4, seed=5)
    scores = [ClipScore(f"c{i}", "v", i, i % 2, p) for i, p in enumerate([0.7, 0.2, 0.45, 0.9])]
    hard = rank_hard_samples(scores, top=2)
    samples = explain_hard_samples(None, hard, clips_from_array(clips, scores), methods=["content", "other"],
                                   explain_fn=content_explain, limit=3)
    assert len(samples) == 3 and set(samples[0].explanations) == {"content", "other"}
    np.testing.assert_array_equal(samples[0].frames, clips[int(samples[0].score.id[1:])])
    files = write_gallery(samples, hard, tmp_path / "gallery")
    page = files.html.read_text()
    assert page.count("<img") == 3 and "false positive" in page
    assert files.grid_png.stat().st_size > 0 and files.grid_pdf.exists() and len(files.rows) == 3
    assert all(p.exists() for p in files.rows)


def test_scoring_clips_and_dataset_items_with_a_real_model():
    model = small_model()
    clips = smooth_uint8_clips(3, seed=1)
    scores = score_clips(model, clips, [0, 1, 0], ["a", "b", "c"])
    assert [s.id for s in scores] == ["a", "b", "c"] and all(0 < s.probability < 1 for s in scores)
    items = [{"clip": (torch.from_numpy(c).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5, "label": float(i % 2),
              "video_id": f"v{i}", "manipulation": "real" if i % 2 == 0 else "pseudofake"} for i, c in enumerate(clips)]
    from_items = score_dataset_clips(model, items, batch_size=2)
    assert [s.probability for s in from_items] == pytest.approx([s.probability for s in scores], abs=1e-5)
    frames = clips_from_dataset_items(items)(from_items[2])
    assert np.abs(frames.astype(int) - clips[2]).max() <= 1
