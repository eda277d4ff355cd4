"""Judging explanations: every measure on hand-made cases; verdicts that pass a faithful oracle and fail its
inverse; the three known-bad maps (fresh noise, the centre prior, a negated map) each failing its criterion;
statistics over people with the Holm correction; the noisy linear imputation against a direct solve."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch
from support import tiny_model

import istvt_explain as ie
from istvt_explain.cli import main
from istvt_explain.evaluate.explanations.complexity import gini
from istvt_explain.evaluate.explanations.context import spread_subset
from istvt_explain.evaluate.explanations.data import pseudofake_judging_set
from istvt_explain.evaluate.explanations.faithfulness import (
    CurveSettings,
    curve_auc,
    deletion_insertion,
    removed_clip,
    target_probability,
    token_ranking,
)
from istvt_explain.evaluate.explanations.imputation import linear_imputation
from istvt_explain.evaluate.explanations.judge import judge_explanations
from istvt_explain.evaluate.explanations.localisation import binary_mask, localisation_scores
from istvt_explain.evaluate.explanations.references import FOOLS, CentrePrior, FreshNoise, centre_prior
from istvt_explain.evaluate.explanations.report import read_json, to_markdown, write_report
from istvt_explain.evaluate.explanations.robustness import max_sensitivity
from istvt_explain.evaluate.explanations.sanity import (
    abs_rank_correlation,
    map_ssim,
    randomisation_stages,
    randomize_parameters,
    randomized_copy,
    sanity_check,
    spearman,
)
from istvt_explain.evaluate.explanations.settings import JudgingSettings
from istvt_explain.evaluate.explanations.temporal import frame_removal_table, replace_frames, top_and_bottom
from istvt_explain.evaluate.statistics import Interval, holm, mean_interval


@pytest.fixture(scope="module")
def model() -> ie.ISTVT:
    return tiny_model(depth=1, seed=0)


# -- localisation ----------------------------------------------------------------------------------
def test_a_map_peaked_in_the_mask_localises_perfectly_and_its_inverse_not_at_all():
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[:, 2:4, 2:4] = True
    pixel_map = torch.rand(2, 8, 8) * 0.1
    pixel_map[mask] += 1.0
    scores = localisation_scores(pixel_map, mask)
    assert scores["pointing_game"] == 1.0 and scores["pixel_auc"] == 1.0 and scores["energy_pointing"] > 0.5
    assert scores["mass_inside"] > 0.5 and scores["mass_chance"] == pytest.approx(4 / 64)
    inverted = localisation_scores(-pixel_map, mask)
    assert inverted["pointing_game"] == 0.0 and inverted["pixel_auc"] == 0.0


def test_pointing_reads_rows_as_rows_on_an_asymmetric_mask():
    """A mask off the diagonal: a transposed map would point at the mirror position and miss."""
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, 1, 6] = True
    pixel_map = torch.zeros(1, 8, 8)
    pixel_map[0, 1, 6] = 1.0
    assert localisation_scores(pixel_map, mask)["pointing_game"] == 1.0
    assert localisation_scores(pixel_map.transpose(1, 2), mask)["pointing_game"] == 0.0


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


def test_the_centre_prior_peaks_in_the_middle_of_every_frame():
    blob = centre_prior(2, 5)
    assert blob.shape == (2, 5, 5) and blob[0, 2, 2] == 1.0 and torch.equal(blob[0], blob[1])
    assert blob[0, 0, 0] < blob[0, 1, 1] < blob[0, 2, 2] and torch.allclose(blob[0], blob[0].T)


# -- removals and curves ------------------------------------------------------------------------------
def _direct_imputation(frame: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """ROAD's equations solved directly (scipy), as Quantus and the ROAD authors do: each unknown pixel
    is the weighted mean of its in-frame neighbours (1/6 direct, 1/12 diagonal)."""
    h, w = unknown.shape
    index = -np.ones((h, w), int)
    ys, xs = np.nonzero(unknown)
    index[ys, xs] = np.arange(len(ys))
    rows, cols, values, weight_sum = [], [], [], np.zeros(len(ys))
    rhs = np.zeros((len(ys), frame.shape[0]))
    for dy, dx, weight in ((-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6), (-1, -1, 1 / 12),
                           (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12)):
        yy, xx = ys + dy, xs + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        i = np.flatnonzero(inside)
        weight_sum[i] += weight
        j = index[yy[inside], xx[inside]]
        rows += list(i[j >= 0])
        cols += list(j[j >= 0])
        values += [-weight] * int((j >= 0).sum())
        known = j < 0
        rhs[i[known]] += weight * frame[:, yy[inside][known], xx[inside][known]].T
    matrix = sp.csc_matrix((values + list(weight_sum), (rows + list(range(len(ys))), cols + list(range(len(ys))))),
                           shape=(len(ys), len(ys)))
    out = frame.copy()
    out[:, ys, xs] = spl.spsolve(matrix, rhs).T
    return out


@pytest.mark.parametrize("share", [0.2, 0.6])
def test_linear_imputation_solves_road_equations_and_keeps_known_pixels(share):
    gen = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48] / 48
    frame = np.stack([np.sin(3 * yy + c) * np.cos(2 * xx - c) for c in range(3)])  # smooth, like a face
    tokens = gen.random((6, 6)) < share
    unknown = np.kron(tokens, np.ones((8, 8))) > 0
    expected = _direct_imputation(frame, unknown)
    got = linear_imputation(torch.from_numpy(frame)[None].float(), torch.from_numpy(unknown)[None, None],
                            noise=0.0)[0].double().numpy()
    assert np.array_equal(got[:, ~unknown], frame[:, ~unknown].astype(np.float32))
    assert np.abs(got - expected)[:, unknown].mean() < 0.03  # half resolution: ~1.5 % of the value range
    refined = linear_imputation(torch.from_numpy(frame)[None].float(), torch.from_numpy(unknown)[None, None],
                                noise=0.0, refine=48)[0].double().numpy()
    assert np.abs(refined - expected)[:, unknown].mean() < 2e-3


def test_road_noise_is_the_road_noise_and_removing_everything_leaves_the_mean():
    frame = torch.rand(1, 3, 16, 16)
    everything = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    gen = torch.Generator().manual_seed(0)
    noisy = linear_imputation(frame, everything, generator=gen)
    assert (noisy - frame.mean(dim=(-1, -2), keepdim=True)).std() == pytest.approx(0.01, rel=0.2)


def test_curve_auc_is_the_mean_height_and_tokens_rank_highest_first():
    assert curve_auc(np.full(5, 0.3)) == pytest.approx(0.3)
    assert curve_auc(np.linspace(0, 1, 11)) == pytest.approx(0.5)
    order = token_ranking(torch.tensor([[[0.1, 0.9], [0.5, 0.2]]]))
    assert order.tolist() == [1, 2, 3, 0]


def test_ties_are_broken_relative_to_the_maps_own_scale():
    """Values 1e-12 apart (the old LRP's frame curves lay between 1e-11 and 1e-7) are ranked as they are,
    not by the tie-breaking noise."""
    order = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    values = 1e-11 + 1e-12 * order.double()  # value k at position where order == k
    ranked = torch.argsort(order, descending=True).tolist()
    assert token_ranking(values.reshape(2, 2, 2)).tolist() == ranked
    assert top_and_bottom(values, 3) == (ranked[:3], ranked[-3:])


@pytest.mark.parametrize("removal", ["road", "blur", "mean"])
def test_deletion_runs_from_the_clip_to_the_removed_clip(model, removal):
    clip = torch.rand(3, 3, 64, 64) * 2 - 1
    g = model.config.grid
    order = torch.randperm(3 * g * g)
    deletion, insertion = deletion_insertion(model, clip, 1, order, (3, g, g), CurveSettings(steps=3), removal)
    full, gone = target_probability(model, torch.stack([clip, removed_clip(clip, removal)]), 1).tolist()
    assert deletion[0] == pytest.approx(full, abs=1e-5) and deletion[-1] == pytest.approx(gone, abs=1e-5)
    assert insertion[0] == pytest.approx(gone, abs=1e-5) and insertion[-1] == pytest.approx(full, abs=1e-5)
    assert len(deletion) == 4


def test_removals_replace_only_the_chosen_frames_and_mean_flattens_each_channel():
    clip = torch.rand(4, 3, 32, 32)
    frozen = replace_frames(clip, [1, 2], "frozen")
    assert torch.equal(frozen[1], clip[0]) and torch.equal(frozen[2], clip[3]) and torch.equal(frozen[3], clip[3])
    blurred = replace_frames(clip, [0], "blur")
    assert torch.equal(blurred[1:], clip[1:]) and blurred[0].std() < clip[0].std()
    mean = removed_clip(clip, "mean")
    assert torch.allclose(mean[2, 1], clip[2, 1].mean().expand(32, 32))


def test_frame_removal_table_covers_every_subset_and_top_and_bottom_pick_the_extremes(model):
    clip = torch.rand(3, 3, 64, 64) * 2 - 1
    table = frame_removal_table(model, clip, 1, 1, "frozen")
    assert table.subsets == [(0,), (1,), (2,)]
    assert table.random_drop == pytest.approx(float(np.mean(table.drops)))
    assert table.drop_of([2]) == table.drops[2]
    top, bottom = top_and_bottom(torch.tensor([0.1, 0.9, 0.5]), 1)
    assert top == [1] and bottom == [0]
    top, bottom = top_and_bottom(torch.tensor([0.1, 0.9, 0.5, 0.7]), 2)
    assert sorted(top) == [1, 3] and sorted(bottom) == [0, 2]


@pytest.mark.parametrize("removal", ["frozen", "blur", "grey"])
def test_frame_removal_table_embeds_each_frame_once_with_the_same_answers(model, removal):
    """The pooled frames give the probabilities of the assembled clips (each frame embedded once)."""
    import itertools

    clip = torch.rand(3, 3, 64, 64) * 2 - 1
    for k in (1, 2):
        table = frame_removal_table(model, clip, 1, k, removal, batch=2)
        variants = torch.stack([clip] + [replace_frames(clip, s, removal) for s in itertools.combinations(range(3), k)])
        probs = target_probability(model, variants, 1).numpy()
        np.testing.assert_allclose(table.drops, probs[0] - probs[1:], atol=1e-6)
        assert np.ptp(table.drops) > 0  # the subsets differ, so a misplaced frame would show


# -- sanity, robustness, sparseness --------------------------------------------------------------------
def test_similarities_ignore_the_sign_and_see_flat_maps():
    a = torch.rand(2, 5, 5)
    assert abs_rank_correlation(a, -a) == pytest.approx(1.0)
    assert abs_rank_correlation(torch.ones(5), torch.ones(5)) == 1.0
    assert abs_rank_correlation(torch.ones(5), torch.arange(5.0)) == 0.0
    assert map_ssim(a, a) == pytest.approx(1.0) and map_ssim(a, torch.rand(2, 5, 5)) < 0.9
    assert spearman(a, -a) == pytest.approx(-1.0) and spearman(a, a) == pytest.approx(1.0)  # repeating keeps sign


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
    at_once = sanity_check(model, saliency, independent=False, every_stage=False)
    assert [s.stage for s in at_once.cascading] == ["entry flow"]  # one map, of the cascade's last model
    torch.testing.assert_close(at_once.final_maps, passed.final_maps)
    assert at_once.final == passed.final


def test_costly_methods_check_fewer_clips_but_never_more_than_the_run():
    settings = JudgingSettings(sanity_clips=12, robustness_clips=10)
    assert settings.check_clips("integrated-gradients", "sanity") == 6
    assert settings.check_clips("rollout", "sanity") == 12 and settings.check_clips("rollout", "robustness") == 10
    assert JudgingSettings(sanity_clips=2).check_clips("integrated-gradients", "sanity") == 2


def test_max_sensitivity_of_a_steady_map_is_small_and_of_fresh_noise_large():
    clips = torch.rand(3, 2, 3, 8, 8)
    def steady(x):
        return x.mean(dim=2), torch.full((x.shape[0],), 0.9)
    def noise(x):
        return torch.rand(x.shape[0], 2, 8, 8), torch.full((x.shape[0],), 0.9)
    sensitivity, lipschitz = max_sensitivity(steady, clips, radius=0.02, generator=torch.Generator().manual_seed(0))
    assert (sensitivity < 0.05).all() and (lipschitz > 0).all()
    assert (max_sensitivity(noise, clips, generator=torch.Generator().manual_seed(0))[0] > 0.5).all()
    def flips(x):  # every perturbation changes the answer: nothing to measure
        moved = not torch.equal(x, clips)
        return x.mean(dim=2), torch.full((x.shape[0],), 0.1 if moved else 0.9)
    assert np.isnan(max_sensitivity(flips, clips)[0]).all()


def test_gini_is_zero_for_an_even_map_and_near_one_for_a_single_token():
    assert gini(torch.ones(10)) == pytest.approx(0.0)
    single = torch.zeros(100)
    single[3] = -5.0
    assert gini(single) == pytest.approx(0.99)
    assert math.isnan(gini(torch.zeros(4)))


# -- statistics over people ------------------------------------------------------------------------------
def test_intervals_count_a_gain_only_when_they_exclude_zero():
    rng = np.random.default_rng(0)
    assert mean_interval(rng.normal(1.0, 0.1, 40)).above(0)
    assert not mean_interval(rng.normal(0.0, 1.0, 40)).above(0)
    assert mean_interval(rng.normal(-1.0, 0.1, 40)).below(0)
    one = mean_interval([5.0])
    assert not one.above(0) and not one.below(0) and one.n == 1
    assert mean_interval([]).n == 0 and mean_interval([math.nan, 1.0, 2.0]).n == 2


def test_people_weigh_the_same_and_the_bootstrap_resamples_people():
    """Forty clips of one person and one clip each of four others: the mean is of people, and with the
    clips of one face counted as one unit the evidence is that of five people, not 44 clips."""
    values = [1.0] * 40 + [-1.0, -1.0, 0.5, 0.5]
    people = ["a"] * 40 + ["b", "c", "d", "e"]
    by_people = mean_interval(values, groups=people)
    assert by_people.mean == pytest.approx(0.0) and by_people.groups == 5 and by_people.n == 44
    assert not by_people.above(0) and by_people.p_above > 0.2
    by_clips = mean_interval(values)
    assert by_clips.above(0) and by_clips.p_above < 0.01  # clips taken as independent would "pass"


def test_holm_steps_down_and_leaves_unasked_questions_out():
    p = {"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "e": math.nan}
    assert holm(p, 0.05) == {"a": True, "b": False, "c": False, "d": True, "e": False}
    # d: 0.005 <= 0.05/4; a: 0.01 <= 0.05/3; c: 0.03 > 0.05/2 stops the walk
    assert holm({"x": 0.04}, 0.05) == {"x": True}


def test_subsets_take_every_person_in_turn_and_keep_pairs_together():
    people = ["a"] * 6 + ["b"] * 2 + ["c"] * 4
    chosen = spread_subset(people, 6)
    assert sorted({people[i] for i in chosen}) == ["a", "b", "c"] and len(chosen) == 6
    assert chosen == [0, 1, 6, 7, 8, 9]
    assert spread_subset(people, None) == list(range(12))


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


class OracleForTests(ie.Attribution):
    """Maps that are faithful by construction: each token's and each frame's own removal drop."""

    name = "test-oracle"
    sign = 1.0

    def maps(self, clips, target):
        return self.sign * _token_drops(self.model, clips, target), self.sign * _frame_drops(self.model, clips, target)


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
PEOPLE = 6


@pytest.fixture(scope="module")
def judging_data():
    return pseudofake_judging_set(12, 3, SIZE, seed=1)


@pytest.fixture(scope="module")
def sensitive_model(judging_data) -> ie.ISTVT:
    """A random model whose head is rescaled and centred on these clips (logit spread about 2 between
    them and their blurred copies), so that removing tokens and frames moves its output."""
    m = tiny_model(image_size=SIZE, depth=1, seed=3).eval()
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
    """The oracle, its inverse and the three fools on 12 clips of 6 "people" (two clips each), in batches
    of 4 so that every method's clips span several batches with mixed targets."""
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
    masks[::3] = 0.0  # and a few real clips
    people = [f"person {i // 2}" for i in range(count)]
    # The oracle is faithful by construction to blurred tokens and frozen frames: judge it with those.
    settings = JudgingSettings(steps=3, seed=0, sanity_clips=6, robustness_clips=6, batch_size=4,
                               token_removals=("blur",), frame_removals=("frozen",))
    return judge_explanations(sensitive_model, clips, masks, [OracleForTests, InverseOracleForTests],
                              identities=people, settings=settings, include_fools=True)


def test_the_judge_passes_a_faithful_oracle(judged):
    verdict = judged.verdicts["test-oracle"]
    assert verdict["deletion"] == verdict["insertion"] == verdict["temporal"] == "pass", (verdict, judged.notes)
    assert verdict["sanity"] == verdict["robustness"] == "pass", verdict
    assert judged.identities == PEOPLE and judged.family > 10


def test_the_judge_fails_the_inverse_oracle(judged):
    inverse = judged.verdicts["test-inverse-oracle"]
    assert inverse["deletion"] == inverse["insertion"] == inverse["temporal"] == inverse["pointing"] == "fail"
    row = judged.row("test-inverse-oracle")
    assert row["deletion_gain_blur"].below(0) and row["temporal_gain_frozen"].below(0)
    oracle = judged.row("test-oracle")
    assert oracle["temporal_drop_top_k_frozen"].mean > oracle["temporal_drop_bottom_k_frozen"].mean


def test_fresh_noise_fails_sanity_because_it_does_not_repeat(judged):
    assert judged.verdicts["fool-fresh-noise"]["sanity"] == "fail"
    row = judged.row("fool-fresh-noise")
    assert row["sanity_repeat_spearman"].mean < 0.5 and row["sanity_random_spearman"].mean < 0.5  # randomised: "passes"
    assert judged.verdicts["fool-fresh-noise"]["robustness"] == "fail"


def test_the_centre_prior_fails_sanity_and_pointing(judged):
    verdict = judged.verdicts["fool-centre-prior"]
    assert verdict["sanity"] == "fail" and verdict["pointing"] == "fail", verdict
    assert judged.row("fool-centre-prior")["sanity_random_spearman"].mean == pytest.approx(1.0)


def test_the_negated_map_of_a_method_that_passes_deletion_fails_it(judged):
    """The inverse oracle is the oracle negated; ``fool-negated-relevance`` is relevance negated."""
    assert judged.verdicts["test-oracle"]["deletion"] == "pass"
    assert judged.verdicts["test-inverse-oracle"]["deletion"] == "fail"
    if judged.verdicts["fool-negated-relevance"]["deletion"] == "pass":  # then relevance itself must fail it
        raise AssertionError("negated relevance passed deletion")
    assert judged.fools == tuple(f.name for f in FOOLS)


def test_the_centre_prior_cannot_beat_itself_where_faces_are_centred(model):
    """Blend masks cover the middle of the crop: the centre blob points into every one of them, far above
    the masks' area share.  Against the priors it gains nothing, so pointing fails."""
    data = pseudofake_judging_set(6, 3, 64, seed=5)
    result = judge_explanations(model, data.clips, data.masks, [CentrePrior], identities=data.identities,
                                settings=JudgingSettings(steps=2, sanity=False, robustness_clips=2,
                                                         token_removals=("mean",), frame_removals=("frozen",)))
    row = result.row("fool-centre-prior")
    assert row["pointing_gain_over_chance"].above(0.3)  # against chance alone it would "pass"
    assert row["pointing_margin_over_centre_prior"].mean == pytest.approx(0.0)
    assert result.verdicts["fool-centre-prior"]["pointing"] == "fail"


def test_weak_model_temporal_n_a_and_sanity_verdicts(model):
    """A random, weak model: its saliency repeats and changes when the model is randomised (sanity
    passes); an input-only map repeats but does not change (fails).  No masks: pointing n/a."""
    data = pseudofake_judging_set(6, 3, 64, seed=2)
    result = judge_explanations(model, data.clips, None, ["saliency", "test-input-only"], identities=data.identities,
                                settings=JudgingSettings(steps=2, sanity_clips=6, robustness_clips=2,
                                                         frame_removals=("frozen",), token_removals=("mean",)))
    assert result.verdicts["saliency"]["pointing"] == "n/a" and any("manipulated" in n for n in result.notes)
    assert result.verdicts["test-input-only"]["sanity"] == "fail"
    assert result.row("test-input-only")["sanity_repeat_spearman"].mean == pytest.approx(1.0)
    assert result.row("saliency")["sanity_random_spearman"].mean < 0.5


def test_report_writes_csv_json_markdown_figures_and_contrasts(judged, tmp_path):
    paths = write_report(judged, tmp_path, {"note": "test"})
    names = {p.name for p in paths}
    assert {"explanation_judging.csv", "explanation_judging.json", "explanation_judging.md",
            "explanation_judging.png", "explanation_contrasts.csv", "explanation_sanity.png"} <= names
    with (tmp_path / "explanation_judging.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows][:2] == ["test-oracle", "test-inverse-oracle"]
    assert rows[0]["verdict_deletion"] == "pass"
    assert any(k.startswith("deletion_margin_blur_") and k.endswith("_low") for k in rows[0])
    payload = json.loads((tmp_path / "explanation_judging.json").read_text())
    assert payload["verdicts"]["test-inverse-oracle"]["deletion"] == "fail" and payload["identities"] == PEOPLE
    md = to_markdown(judged)
    assert "| test-oracle | 12 | pass | pass | pass | pass |" in md and "(control)" in md
    with (tmp_path / "explanation_contrasts.csv").open() as fh:
        contrasts = list(csv.DictReader(fh))
    oracle = [c for c in contrasts if (c["first"], c["second"]) == ("test-oracle", "test-inverse-oracle")
              and c["criterion"] == "deletion"]
    assert oracle and all(float(c["low"]) > 0 for c in oracle)  # paired: the oracle beats its inverse
    again = read_json(tmp_path / "explanation_judging.json")  # a run's JSON redraws its report unchanged
    assert to_markdown(again) == md and again.verdicts == judged.verdicts
    assert [s.stage for s in again.sanity["test-oracle"].cascading] == [
        s.stage for s in judged.sanity["test-oracle"].cascading]


def test_judging_rejects_unknown_methods_bad_masks_and_bad_identities(model):
    with pytest.raises(ValueError, match="unknown explanation method"):
        judge_explanations(model, torch.zeros(1, 3, 3, 64, 64), methods=["nope"])
    with pytest.raises(ValueError, match="masks must be"):
        judge_explanations(model, torch.zeros(2, 3, 3, 64, 64), torch.zeros(2, 3, 32, 32), ["rollout"])
    with pytest.raises(ValueError, match="identities"):
        judge_explanations(model, torch.zeros(2, 3, 3, 64, 64), None, ["rollout"], identities=["a"])


def test_methods_can_be_judged_without_registering_them(model):
    data = pseudofake_judging_set(4, 3, 64, seed=4)
    result = judge_explanations(model, data.clips, None, [CentrePrior, FreshNoise], identities=data.identities,
                                settings=JudgingSettings(steps=2, sanity=False, robustness_clips=2,
                                                         token_removals=("mean",), frame_removals=("frozen",)))
    assert set(result.verdicts) == {"fool-centre-prior", "fool-fresh-noise"}
    assert "fool-centre-prior" not in ie.available_methods()


# -- command line ----------------------------------------------------------------------------------
def test_evaluate_explanations_command_writes_the_report_and_prints_the_table(model, tmp_path, capsys):
    weights = tmp_path / "small.safetensors"
    ie.save_checkpoint(model, weights)  # a 64 px, one-block model keeps the run short
    status = main(["evaluate-explanations", "--weights", str(weights), "--methods", "rollout", "--clips", "4",
                   "--steps", "2", "--top-k", "1", "--no-sanity", "--no-fools", "--robustness-clips", "2",
                   "--out", str(tmp_path)])
    assert status == 0
    assert (tmp_path / "explanation_judging.csv").is_file() and (tmp_path / "explanation_judging.png").is_file()
    out = capsys.readouterr().out
    assert "| rollout | 4 |" in out
    payload = json.loads((tmp_path / "explanation_judging.json").read_text())
    assert len(payload["people"]) == 2  # two pairs: the first two held-out people in turn


def test_cli_missing_weights_and_unknown_methods_are_usage_errors(tmp_path, capsys):
    assert main(["evaluate-explanations", "--weights", str(tmp_path / "none.safetensors")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["evaluate-explanations", "--preset", "tiny", "--methods", "nope"]) == 2
    assert "unknown explanation method" in capsys.readouterr().err


def test_an_interval_knows_its_side_of_zero():
    up, down, across = Interval(0.2, 0.1, 0.3, 10), Interval(-0.2, -0.3, -0.1, 10), Interval(0.0, -0.1, 0.1, 10)
    assert up.above(0) and not up.below(0) and down.below(0) and not across.excludes(0)
    assert Interval(1.0, -math.inf, math.inf, 1).text() == "1.000 [-inf, inf]"
