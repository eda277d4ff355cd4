"""From a video of a real face to clips: crops hold the face in every frame, boxes map back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from istvt_explain.data.clips import clip_windows, extract_face_clips, normalize_clip, video_score
from istvt_explain.data.faces import create_detector
from istvt_explain.data.media import make_face_video
from istvt_explain.errors import InputError


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)


@pytest.mark.parametrize("detect_every", [1, 4])
def test_crops_contain_the_face_and_boxes_map_back(face_video, detect_every):
    clips = extract_face_clips(face_video.path, image_size=96, frames=6, detect_every=detect_every)
    n = 24
    assert clips.num_frames == n and clips.face_frames.all() and clips.frame_size == (240, 320)
    assert clips.frame_indices.shape == (4, 6) and clips.clips.shape == (4, 6, 96, 96, 3)
    assert np.array_equal(clips.frame_indices.ravel(), np.arange(n))
    # Boxes on the full frame: the detected face follows the true one, inside the square crop box.
    assert _iou(clips.face_boxes, face_video.boxes).min() > 0.5
    truth_centre = (face_video.boxes[:, :2] + face_video.boxes[:, 2:]) / 2
    assert ((truth_centre > clips.boxes[:, :2]) & (truth_centre < clips.boxes[:, 2:])).all()
    sides = clips.boxes[:, 2] - clips.boxes[:, 0]
    np.testing.assert_allclose(sides, clips.boxes[:, 3] - clips.boxes[:, 1])
    # The crop of every frame shows the face near its centre, at the 1.25 margin scale.
    detector = create_detector("mtcnn", min_face=20)
    for crop in clips.crops:
        found = detector.detect(crop)
        assert found, "no face in a crop"
        centre = (found[0].box[:2] + found[0].box[2:]) / 2
        assert np.abs(centre - 48).max() < 15 and 0.55 < found[0].size / 96 < 1.0
    tensor = clips.tensor()
    assert tensor.shape == (4, 6, 3, 96, 96) and tensor.dtype == torch.float32


def test_choose_among_several_faces(two_face_video):
    largest = extract_face_clips(two_face_video.path, image_size=64, frames=6)
    other = extract_face_clips(two_face_video.path, image_size=64, frames=6, face=1, detect_every=2)
    assert largest.num_tracks == 2 and other.track_index == 1
    assert _iou(largest.face_boxes, two_face_video.boxes).min() > 0.5
    assert _iou(other.face_boxes, two_face_video.other_boxes).min() > 0.5
    with pytest.raises(InputError, match="face track 5"):
        extract_face_clips(two_face_video.path, image_size=64, frames=6, face=5)


def test_face_in_only_some_frames(tmp_path):
    visible = np.r_[np.zeros(4, bool), np.ones(12, bool), np.zeros(4, bool)]
    video = make_face_video(tmp_path / "partial.mp4", frames=20, visible=visible, motion="still")
    clips = extract_face_clips(video.path, image_size=64, frames=6, stride=3, max_gap=2)
    assert np.array_equal(clips.face_frames, visible)
    assert np.isnan(clips.boxes[~visible]).all() and np.isfinite(clips.boxes[visible]).all()
    assert clips.frame_indices.tolist() == [[4, 5, 6, 7, 8, 9], [7, 8, 9, 10, 11, 12], [10, 11, 12, 13, 14, 15]]
    capped = extract_face_clips(video.path, image_size=64, frames=6, stride=1, max_clips=2, max_gap=2)
    assert capped.frame_indices[:, 0].tolist() == [4, 10]


def test_no_face_and_too_few_face_frames_are_input_errors(tmp_path):
    blank = make_face_video(tmp_path / "blank.mp4", frames=8, visible=[False] * 8)
    with pytest.raises(InputError, match="no face found in any of its 8 frames") as err:
        extract_face_clips(blank.path, image_size=64)
    assert str(blank.path) in str(err.value)
    short = make_face_video(tmp_path / "short.mp4", frames=10, visible=[True] * 3 + [False] * 7, motion="still")
    with pytest.raises(InputError, match="a face in only 3 of 10 frames"):
        extract_face_clips(short.path, image_size=64, frames=6, max_gap=2)
    with pytest.raises(InputError, match="no such file"):
        extract_face_clips(tmp_path / "nothing.mp4")


def test_a_grey_odd_sized_video_still_gives_face_clips(face_video, tmp_path):
    """A grey 241 x 181 FFV1 video (no H.264, no even sides) of the same face still gives clips."""
    import av
    import cv2

    from istvt_explain.data.video import VideoReader

    path = tmp_path / "grey.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 241, 181, "gray"
        for frame in VideoReader(face_video.path).read_frames(range(12)):
            grey = cv2.cvtColor(cv2.resize(frame, (241, 181)), cv2.COLOR_RGB2GRAY)
            for packet in stream.encode(av.VideoFrame.from_ndarray(grey, format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    clips = extract_face_clips(path, image_size=64, frames=6)
    assert clips.frame_size == (181, 241) and clips.face_frames.all() and clips.clips.shape == (2, 6, 64, 64, 3)
    truth = face_video.boxes[:12] * (241 / 320)
    assert _iou(clips.face_boxes, truth).min() > 0.5
    assert np.array_equal(clips.crops[..., 0], clips.crops[..., 2])  # grey stays grey


def test_haar_fallback_gives_clips(face_video):
    clips = extract_face_clips(face_video.path, image_size=64, frames=6, detector="haar", max_frames=12)
    assert clips.num_frames == 12 and clips.face_frames.all()
    assert np.isnan(clips.keypoints).all()  # Haar has no keypoints
    assert _iou(clips.face_boxes, face_video.boxes[:12]).min() > 0.4


def test_clip_windows_skip_gaps_normalisation_spans_minus_1_to_1_and_video_score_is_the_mean():
    present = np.r_[np.ones(7, bool), np.zeros(2, bool), np.ones(6, bool)]
    assert clip_windows(present, 3, 2).tolist() == [[0, 1, 2], [2, 3, 4], [4, 5, 6], [9, 10, 11], [11, 12, 13]]
    # No run long enough: windows skip the gaps instead of giving nothing.
    assert clip_windows(np.r_[1, 1, 0, 1, 1].astype(bool), 3, 1).tolist() == [[0, 1, 3], [1, 3, 4]]
    assert clip_windows(np.zeros(5, bool), 3).shape == (0, 3)
    clip = np.array([[[[0, 255, 51]]]], np.uint8)
    out = normalize_clip(clip)
    assert out.shape == (1, 3, 1, 1) and out.flatten().tolist() == pytest.approx([-1.0, 1.0, -0.6])
    assert normalize_clip(torch.from_numpy(clip)).shape == (1, 3, 1, 1)
    assert video_score([0.2, 0.4, 0.9]) == pytest.approx(0.5)
