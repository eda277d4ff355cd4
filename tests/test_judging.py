"""Judging explanations: the measures on hand-made cases, and one small end-to-end table."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

import istvt_explain as ie
from istvt_explain.cli import main
from istvt_explain.evaluate.explanation_data import pseudofake_judging_set
from istvt_explain.evaluate.explanation_faithfulness import (
    CurveSettings,
    curve_auc,
    deletion_insertion,
    temporal_faithfulness,
    token_ranking,
)
from istvt_explain.evaluate.explanation_localisation import binary_mask, localisation_scores
from istvt_explain.evaluate.explanation_sanity import randomized_copy, rank_correlation
from istvt_explain.evaluate.judging import COLUMNS, JudgingSettings, judge_explanations
from istvt_explain.evaluate.judging_report import plot_table, write_csv


@pytest.fixture(scope="module")
def model() -> ie.ISTVT:
    torch.manual_seed(0)
    return ie.create_model("tiny", image_size=64, frames=3, depth=1)


def test_localisation_of_a_map_peaked_in_the_mask():
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[:, 2:4, 2:4] = True
    pixel_map = torch.rand(2, 8, 8) * 0.1
    pixel_map[mask] += 1.0
    scores = localisation_scores(pixel_map, mask)
    assert scores["pointing_game"] == 1.0 and scores["pixel_auc"] == 1.0
    assert scores["mass_inside"] > 0.5 and scores["mass_chance"] == pytest.approx(4 / 64)
    inverted = localisation_scores(-pixel_map, mask)
    assert inverted["pointing_game"] == 0.0 and inverted["pixel_auc"] == 0.0


def test_binary_mask_is_relative_to_its_peak():
    soft = torch.tensor([[[0.0, 0.2], [0.3, 0.4]]])
    assert binary_mask(soft).tolist() == [[[False, True], [True, True]]]
    with pytest.raises(ValueError, match="empty"):
        localisation_scores(torch.rand(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.bool))


def test_curve_auc_and_ranking():
    assert curve_auc(np.full(5, 0.3)) == pytest.approx(0.3)
    assert curve_auc(np.linspace(0, 1, 11)) == pytest.approx(0.5)
    order = token_ranking(torch.tensor([[[0.1, 0.9], [0.5, 0.2]]]))
    assert order.tolist() == [1, 2, 3, 0]


def test_deletion_curve_ends_at_the_grey_clip(model):
    clip = torch.rand(3, 3, 64, 64) * 2 - 1
    g = model.config.grid
    order = torch.randperm(3 * g * g)
    deletion, insertion = deletion_insertion(model, clip, 1, order, (3, g, g), CurveSettings(steps=2))
    with torch.no_grad():
        grey = torch.sigmoid(model(torch.zeros(1, 3, 3, 64, 64))).item()
        full = torch.sigmoid(model(clip[None])).item()
    assert deletion[-1] == pytest.approx(grey, abs=1e-5) and insertion[0] == pytest.approx(grey, abs=1e-5)
    assert deletion[0] == pytest.approx(full, abs=1e-5) and insertion[-1] == pytest.approx(full, abs=1e-5)


def test_temporal_faithfulness_checks_k(model):
    clip = torch.rand(3, 3, 64, 64)
    with pytest.raises(ValueError, match="k must be"):
        temporal_faithfulness(model, clip, 1, torch.rand(3), 3, torch.Generator())
    out = temporal_faithfulness(model, clip, 1, torch.rand(3), 1, torch.Generator().manual_seed(0))
    assert set(out) == {"drop_top_k", "drop_random_k", "drop_bottom_k"}


def test_randomized_copy_leaves_the_model_alone(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clone = randomized_copy(model, seed=3)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    assert not torch.equal(clone.head[-1].weight, model.head[-1].weight)
    assert rank_correlation(torch.arange(10.0), torch.arange(10.0)) == pytest.approx(1.0)
    assert math.isnan(rank_correlation(torch.ones(4), torch.arange(4.0)))


def test_judging_table_end_to_end(model, tmp_path):
    data = pseudofake_judging_set(2, 3, 64, seed=0)
    assert data.clips.shape == (2, 3, 3, 64, 64) and data.masks.shape == (2, 3, 64, 64)
    settings = JudgingSettings(methods=("rollout", "saliency"), steps=2, top_k=1)
    table = judge_explanations(model, data.clips, data.masks, settings)
    assert [r["method"] for r in table.rows] == ["rollout", "saliency"]
    for row in table.rows:
        assert set(row) == set(COLUMNS)
        assert 0.0 <= row["deletion_auc"] <= 1.0 and 0.0 <= row["insertion_auc"] <= 1.0
    path = write_csv(table, tmp_path / "t.csv")
    with path.open() as fh:
        assert [r["method"] for r in csv.DictReader(fh)] == ["rollout", "saliency"]
    assert plot_table(table, tmp_path / "t.png").stat().st_size > 1000


def test_judging_rejects_unknown_methods(model):
    with pytest.raises(ValueError, match="unknown explanation method"):
        judge_explanations(model, torch.zeros(1, 3, 3, 64, 64), settings=JudgingSettings(methods=("nope",)))


def test_cli_evaluate_explanations(model, tmp_path, capsys):
    weights = tmp_path / "small.safetensors"
    ie.save_checkpoint(model, weights)  # a 64 px, one-block model keeps the run short
    status = main(["evaluate-explanations", "--weights", str(weights), "--methods", "rollout", "--clips", "1",
                   "--steps", "2", "--top-k", "1", "--no-sanity", "--out", str(tmp_path)])
    assert status == 0
    assert (tmp_path / "explanation_judging.csv").is_file() and (tmp_path / "explanation_judging.png").is_file()
    assert "rollout" in capsys.readouterr().out


def test_cli_missing_weights_is_a_usage_error(tmp_path, capsys):
    assert main(["evaluate-explanations", "--weights", str(tmp_path / "none.safetensors")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
