"""Manipulated segments: the rule on hand-made clip scores, then through VideoAnalysis, the report,
the banner, the summary and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from istvt_explain.attribution.explanation import Explanation
from istvt_explain.errors import InputError
from istvt_explain.pipeline import PipelineOptions, VideoAnalysis
from istvt_explain.pipeline.analysis import aggregate_frames
from istvt_explain.pipeline.segments import Segment, find_segments, segment_at

T = 6


def clips(*starts: int, t: int = T) -> np.ndarray:
    """(K, t) frame indices of clips of t consecutive frames starting at ``starts``."""
    return np.array([np.arange(s, s + t) for s in starts], dtype=np.int64).reshape(len(starts), t)


def side_by_side(k: int, first: int = 0) -> np.ndarray:
    """k clips at the default stride (= T): frames first .. first + k*T - 1, each once."""
    return clips(*range(first, first + k * T, T))


def spans(segments: list[Segment]) -> list[tuple[int, int]]:
    return [(s.start_frame, s.end_frame) for s in segments]


# -- the rule ----------------------------------------------------------------------------------


def test_whole_video_fake_is_one_segment_over_all_frames() -> None:
    found = find_segments([0.9, 0.8, 0.95, 0.7, 0.85], side_by_side(5))
    assert spans(found) == [(0, 29)]
    assert found[0].clips == found[0].fake_clips == 5


def test_no_clip_over_the_threshold_no_segment() -> None:
    assert find_segments([0.1, 0.49, 0.3, 0.2], side_by_side(4)) == []
    assert find_segments([], np.zeros((0, T), np.int64)) == []


def test_a_demo_like_video_is_fake_in_its_second_half_only() -> None:
    found = find_segments([0.1, 0.2, 0.3, 0.1, 0.9, 0.8, 0.95, 0.7], side_by_side(8))
    assert spans(found) == [(24, 47)]


@pytest.mark.parametrize("score, expected", [(0.9, [(0, 5)]), (0.2, [])])
def test_single_clip_video_can_be_fake_or_real(score: float, expected: list) -> None:
    """One clip is all the evidence such a video has: min_clips is capped by it."""
    assert spans(find_segments([score], side_by_side(1), min_clips=2)) == expected


def test_exact_threshold_counts_as_fake() -> None:
    assert spans(find_segments([0.5, 0.5], side_by_side(2), threshold=0.5)) == [(0, 11)]
    assert find_segments([0.5, 0.5], side_by_side(2), threshold=0.5000001) == []


def test_peak_and_mean_are_exact_and_include_the_bridged_dip() -> None:
    found = find_segments([0.0, 0.75, 0.25, 1.0, 0.0, 0.0], side_by_side(6))
    assert found == [Segment(start_frame=6, end_frame=23, peak_probability=1.0, mean_probability=2 / 3,
                             clips=3, fake_clips=2)]
    assert found[0].to_dict() == {"start_frame": 6, "end_frame": 23, "peak_probability": 1.0,
                                  "mean_probability": 2 / 3, "clips": 3, "fake_clips": 2}
    assert found[0].num_frames == 18


def test_one_clip_dip_is_bridged_two_are_not() -> None:
    assert spans(find_segments([0.9, 0.9, 0.2, 0.9, 0.9], side_by_side(5))) == [(0, 29)]
    assert spans(find_segments([0.9, 0.9, 0.2, 0.2, 0.9, 0.9], side_by_side(6))) == [(0, 11), (24, 35)]
    assert spans(find_segments([0.9, 0.9, 0.2, 0.9, 0.9], side_by_side(5), max_gap=0)) == [(0, 11), (18, 29)]


def test_run_shorter_than_min_clips_is_dropped() -> None:
    scores = [0.1, 0.9, 0.1, 0.1, 0.8, 0.9, 0.1]  # a lone fake clip, then a run of two
    assert spans(find_segments(scores, side_by_side(7))) == [(24, 35)]
    assert spans(find_segments(scores, side_by_side(7), min_clips=1)) == [(6, 11), (24, 35)]
    assert find_segments(scores, side_by_side(7), min_clips=3) == []


def test_no_face_in_the_middle_keeps_two_segments() -> None:
    """Frames 12-29 have no face: longer than the gap tolerance (6 frames), so the runs stay apart."""
    frames = np.concatenate([side_by_side(2, first=0), side_by_side(2, first=30)])
    found = find_segments([0.9, 0.9, 0.9, 0.9], frames)
    assert spans(found) == [(0, 11), (30, 41)]
    assert [s.clips for s in found] == [2, 2]


def test_short_face_gap_is_bridged_but_not_with_a_dip_on_top() -> None:
    """A gap of at most max_gap clip lengths without any clip counts like a dip: bridged once."""
    short = np.concatenate([side_by_side(2, first=0), side_by_side(2, first=17)])  # frames 12-16: no clip
    assert spans(find_segments([0.9, 0.9, 0.9, 0.9], short)) == [(0, 28)]
    assert spans(find_segments([0.9, 0.9, 0.9, 0.9], short, max_gap=0)) == [(0, 11), (17, 28)]
    # a dip clip right before the face gap: 6 + 5 frames without fake evidence, too many
    assert spans(find_segments([0.9, 0.9, 0.2, 0.9, 0.9],
                               np.concatenate([side_by_side(3), side_by_side(2, first=23)]))) == [(0, 11), (23, 34)]


def test_a_face_seen_briefly_can_be_fake_on_its_own() -> None:
    """A one-clip face track between long gaps offers one clip of evidence: that is enough there."""
    frames = np.concatenate([side_by_side(3, first=0), side_by_side(1, first=40), side_by_side(3, first=80)])
    scores = [0.1, 0.1, 0.1, 0.9, 0.1, 0.9, 0.1]
    assert spans(find_segments(scores, frames)) == [(40, 45)]  # the lone 0.9 at frame 80 has neighbours


def test_overlapping_clips_at_stride_2_need_two_clip_lengths_of_covered_frames() -> None:
    frames = clips(*range(0, 40, 2))  # 20 clips, frames 0-45
    scores = np.full(20, 0.1)
    scores[5:9] = 0.9  # clips at 10..16: frames 10-21
    assert spans(find_segments(scores, frames)) == [(10, 21)]
    # a dip clip between overlapping fake clips leaves no frame without fake evidence
    scores[7] = 0.2
    found = find_segments(scores, frames, max_gap=0)
    assert spans(found) == [(10, 21)] and (found[0].clips, found[0].fake_clips) == (4, 3)
    # two overlapping fake clips cover 8 frames, less than two clip lengths (12): not enough
    scores[:] = 0.1
    scores[5:7] = 0.9
    assert find_segments(scores, frames) == []
    assert spans(find_segments(scores, frames, min_clips=1)) == [(10, 17)]


def test_clip_order_does_not_matter() -> None:
    frames = side_by_side(4)
    scores = np.array([0.1, 0.9, 0.8, 0.1])
    order = [2, 0, 3, 1]
    assert find_segments(scores[order], frames[order]) == find_segments(scores, frames)


def test_bad_segment_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="min_clips"):
        find_segments([0.9], side_by_side(1), min_clips=0)
    with pytest.raises(ValueError, match="max_gap"):
        find_segments([0.9], side_by_side(1), max_gap=-1)
    with pytest.raises(ValueError, match="frame_indices"):
        find_segments([0.9, 0.9], side_by_side(1))
    with pytest.raises(InputError, match="segment_min_clips"):
        PipelineOptions(segment_min_clips=0)
    with pytest.raises(InputError, match="segment_max_gap"):
        PipelineOptions(segment_max_gap=-1)
    with pytest.raises(InputError, match="threshold"):
        PipelineOptions(threshold=1.5)


def test_segment_at_finds_the_segment_holding_a_frame() -> None:
    found = find_segments([0.9, 0.9, 0.1, 0.1, 0.9, 0.9], side_by_side(6))
    assert segment_at(found, 11) is found[0] and segment_at(found, 12) is None and segment_at(found, 24) is found[1]
    assert found[1].describe() == "frames 24-35 (peak 0.90)" and found[1].describe(1) == "frames 25-36 (peak 0.90)"


# -- through the analysis, the report, the banner and the summary -------------------------------


def analysis(scores: list[float], num_frames: int | None = None, **options) -> VideoAnalysis:
    """A hand-made analysis of side-by-side clips with the given scores (no model, no video)."""
    k = len(scores)
    num_frames = num_frames or k * T
    p = torch.tensor(scores, dtype=torch.float32)
    exp = Explanation(torch.rand(k, T, 4, 4, generator=torch.Generator().manual_seed(0)), torch.ones(k, T), p,
                      torch.logit(p.clamp(1e-4, 1 - 1e-4)), "relevance")
    boxes = np.tile(np.array([8.0, 4, 40, 36]), (num_frames, 1))
    a = VideoAnalysis(Path("x.mp4"), 25.0, 320, 240, num_frames, "relevance", 0.5, exp, side_by_side(k), boxes,
                      np.ones(num_frames, bool), np.empty(0), np.empty(0), np.empty(0), **options)
    aggregate_frames(a)
    return a


def test_verdict_follows_the_segments_not_the_mean() -> None:
    half = analysis([0.1, 0.2, 0.1, 0.1, 0.9, 0.8, 0.95, 0.7])
    assert half.video_probability < 0.5 and half.verdict == "fake"
    assert spans(half.segments) == [(24, 47)]
    spike = analysis([0.1, 0.1, 0.99, 0.1, 0.1, 0.1])  # one clip over: mean low, no segment
    assert spike.verdict == "real" and spike.segments == []
    assert analysis([0.1, 0.1, 0.99, 0.1, 0.1, 0.1], segment_min_clips=1).verdict == "fake"
    assert analysis([0.9, 0.2, 0.9], segment_max_gap=0).verdict == "real"  # two lone clips
    assert analysis([0.9, 0.2, 0.9]).verdict == "fake"


def test_report_has_segments_and_says_what_fake_probability_is(tmp_path: Path) -> None:
    from istvt_explain.pipeline.report import build_report, write_report

    write_report(build_report(analysis([0.1, 0.2, 0.1, 0.1, 0.9, 0.8, 0.95, 0.7])), tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] == "fake" and report["fake_probability"] == pytest.approx(0.48125)
    assert report["segments"] == [{"start_frame": 24, "end_frame": 47, "peak_probability": 0.95,
                                   "mean_probability": pytest.approx(0.8375), "clips": 4, "fake_clips": 4}]
    assert "mean of the clip scores" in report["fake_probability_definition"]
    assert report["segment_options"] == {"min_clips": 2, "max_gap": 1, "clip_frames": T}
    assert report["frame_numbering"] == "0-based" and report["frames"][24]["index"] == 24
    real = build_report(analysis([0.1, 0.2]))
    assert real["verdict"] == "real" and real["segments"] == []


def test_banner_names_the_segments_in_the_video_s_frame_numbers() -> None:
    """The strip under the video counts frames from 0 ("frame 24/47"), as the report: so does the banner."""
    from istvt_explain.pipeline.heatmap_video import FrameComposer, headline, headline_variants
    from istvt_explain.render.overlay import FAKE_COLOR, REAL_COLOR

    a = analysis([0.1, 0.2, 0.1, 0.1, 0.9, 0.8, 0.95, 0.7])
    assert headline(a).startswith("FAKE: frames 24-47 (peak 0.95)")
    assert "mean p(fake) 0.48" in headline(a)
    assert "this frame: in a fake segment" in headline(a, 30)
    assert "this frame" not in headline(a, 3)
    assert headline_variants(a)[-1] == "FAKE"
    composer = FrameComposer(a)
    assert composer.headline_color == FAKE_COLOR
    assert composer.headline(30).startswith("FAKE: frames 24-47")  # 320 pixels wide: a shorter variant fits
    assert composer.compose(30, np.zeros((240, 320, 3), np.uint8)).shape[1] == 320
    dip = analysis([0.9, 0.2, 0.9])
    assert "a dip inside a fake segment" in headline(dip, 8)
    spike = analysis([0.1, 0.99, 0.1])
    assert headline(spike).startswith("REAL: no manipulated segment")
    assert "over threshold, in no segment" in headline(spike, 8)
    assert FrameComposer(spike).headline_color == REAL_COLOR


def test_summary_lists_the_segments_from_frame_0() -> None:
    from istvt_explain.cli.explain_video import summary

    text = summary(analysis([0.1, 0.2, 0.1, 0.1, 0.9, 0.8, 0.95, 0.7]), [], {}, 1.0)
    assert "FAKE  (1 manipulated segment" in text
    assert "FAKE: frames 24-47 (peak 0.95, mean 0.84)" in text
    assert "0.481  (mean of the 8 clip scores" in text
    real = summary(analysis([0.1, 0.2]), [], {}, 1.0)
    assert "REAL  (no manipulated segment" in real and "FAKE:" not in real


def test_cli_options_reach_the_verdict(tmp_path: Path) -> None:
    """--threshold 0 makes every clip fake; --segment-min-clips 3 then asks for more than the video has."""
    from e2e_support import face_video, tiny_weights
    from test_cli_explain_video import run_cli

    video = face_video(tmp_path / "face.mp4").path  # 12 frames: two clips
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    code, out, err = run_cli(video, "--json", tmp_path / "r.json", "--weights", weights, "--method", "rollout",
                             "--threshold", 0, "--segment-min-clips", 3, "--segment-max-gap", 0)
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] == "fake" and [(s["start_frame"], s["end_frame"]) for s in report["segments"]] == [(0, 11)]
    assert report["segment_options"] == {"min_clips": 3, "max_gap": 0, "clip_frames": T}
    assert "FAKE: frames 0-11" in out
    code, _, err = run_cli(video, "--json", tmp_path / "r2.json", "--weights", weights, "--segment-max-gap", -1)
    assert code == 2 and "--segment-max-gap" in err
