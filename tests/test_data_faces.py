"""Face detectors on a real face, tracking between detections, smoothing, square crops."""

from __future__ import annotations

import numpy as np
import pytest

from istvt_explain.data.faces import (
    Detection,
    FaceTrack,
    create_detector,
    crop_square,
    detect_faces,
    square_boxes,
    track_faces,
)
from istvt_explain.data.media import face_box, face_image


def _inside(points: np.ndarray, box: np.ndarray) -> bool:
    return bool(((points >= box[:2]) & (points <= box[2:])).all())


@pytest.mark.parametrize("name", ["mtcnn", "haar"])
def test_detectors_find_the_real_face(name):
    picture = face_image()
    canvas = np.full((360, 640, 3), 120, np.uint8)
    canvas[60:300, 300:530] = picture  # the picture at (x=300, y=60) in a bigger frame
    found = detect_faces(canvas, create_detector(name))
    assert len(found) == 1
    truth = face_box() + [300, 60, 300, 60]
    centre = (found[0].box[:2] + found[0].box[2:]) / 2
    assert _inside(centre, truth)
    assert 0.6 < found[0].size / (truth[2] - truth[0]) < 1.6
    if name == "mtcnn":
        assert found[0].keypoints.shape == (5, 2) and _inside(found[0].keypoints, found[0].box + [-5, -5, 5, 5])
        left_eye, right_eye = found[0].keypoints[:2]
        assert left_eye[0] < right_eye[0]


def test_detectors_see_nothing_in_a_blank_frame():
    assert detect_faces(np.full((120, 160, 3), 90, np.uint8), "mtcnn") == []
    assert detect_faces(np.full((8, 8, 3), 90, np.uint8), "mtcnn") == []  # below MTCNN's window
    with pytest.raises(ValueError, match="unknown face detector"):
        create_detector("dlib")


def _det(x: float, y: float, size: float = 40.0) -> Detection:
    return Detection(box=np.array([x, y, x + size, y + size]), score=0.99,
                     keypoints=np.array([[x + 10, y + 15], [x + 30, y + 15], [x + 20, y + 25], [x + 12, y + 32],
                                         [x + 28, y + 32]], float))


def test_tracks_follow_two_faces_between_sparse_detections():
    # Detector every 3rd frame; face A moves right 2 px/frame, face B (smaller) stays still.
    frames = 30
    detections = [[_det(10 + 2 * t, 50), _det(200, 60, 25)] if t % 3 == 0 else None for t in range(frames)]
    tracks = track_faces(detections, smooth_sigma=0)
    assert len(tracks) == 2 and all(isinstance(t, FaceTrack) for t in tracks)
    big, small = tracks
    assert big.mean_size > small.mean_size  # largest first
    assert big.present.all() and big.detected.sum() == 10
    # Interpolated frames lie on the true path.
    np.testing.assert_allclose(big.boxes[:28, 0], 10 + 2 * np.arange(28), atol=1e-6)
    assert np.isfinite(big.keypoints).all()


def test_smoothing_removes_jitter_and_gaps_end_tracks():
    rng = np.random.default_rng(0)
    detections = [[_det(100 + rng.normal(0, 3), 80 + rng.normal(0, 3))] for _ in range(40)]
    for t in range(20, 40):  # the face leaves for 20 frames ...
        detections[t] = []
    detections += [[_det(100, 80)] for _ in range(10)]  # ... and comes back
    raw = track_faces(detections, smooth_sigma=0, max_gap=5)
    smooth = track_faces(detections, smooth_sigma=2.0, max_gap=5)
    assert len(raw) == 1 and raw[0].num_frames == 30
    assert not raw[0].present[20:40].any() and np.isnan(raw[0].boxes[25]).all()
    jitter = lambda t: np.abs(np.diff(t.boxes[:20, 0])).mean()  # noqa: E731
    assert jitter(smooth[0]) < 0.5 * jitter(raw[0])


def test_square_boxes_and_crops_keep_scale_at_the_border():
    box = square_boxes(np.array([[10.0, 20.0, 50.0, 100.0]]), margin=1.25)[0]
    np.testing.assert_allclose(box, [-20, 10, 80, 110])  # side 1.25 x 80 around the centre (30, 60)
    frame = np.full((100, 100, 3), 200, np.uint8)
    crop = crop_square(frame, box, 50)
    assert crop.shape == (50, 50, 3)
    assert crop[:, :9].max() == 0 and crop[46:].max() == 0  # outside the frame (left, bottom) is black
    assert crop[:44, 11:].min() == 200
