"""``analyze_video``: a generated face video through faces, clips, model and explanation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from e2e_support import FRAMES, face_video, faceless_video, tiny_weights

import istvt_explain as ie
from istvt_explain.errors import InputError
from istvt_explain.pipeline import PipelineOptions, StageTimer, analyze_video


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return ie.load_model(tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors"))


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    """18 frames; the face leaves after frame 11."""
    visible = np.arange(18) < 12
    return face_video(tmp_path_factory.mktemp("v") / "partial.mp4", frames=18, visible=visible)


def test_a_face_video_is_analysed_with_maps_a_verdict_and_a_box_around_the_face(model, tmp_path: Path) -> None:
    video = face_video(tmp_path / "face.mp4")
    timer = StageTimer()
    calls = []
    a = analyze_video(video.path, model, PipelineOptions(method="rollout"), timer=timer,
                      progress=lambda *args: calls.append(args))
    assert (a.num_frames, a.width, a.height, a.fps) == (FRAMES, 320, 240, 25.0)
    assert a.frame_indices.shape == (2, 6) and a.explanation.spatial.shape[:2] == (2, 6)
    assert a.processed.all() and a.skipped_frames == []
    assert np.isfinite(a.frame_maps).all() and a.frame_maps.min() >= 0 and a.frame_maps.max() <= 1
    assert 0 <= a.video_probability <= 1 and a.verdict in ("real", "fake")
    assert {"faces", "explain"} <= set(timer.seconds)
    assert calls[-1] == ("explain", 2, 2)
    # the crop box is centred on the true face and larger than it
    truth, box = video.boxes[0], a.boxes[0]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    assert truth[0] < cx < truth[2] and truth[1] < cy < truth[3]
    assert box[2] - box[0] >= truth[2] - truth[0]


def test_frames_without_a_face_are_skipped_and_get_no_map(model, partial) -> None:
    a = analyze_video(partial.path, model, PipelineOptions(method="rollout"))
    assert a.skipped_frames == list(range(12, 18))
    assert a.processed[:12].all()
    maps = a.full_frame_maps()
    assert maps[:12].max() > 0 and not maps[12:].any()


def test_no_face_is_an_input_error(model, tmp_path: Path) -> None:
    path = faceless_video(tmp_path / "empty_scene.mp4")
    with pytest.raises(InputError, match="no face"):
        analyze_video(path, model)


def test_unknown_method_is_an_input_error(model, partial) -> None:
    with pytest.raises(InputError, match="method|unknown"):
        analyze_video(partial.path, model, PipelineOptions(method="no-such-method"))


def test_channels_last_weights_keep_the_output(model) -> None:
    import copy

    import torch

    from istvt_explain.models.inference import optimize_for_inference

    fast = optimize_for_inference(copy.deepcopy(model))
    assert fast.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    clips = torch.randn(1, 6, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(fast(clips), model(clips), rtol=1e-4, atol=1e-5)


def test_every_face_track_is_listed(model, partial) -> None:
    a = analyze_video(partial.path, model, PipelineOptions(method="rollout"))
    [track] = a.face_tracks
    assert a.track_index == 0 and track["ranges"] == [[0, 11]] and track["frames"] == 12
    assert track["first_frame"] == 0 and track["last_frame"] == 11 and track["size"] > 20


def test_every_face_is_analysed_with_one_detection_pass(model, two_face_video) -> None:
    """``analyze_every_face`` replays one detection pass: the same result as ``--face 1`` on its own."""
    from istvt_explain.pipeline.faces import analyze_every_face

    options = PipelineOptions(method="rollout")
    every = analyze_every_face(two_face_video.path, model, options)
    assert [a.track_index for a in every.analyses] == [0, 1] and every.skipped == {}
    big, small = every.tracks
    assert big["size"] > small["size"] and big["frames"] == small["frames"] == 20
    alone = analyze_video(two_face_video.path, model, PipelineOptions(method="rollout", face=1))
    np.testing.assert_allclose(every.analyses[1].boxes, alone.boxes)
    np.testing.assert_allclose(every.analyses[1].clip_probability, alone.clip_probability, rtol=1e-5)
    faces = every.faces()
    assert [f["index"] for f in faces] == [0, 1]
    assert all(f["verdict"] in ("real", "fake") and 0 <= f["fake_probability"] <= 1 and "segments" in f
               for f in faces)
    lead = every.most_suspicious()
    assert lead.verdict == every.verdict()
    # the other face's box is on the right (the mirrored astronaut), the largest's on the left
    assert np.nanmean(every.analyses[1].boxes[:, 0]) > np.nanmean(every.analyses[0].boxes[:, 0])


def test_skip_reasons_name_the_real_reason() -> None:
    """No face, a face run shorter than a clip, or a long run that clips skip over (--stride > T)."""
    from types import SimpleNamespace

    from istvt_explain.pipeline import VideoAnalysis

    face = np.array([0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], bool)  # runs: 1-2 (short), 4-13 (long)
    clips = np.array([[4, 5, 6, 7], [10, 11, 12, 13]])  # stride 6 > 4 frames: 8 and 9 fall between
    skipped = [0, 1, 2, 3, 8, 9]
    fake = SimpleNamespace(frame_indices=clips, face_frames=face, skipped_frames=skipped)
    assert VideoAnalysis.skip_reasons(fake) == {0: "no_face", 1: "face_too_briefly", 2: "face_too_briefly",
                                                3: "no_face", 8: "between_clips", 9: "between_clips"}
