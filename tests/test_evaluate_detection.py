"""Detection metrics against hand-computed values, and an `istvt-explain evaluate` run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from support import tiny_model

from istvt_explain.cli import main
from istvt_explain.data.synthetic import SyntheticClipDataset
from istvt_explain.evaluate.detection import (
    ScoreTable,
    detection_metrics,
    equal_error_rate,
    report,
    score_dataset,
)
from istvt_explain.models import save_checkpoint


def test_perfect_scores_give_full_marks_and_inverted_scores_none():
    m = detection_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert (m["acc"], m["auc"], m["ap"], m["eer"]) == (1.0, 1.0, 1.0, 0.0)
    m = detection_metrics([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])
    assert (m["acc"], m["auc"], m["eer"]) == (0.0, 0.0, 1.0)


def test_metrics_match_hand_computed_values():
    labels = [0, 0, 0, 1, 1, 1]
    scores = [0.1, 0.6, 0.3, 0.7, 0.4, 0.9]
    m = detection_metrics(labels, scores)
    assert m["acc"] == pytest.approx(4 / 6)
    assert m["auc"] == pytest.approx(8 / 9)  # 8 of 9 (fake, real) pairs ranked right
    assert m["n"] == 6 and m["n_fake"] == 3 and m["n_real"] == 3
    assert equal_error_rate(np.array(labels), np.array(scores)) == pytest.approx(1 / 3)


def test_eer_of_random_scores_is_near_one_half():
    rng = np.random.default_rng(0)
    labels, scores = rng.integers(0, 2, 4000), rng.random(4000)
    assert abs(equal_error_rate(labels, scores) - 0.5) < 0.03


def test_one_class_gives_nan_not_an_error():
    m = detection_metrics([1, 1], [0.7, 0.2])
    assert m["acc"] == 0.5 and math.isnan(m["auc"]) and math.isnan(m["eer"])
    with pytest.raises(ValueError, match="differ in length"):
        detection_metrics([0, 1], [0.5])


def test_video_level_means_and_per_manipulation():
    table = ScoreTable(
        scores=[0.2, 0.4, 0.9, 0.7, 0.6, 0.1, 0.3],
        labels=[0, 0, 1, 1, 1, 0, 1],
        video_ids=["r1", "r1", "a", "a", "b", "r2", "c"],
        manipulations=["real", "real", "Deepfakes", "Deepfakes", "FaceSwap", "real", "FaceSwap"],
    )
    video = table.video_level()
    by_id = dict(zip(video.video_ids, video.scores, strict=True))
    assert by_id["r1"] == pytest.approx(0.3) and by_id["a"] == pytest.approx(0.8)
    rep = report(table)
    assert rep["video"]["n"] == 5
    assert set(rep["per_manipulation"]) == {"Deepfakes", "FaceSwap"}
    fs = rep["per_manipulation"]["FaceSwap"]["clip"]  # FaceSwap clips against every real clip
    assert fs["n"] == 5
    assert fs["auc"] == pytest.approx(roc_auc_score([0, 0, 1, 0, 1], [0.2, 0.4, 0.6, 0.1, 0.3]))


def test_shards_cover_every_clip_once():
    model = tiny_model(depth=1)
    data = SyntheticClipDataset(7, 3, 64, broken=(4,))
    with pytest.warns(UserWarning, match="skipping item 4"):
        shards = [score_dataset(model, data, batch_size=2, rank=r, world_size=3) for r in range(3)]
    merged = ScoreTable.merge(shards)
    assert len(merged) == 6 and merged.skipped == 1
    assert sorted(merged.video_ids) == sorted(data[i]["video_id"] for i in range(7) if i != 4)


def test_evaluate_command_writes_report_and_figure(tmp_path, capsys):
    weights = tmp_path / "w.safetensors"
    save_checkpoint(tiny_model(depth=1), weights)
    config = tmp_path / "eval.yaml"
    config.write_text("name: evaltest\nmodel: {preset: tiny}\n"
                      "data: {kind: pseudofake_pictures, test_pictures: [grace_hopper], test_clips: 4}\n"
                      "device: cpu\neval_batch_size: 2\n")
    out = tmp_path / "eval"
    code = main(["evaluate", "--config", str(config), "--weights", str(weights), "--out", str(out),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    rep = json.loads((out / "report.json").read_text())
    assert rep["clip"]["n"] == 4 and rep["clip"]["n_fake"] == 2 and rep["split"] == "test"
    assert 0.0 <= rep["clip"]["auc"] <= 1.0
    assert (out / "roc.png").stat().st_size > 1000
    assert len((out / "scores.csv").read_text().splitlines()) == 5
    assert "AUC" in capsys.readouterr().out


def test_evaluate_refuses_missing_weights(tmp_path, capsys):
    assert main(["evaluate", "--config", "demo", "--weights", str(tmp_path / "no.safetensors"),
                 "--out", str(tmp_path / "e")]) == 2
    assert "no.safetensors" in capsys.readouterr().err
