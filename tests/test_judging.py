"""Judging explanations: every measure on hand-made cases, and verdicts that pass a faithful oracle
and fail its inverse, an input-only map and a flat map."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

import istvt_explain as ie
from istvt_explain.cli import main
from istvt_explain.evaluate.explanations.data import pseudofake_judging_set
from istvt_explain.evaluate.explanations.faithfulness import (
    CurveSettings,
    curve_auc,
    deletion_insertion,
    frame_removal_table,
    removed_clip,
    replace_frames,
    target_probability,
    token_ranking,
    top_and_bottom,
)
from istvt_explain.evaluate.explanations.judge import JudgingSettings, judge_explanations
from istvt_explain.evaluate.explanations.localisation import binary_mask, localisation_scores
from istvt_explain.evaluate.explanations.report import to_markdown, write_report
from istvt_explain.evaluate.explanations.sanity import (
    abs_rank_correlation,
    map_ssim,
    randomisation_stages,
    randomize_parameters,
    randomized_copy,
    sanity_check,
)
from istvt_explain.evaluate.statistics import mean_interval


@pytest.fixture(scope="module")
def model() -> ie.ISTVT:
    torch.manual_seed(0)
    return ie.create_model("tiny", image_size=64, frames=3, depth=1)


# -- localisation ----------------------------------------------------------------------------------
def test_localisation_of_a_map_peaked_in_the_mask():
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[:, 2:4, 2:4] = True
    pixel_map = torch.rand(2, 8, 8) * 0.1
    pixel_map[mask] += 1.0
    scores = localisation_scores(pixel_map, mask)
    assert scores["pointing_game"] == 1.0 and scores["pixel_auc"] == 1.0 and scores["energy_pointing"] > 0.5
    assert scores["mass_inside"] > 0.5 and scores["mass_chance"] == pytest.approx(4 / 64)
    inverted = localisation_scores(-pixel_map, mask)
    assert inverted["pointing_game"] == 0.0 and inverted["pixel_auc"] == 0.0


def test_a_flat_map_is_neither_a_hit_nor_a_miss():
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, 0, 0] = True  # pixel (0, 0): where an argmax of a flat map would land
    scores = localisation_scores(torch.ones(1, 8, 8), mask)
    assert math.isnan(scores["pointing_game"]) and math.isnan(scores["pixel_auc"])


def test_tied_maxima_count_the_share_inside_and_energy_reads_the_box():
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, 2, 2] = mask[0, 4, 4] = True  # box 2..4 x 2..4
    pixel_map = torch.zeros(1, 8, 8)
    pixel_map[0, 2, 2] = pixel_map[0, 7, 7] = 1.0  # two tied maxima, one inside
    pixel_map[0, 3, 3] = 0.5  # inside the box, outside the mask
    scores = localisation_scores(pixel_map, mask)
    assert scores["pointing_game"] == pytest.approx(0.5)
    assert scores["energy_pointing"] == pytest.approx(1.5 / 2.5) and scores["energy_chance"] == pytest.approx(9 / 64)
    assert scores["mass_inside"] == pytest.approx(1 / 2.5)


def test_binary_mask_is_relative_to_its_peak():
    soft = torch.tensor([[[0.0, 0.2], [0.3, 0.4]]])
    assert binary_mask(soft).tolist() == [[[False, True], [True, True]]]
    with pytest.raises(ValueError, match="empty"):
        localisation_scores(torch.rand(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.bool))


# -- faithfulness ----------------------------------------------------------------------------------
def test_curve_auc_and_ranking():
    assert curve_auc(np.full(5, 0.3)) == pytest.approx(0.3)
    assert curve_auc(np.linspace(0, 1, 11)) == pytest.approx(0.5)
    order = token_ranking(torch.tensor([[[0.1, 0.9], [0.5, 0.2]]]))
    assert order.tolist() == [1, 2, 3, 0]


@pytest.mark.parametrize("removal", ["blur", "mean"])
def test_deletion_runs_from_the_clip_to_the_removed_clip(model, removal):
    clip = torch.rand(3, 3, 64, 64) * 2 - 1
    g = model.config.grid
    order = torch.randperm(3 * g * g)
    deletion, insertion = deletion_insertion(model, clip, 1, order, (3, g, g), CurveSettings(steps=3), removal)
    full, gone = target_probability(model, torch.stack([clip, removed_clip(clip, removal)]), 1).tolist()
    assert deletion[0] == pytest.approx(full, abs=1e-5) and deletion[-1] == pytest.approx(gone, abs=1e-5)
    assert insertion[0] == pytest.approx(gone, abs=1e-5) and insertion[-1] == pytest.approx(full, abs=1e-5)
    assert len(deletion) == 4


def test_removals_change_what_they_should():
    clip = torch.rand(4, 3, 32, 32)
    frozen = replace_frames(clip, [1, 2], "frozen")
    assert torch.equal(frozen[1], clip[0]) and torch.equal(frozen[2], clip[3]) and torch.equal(frozen[3], clip[3])
    blurred = replace_frames(clip, [0], "blur")
    assert torch.equal(blurred[1:], clip[1:]) and blurred[0].std() < clip[0].std()
    mean = removed_clip(clip, "mean")
    assert torch.allclose(mean[2, 1], clip[2, 1].mean().expand(32, 32))


def test_frame_removal_table_and_top_and_bottom(model):
    clip = torch.rand(3, 3, 64, 64) * 2 - 1
    table = frame_removal_table(model, clip, 1, 1, "frozen")
    assert table.subsets == [(0,), (1,), (2,)]
    assert table.random_drop == pytest.approx(float(np.mean(table.drops)))
    assert table.drop_of([2]) == table.drops[2]
    top, bottom = top_and_bottom(torch.tensor([0.1, 0.9, 0.5]), 1)
    assert top == [1] and bottom == [0]
    top, bottom = top_and_bottom(torch.tensor([0.1, 0.9, 0.5, 0.7]), 2)
    assert sorted(top) == [1, 3] and sorted(bottom) == [0, 2]


# -- sanity ----------------------------------------------------------------------------------------
def test_similarities_ignore_the_sign_and_see_flat_maps():
    a = torch.rand(2, 5, 5)
    assert abs_rank_correlation(a, -a) == pytest.approx(1.0)
    assert abs_rank_correlation(torch.ones(5), torch.ones(5)) == 1.0
    assert abs_rank_correlation(torch.ones(5), torch.arange(5.0)) == 0.0
    assert map_ssim(a, a) == pytest.approx(1.0) and map_ssim(a, torch.rand(2, 5, 5)) < 0.9


def test_stages_cover_every_parameter_once_from_the_head_down(model):
    stages = randomisation_stages(model)
    assert stages[0][0] == "head" and stages[-1][0] == "entry flow"
    names = [n for n, _ in model.named_parameters()]
    owners = {n: [label for label, prefixes in stages if any(n.startswith(p) for p in prefixes)] for n in names}
    assert all(len(v) == 1 for v in owners.values()), {n: v for n, v in owners.items() if len(v) != 1}
    clone = randomized_copy(model, seed=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the original is untouched
    assert not torch.equal(clone.head[-1].weight, model.head[-1].weight)
    head_only = randomized_copy(model, seed=0)
    head_only.load_state_dict(model.state_dict())
    randomize_parameters(head_only, stages[0][1], torch.Generator().manual_seed(1))
    assert torch.equal(head_only.blocks[0].attn_s.to_qkv.weight, model.blocks[0].attn_s.to_qkv.weight)
    assert not torch.equal(head_only.head[-1].weight, model.head[-1].weight)


def test_sanity_passes_a_model_map_and_fails_an_input_only_map(model):
    clips = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    def saliency(m):
        return ie.explain(m, clips, method="saliency", target="fake").spatial
    def brightness(m):
        return clips.mean(dim=2)[:, :, ::16, ::16]
    passed = sanity_check(model, saliency)
    assert [s.stage for s in passed.cascading] == [label for label, _ in randomisation_stages(model)]
    assert passed.final.spearman < 0.5 and passed.passed
    failed = sanity_check(model, brightness)
    assert failed.final.spearman == pytest.approx(1.0) and failed.final.ssim == pytest.approx(1.0)
    assert failed.passed is False


def test_intervals_count_a_gain_only_when_they_exclude_zero():
    rng = np.random.default_rng(0)
    assert mean_interval(rng.normal(1.0, 0.1, 40)).above(0)
    assert not mean_interval(rng.normal(0.0, 1.0, 40)).above(0)
    assert mean_interval(rng.normal(-1.0, 0.1, 40)).below(0)
    one = mean_interval([5.0])
    assert not one.above(0) and not one.below(0) and one.n == 1
    assert mean_interval([]).n == 0 and mean_interval([math.nan, 1.0, 2.0]).n == 2


# -- verdicts, end to end --------------------------------------------------------------------------
def _token_drops(model, clips, target):
    """Per token: probability of the target minus that with the token blurred (what deletion reads)."""
    g = model.config.grid
    out = torch.zeros(clips.shape[0], clips.shape[1], g, g)
    for b in range(clips.shape[0]):
        gone = removed_clip(clips[b], "blur")
        side = clips.shape[-1] // g
        variants = []
        for t in range(clips.shape[1]):
            for i in range(g):
                for j in range(g):
                    v = clips[b].clone()
                    v[t, :, i * side:(i + 1) * side, j * side:(j + 1) * side] = \
                        gone[t, :, i * side:(i + 1) * side, j * side:(j + 1) * side]
                    variants.append(v)
        probs = target_probability(model, torch.stack([clips[b]] + variants), int(target[b]))
        out[b] = (probs[0] - probs[1:]).reshape(clips.shape[1], g, g)
    return out


def _frame_drops(model, clips, target):
    return torch.stack([torch.as_tensor(frame_removal_table(model, clips[b], int(target[b]), 1, "frozen").drops)
                        for b in range(clips.shape[0])]).float()


@ie.register_method
class OracleForTests(ie.Attribution):
    """Maps that are faithful by construction: each token's and each frame's own removal drop."""

    name = "test-oracle"
    sign = 1.0

    def maps(self, clips, target):
        return self.sign * _token_drops(self.model, clips, target), self.sign * _frame_drops(self.model, clips, target)


@ie.register_method
class InverseOracleForTests(OracleForTests):
    name = "test-inverse-oracle"
    sign = -1.0


@ie.register_method
class InputOnlyForTests(ie.Attribution):
    """An edge-detector-like map: it reads the clip only, never the model."""

    name = "test-input-only"

    def maps(self, clips, target):
        g = self.model.config.grid
        pooled = torch.nn.functional.adaptive_avg_pool2d(clips.abs().mean(dim=2), g)
        return pooled, pooled.flatten(2).mean(-1)


SIZE = 48  # a 3 x 3 token grid: the smallest that SSIM's 3 x 3 window reads, and a cheap oracle


@pytest.fixture(scope="module")
def judging_data():
    return pseudofake_judging_set(6, 3, SIZE, seed=1)


@pytest.fixture(scope="module")
def sensitive_model(judging_data) -> ie.ISTVT:
    """A random model whose head is rescaled and centred on these clips (logit spread about 2 between
    them and their blurred copies), so that removing tokens and frames moves its output."""
    torch.manual_seed(3)
    m = ie.create_model("tiny", image_size=SIZE, frames=3, depth=1).eval()
    clips = judging_data.clips
    with torch.no_grad():
        variants = torch.cat([clips, torch.stack([removed_clip(c, "blur") for c in clips])])
        scale = 2.0 / m(variants).reshape(-1).std()
        m.head[-1].weight.mul_(scale)
        m.head[-1].bias.mul_(scale)
        m.head[-1].bias.sub_(m(clips).reshape(-1).median())
    return m


@pytest.fixture(scope="module")
def judged(sensitive_model, judging_data):
    clips = judging_data.clips
    count, grid = clips.shape[0], sensitive_model.config.grid
    target = (target_probability(sensitive_model, clips, 1) >= 0.5).long()
    # Ground truth made from the oracle: the token whose removal moves the output most, every frame.
    drops = _token_drops(sensitive_model, clips, target)
    masks = torch.zeros(count, 3, SIZE, SIZE)
    side = SIZE // grid
    for b in range(count):
        for t in range(3):
            i, j = divmod(int(drops[b, t].argmax()), grid)
            masks[b, t, i * side:(i + 1) * side, j * side:(j + 1) * side] = 1.0
    masks[::3] = 0.0  # and two real clips
    settings = JudgingSettings(steps=3, sanity=False, seed=0)  # sanity: see the test on a weak model below
    return judge_explanations(sensitive_model, clips, masks, ["test-oracle", "test-inverse-oracle"],
                              settings=settings)


def test_the_judge_passes_a_faithful_oracle(judged):
    assert judged.notes == [], judged.notes  # this model reacts to every removal: all tests can judge
    assert judged.verdicts["test-oracle"] == {"sanity": "n/a", "deletion": "pass", "insertion": "pass",
                                              "temporal": "pass", "pointing": "pass"}


def test_the_judge_fails_the_inverse_oracle(judged):
    inverse = judged.verdicts["test-inverse-oracle"]
    assert inverse["deletion"] == inverse["insertion"] == inverse["temporal"] == inverse["pointing"] == "fail"
    row = judged.row("test-inverse-oracle")
    assert row["deletion_gain_blur"].below(0) and row["temporal_gain_frozen"].below(0)
    assert judged.row("test-oracle")["drop_top_k_frozen"].mean > judged.row("test-oracle")["drop_bottom_k_frozen"].mean


def test_weak_model_temporal_n_a_and_sanity_verdicts(model):
    """A random, weak model moves by < 0.01 whatever frame is frozen: the judge says it cannot tell.
    Its saliency changes when the model is randomised (pass); an input-only map does not (fail)."""
    data = pseudofake_judging_set(2, 3, 64, seed=2)
    result = judge_explanations(model, data.clips, None, ["saliency", "test-input-only"],
                                settings=JudgingSettings(steps=2, sanity_clips=2, frame_removals=("frozen",)))
    assert result.frame_spread["frozen"] < 0.01
    assert result.verdicts["saliency"]["temporal"] == "n/a" and any("frozen" in n for n in result.notes)
    assert result.verdicts["saliency"]["pointing"] == "n/a"  # no masks
    assert result.verdicts["saliency"]["sanity"] == "pass" and result.verdicts["test-input-only"]["sanity"] == "fail"


def test_report_files(judged, tmp_path):
    paths = write_report(judged, tmp_path, {"note": "test"})
    names = {p.name for p in paths}
    assert {"explanation_judging.csv", "explanation_judging.json", "explanation_judging.md",
            "explanation_judging.png"} <= names
    with (tmp_path / "explanation_judging.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows] == ["test-oracle", "test-inverse-oracle"]
    assert rows[0]["verdict_deletion"] == "pass" and "deletion_gain_blur_low" in rows[0]
    payload = json.loads((tmp_path / "explanation_judging.json").read_text())
    assert payload["verdicts"]["test-inverse-oracle"]["deletion"] == "fail"
    md = to_markdown(judged)
    assert "| test-oracle | 6 | n/a | pass | pass | pass | pass |" in md


def test_judging_rejects_unknown_methods_and_bad_masks(model):
    with pytest.raises(ValueError, match="unknown explanation method"):
        judge_explanations(model, torch.zeros(1, 3, 3, 64, 64), methods=["nope"])
    with pytest.raises(ValueError, match="masks must be"):
        judge_explanations(model, torch.zeros(2, 3, 3, 64, 64), torch.zeros(2, 3, 32, 32), ["rollout"])


# -- command line ----------------------------------------------------------------------------------
def test_cli_evaluate_explanations(model, tmp_path, capsys):
    weights = tmp_path / "small.safetensors"
    ie.save_checkpoint(model, weights)  # a 64 px, one-block model keeps the run short
    status = main(["evaluate-explanations", "--weights", str(weights), "--methods", "rollout", "--clips", "2",
                   "--steps", "2", "--top-k", "1", "--no-sanity", "--out", str(tmp_path)])
    assert status == 0
    assert (tmp_path / "explanation_judging.csv").is_file() and (tmp_path / "explanation_judging.png").is_file()
    out = capsys.readouterr().out
    assert "| rollout | 2 |" in out


def test_cli_missing_weights_and_unknown_methods_are_usage_errors(tmp_path, capsys):
    assert main(["evaluate-explanations", "--weights", str(tmp_path / "none.safetensors")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["evaluate-explanations", "--preset", "tiny", "--methods", "nope"]) == 2
    assert "unknown explanation method" in capsys.readouterr().err


def test_a_verdict_needs_every_interval_above_zero():
    from istvt_explain.evaluate.explanations.judge import _all_above
    from istvt_explain.evaluate.statistics import Interval

    up, down, across = Interval(0.2, 0.1, 0.3, 10), Interval(-0.2, -0.3, -0.1, 10), Interval(0.0, -0.1, 0.1, 10)
    assert _all_above([up]) == "pass" and _all_above([up, up]) == "pass"
    assert _all_above([down]) == "fail" and _all_above([across]) == "fail" and _all_above([up, down]) == "fail"
    assert _all_above([Interval(1.0, -math.inf, math.inf, 1)]) == "n/a" and _all_above([]) == "n/a"
