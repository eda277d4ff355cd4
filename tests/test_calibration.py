"""Calibrated probabilities: the temperature in the model and the checkpoint, ECE, temperature fitting,
the `calibrate` command, and training on raw logits."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from support import SMALL, random_clips, tiny_model

import istvt_explain as ie
from istvt_explain.cli import main
from istvt_explain.data.synthetic import SyntheticClipDataset
from istvt_explain.evaluate import (
    CalibrationReport,
    binary_nll,
    calibrate_logits,
    expected_calibration_error,
    fit_temperature,
)
from istvt_explain.evaluate.detection import score_dataset
from istvt_explain.models import load_checkpoint, load_model, read_temperature
from istvt_explain.models.weights import read_metadata
from istvt_explain.train import config_from_dict, fit


def rewrite_metadata(path, **changes) -> None:
    """Rewrite a safetensors file with metadata entries changed (None: removed)."""
    tensors, meta = load_file(str(path)), read_metadata(path)
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    save_file(tensors, str(path), metadata=meta)


# -- the model ----------------------------------------------------------------------------------------
def test_forward_divides_the_logit_by_the_temperature():
    model = tiny_model(seed=0)
    clips = random_clips(model, 3, seed=1)
    keys = set(model.state_dict())
    parameters = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        raw = model(clips)
        tokens = model.forward_features(clips)
        model.set_temperature(2.5)
        scaled = model(clips)
        head = model.forward_head(tokens)
    assert model.get_temperature() == 2.5
    torch.testing.assert_close(scaled, raw / 2.5)
    torch.testing.assert_close(head, raw / 2.5)
    assert set(model.state_dict()) == keys and "temperature" not in keys  # non-persistent buffer
    assert sum(p.numel() for p in model.parameters()) == parameters  # a buffer, not a parameter
    # the scores evaluation and training validation read are calibrated; the logits they keep too
    data = SyntheticClipDataset(4, SMALL["frames"], SMALL["image_size"], seed=2)
    table = score_dataset(model, data, batch_size=2)
    model.set_temperature(1.0)
    raw_table = score_dataset(model, data, batch_size=2)
    np.testing.assert_allclose(table.logits, np.asarray(raw_table.logits) / 2.5, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(table.scores, 1 / (1 + np.exp(-np.asarray(table.logits))), rtol=1e-5)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "abc", None])
def test_set_temperature_refuses_non_positive_or_non_finite(bad):
    model = tiny_model(seed=0)
    with pytest.raises(ValueError, match="temperature"):
        model.set_temperature(bad)
    assert model.get_temperature() == 1.0


def test_explanation_maps_do_not_depend_on_the_temperature():
    """Methods attribute the raw logit: calibration changes the reported probability, not the maps."""
    model = tiny_model(seed=4)
    clips = random_clips(model, 2, seed=5)
    results = {}
    for t in (1.0, 3.0):
        model.set_temperature(t)
        results[t] = {m: ie.explain(model, clips, method=m) for m in ("relevance", "lrp", "saliency")}
    for method, exp in results[3.0].items():
        base = results[1.0][method]
        torch.testing.assert_close(exp.spatial, base.spatial, rtol=1e-4, atol=1e-12, msg=method)
        torch.testing.assert_close(exp.temporal, base.temporal, rtol=1e-4, atol=1e-12, msg=method)
        torch.testing.assert_close(exp.fake_probability, torch.sigmoid(base.logits / 3.0), msg=method)


# -- the checkpoint -----------------------------------------------------------------------------------
def test_temperature_round_trips_through_a_checkpoint(tmp_path):
    model = tiny_model(seed=0)
    path = tmp_path / "calibrated.safetensors"
    model.set_temperature(1.7)
    ie.save_checkpoint(model, path, extra={"metrics": {"val_auc": 0.5}})
    meta = read_metadata(path)
    assert json.loads(meta["temperature"]) == pytest.approx(1.7) and json.loads(meta["metrics"]) == {"val_auc": 0.5}
    assert read_temperature(path) == pytest.approx(1.7)
    assert load_model(path).get_temperature() == pytest.approx(1.7)
    again = tiny_model(weights=path)
    assert again.get_temperature() == pytest.approx(1.7)
    clips = random_clips(model, 3, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(again(clips), model(clips))
    plain = tmp_path / "plain.safetensors"
    ie.save_checkpoint(tiny_model(seed=0), plain)
    assert read_metadata(plain)["temperature"] == "1.0"  # always written


def test_checkpoints_without_a_temperature_load_as_uncalibrated(tmp_path):
    old = tmp_path / "old.safetensors"
    ie.save_checkpoint(tiny_model(seed=0), old)
    rewrite_metadata(old, temperature=None)  # as written before calibration existed
    assert "temperature" not in read_metadata(old) and read_temperature(old) == 1.0
    model = tiny_model(seed=0)
    model.set_temperature(4.0)
    load_checkpoint(model, old)
    assert model.get_temperature() == 1.0
    pickled = tmp_path / "weights.pt"
    torch.save(tiny_model(seed=0).state_dict(), pickled)
    model.set_temperature(4.0)
    load_checkpoint(model, pickled)  # torch.load(weights_only=True) inside
    assert model.get_temperature() == 1.0 and read_temperature(pickled) == 1.0


@pytest.mark.parametrize("stored", ["NaN", "0", "0.0", "-1", "abc", "Infinity", "true", '"2"', "[1]", ""])
def test_a_corrupt_stored_temperature_is_refused(tmp_path, stored):
    path = tmp_path / "bad.safetensors"
    ie.save_checkpoint(tiny_model(seed=0), path)
    rewrite_metadata(path, temperature=stored)
    model = tiny_model(seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ie.CheckpointError, match="temperature") as info:
        load_checkpoint(model, path)
    assert len(str(info.value).splitlines()) == 1
    assert model.get_temperature() == 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing half-loaded
    with pytest.raises(ie.CheckpointError, match="temperature"):
        load_model(path)


# -- ECE and the fit ----------------------------------------------------------------------------------
def slow_ece(probabilities, labels, bins: int) -> float:
    """The textbook definition, one clip and one bin at a time."""
    total, n = 0.0, len(probabilities)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = []
        for p, y in zip(probabilities, labels, strict=True):
            confidence = max(p, 1 - p)
            if (lo < confidence <= hi) or (b == 0 and confidence == 0):
                members.append((confidence, float((p >= 0.5) == (y >= 0.5))))
        if members:
            confidence = sum(c for c, _ in members) / len(members)
            accuracy = sum(a for _, a in members) / len(members)
            total += len(members) / n * abs(accuracy - confidence)
    return total


@pytest.mark.parametrize("bins", [1, 7, 15])
def test_ece_matches_a_slow_loop(bins):
    rng = np.random.default_rng(11)
    p = rng.uniform(0, 1, 300)
    p[:4] = [0.0, 1.0, 0.5, 0.5]  # certain either way, and the 0.5 tie counted as "fake"
    y = (rng.uniform(0, 1, 300) < p).astype(float)
    y[2:4] = [1.0, 0.0]
    assert expected_calibration_error(p, y, bins) == pytest.approx(slow_ece(p.tolist(), y.tolist(), bins),
                                                                   abs=1e-12)


def test_ece_equals_a_hand_computed_value_and_refuses_bad_input():
    # confidences 0.9 (right), 0.75 (wrong), 0.7 (right), 0.55 (right); bins of 0.2:
    # (0.4, 0.6]: |1 - 0.55| = 0.45; (0.6, 0.8]: 2 * |0.5 - 0.725| = 0.45; (0.8, 1]: |1 - 0.9| = 0.1
    assert expected_calibration_error([0.9, 0.75, 0.3, 0.55], [1, 0, 0, 1], bins=5) == pytest.approx(0.25)
    assert expected_calibration_error([1.0, 0.0], [1, 0]) == 0.0
    for bad in ([0.5, 1.2], [math.nan, 0.5]):
        with pytest.raises(ValueError):
            expected_calibration_error(bad, [0, 1])
    with pytest.raises(ValueError, match="differ in length"):
        expected_calibration_error([0.5], [0, 1])
    with pytest.raises(ValueError, match="bins"):
        expected_calibration_error([0.5], [1], bins=0)


@pytest.mark.parametrize("seed, scale", [(0, 3.0), (1, 0.4), (2, 1.0)])
def test_fit_temperature_matches_a_grid_search(seed, scale):
    rng = np.random.default_rng(seed)
    z = rng.normal(0.3, 2.0, 400)
    y = (rng.uniform(0, 1, 400) < 1 / (1 + np.exp(-z))).astype(float)
    logits = scale * z
    t = fit_temperature(logits, y)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 40001))
    losses = [binary_nll(logits, y, g) for g in grid]
    best = grid[int(np.argmin(losses))]
    step = np.log(grid[1] / grid[0])
    assert abs(np.log(t) - np.log(best)) <= 2 * step
    assert binary_nll(logits, y, t) <= min(losses) + 1e-12
    assert fit_temperature(logits, y) == t  # deterministic


def test_fit_temperature_stays_in_its_bounds():
    z = np.array([-4.0, -1.0, 2.0, 5.0, -0.5, 0.7])
    y = (z > 0).astype(float)
    assert fit_temperature(z, y) == pytest.approx(0.05)  # separable: the NLL falls all the way to T -> 0
    assert fit_temperature(-z, y) == pytest.approx(20.0)  # all wrong: it falls as T -> inf
    assert fit_temperature(np.zeros(6), y) == 1.0  # no scale to fit
    assert fit_temperature(z, y, bounds=(0.5, 2.0)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no logits"):
        fit_temperature([], [])


def test_ece_falls_after_fitting_overconfident_logits():
    rng = np.random.default_rng(7)
    z = rng.normal(0.0, 1.5, 4000)
    y = (rng.uniform(0, 1, 4000) < 1 / (1 + np.exp(-z))).astype(float)  # labels follow sigmoid(z) ...
    report = calibrate_logits(3.0 * z, y, bins=15, split="val")  # ... the model says 3 z: overconfident
    assert isinstance(report, CalibrationReport)
    assert report.temperature == pytest.approx(3.0, rel=0.1)
    assert report.ece_after < report.ece_before / 3 and report.ece_after < 0.03
    assert report.nll_after < report.nll_before
    d = report.to_dict()
    assert d["clips"] == 4000 and d["split"] == "val" and d["temperature"] == report.temperature
    json.dumps(d)


# -- the command and training -------------------------------------------------------------------------
def write_config(tmp_path, **top) -> str:
    raw = {
        "name": "calib-test",
        "model": {"preset": "tiny", "overrides": {**SMALL, "depth": 1}},
        "data": {"kind": "pseudofake_pictures", "train_clips": 4, "val_clips": 6, "test_clips": 4},
        "epochs": 1, "batch_size": 2, "eval_batch_size": 6, "seed": 3, "device": "cpu", "threads": 1,
        **top,
    }
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(raw))  # JSON is YAML
    return str(path)


def test_calibrate_command_refits_from_the_raw_logits_keeps_the_metadata_and_refuses_bad_input(tmp_path, capsys):
    config = write_config(tmp_path)
    model = tiny_model(depth=1, seed=0)
    model.set_temperature(7.0)  # an earlier calibration: refitted from the raw logits
    weights = tmp_path / "best.safetensors"
    ie.save_checkpoint(model, weights, extra={"metrics": {"val_auc": 0.5}, "train_config": {"name": "x"}})
    out = tmp_path / "calibrated" / "model.safetensors"
    args = ["calibrate", "--config", config, "--weights", str(weights), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "ECE" in printed and "temperature" in printed
    report = json.loads((out.parent / "calibration.json").read_text())
    assert report["clips"] == 6 and report["split"] == "val" and report["weights"] == str(weights)
    calibrated = load_model(out)
    assert calibrated.get_temperature() == pytest.approx(report["temperature"], rel=1e-6)
    meta = read_metadata(out)
    assert json.loads(meta["metrics"]) == {"val_auc": 0.5} and json.loads(meta["train_config"]) == {"name": "x"}
    assert json.loads(meta["calibration"])["ece_after"] == report["ece_after"]
    # the refit started from T = 1: the raw logits of the input give back the report's NLL
    raw = load_model(weights)
    raw.set_temperature(1.0)
    from istvt_explain.train import load_config
    from istvt_explain.train.data import build_dataset
    data = build_dataset(load_config(config), raw.config, "val")
    table = score_dataset(raw, data, batch_size=6)
    assert binary_nll(table.logits, table.labels) == pytest.approx(report["nll_before"], rel=1e-6)
    assert binary_nll(table.logits, table.labels, report["temperature"]) == pytest.approx(report["nll_after"],
                                                                                         rel=1e-6)
    # existing outputs need --force; bad input is one line and exit status 2
    for bad in (args, ["calibrate", "--config", config, "--weights", str(tmp_path / "none.safetensors"),
                       "--out", str(tmp_path / "x.safetensors")],
                ["calibrate", "--config", config, "--weights", str(weights), "--out", str(weights)]):
        assert main(bad) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("istvt-explain: error:")
    assert main(args + ["--force", "--set", "data.val_clips=4"]) == 0
    assert json.loads((out.parent / "calibration.json").read_text())["clips"] == 4


def test_training_resets_the_temperature(tmp_path):
    start = tmp_path / "start.safetensors"
    model = tiny_model(seed=0)
    model.set_temperature(5.0)
    ie.save_checkpoint(model, start)
    config = config_from_dict({
        "name": "t", "model": {"preset": "tiny", "overrides": dict(SMALL), "init_weights": str(start)},
        "data": {"kind": "pseudofake_pictures", "train_clips": 2, "val_clips": 2, "test_clips": 2},
        "epochs": 1, "batch_size": 2, "eval_batch_size": 2, "seed": 0, "device": "cpu", "threads": 1,
    })
    data = SyntheticClipDataset(2, SMALL["frames"], SMALL["image_size"])
    result = fit(config, tmp_path / "run", train_set=data, val_set=data, progress=False, tensorboard=False)
    assert result.model.get_temperature() == 1.0
    assert read_temperature(tmp_path / "run" / "last.safetensors") == 1.0
