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


def _frames_with_faces(count: int) -> list[np.ndarray | None]:
    """The astronaut at a different place in each frame, every third frame skipped (None)."""
    picture, frames = face_image(), []
    for i in range(count):
        if i % 3 == 2:
            frames.append(None)
            continue
        canvas = np.full((360, 640, 3), 100 + i, np.uint8)
        canvas[40 + 4 * i:280 + 4 * i, 60 + 25 * i:290 + 25 * i] = picture
        frames.append(canvas)
    return frames


@pytest.mark.parametrize("name", ["mtcnn", "haar"])
def test_parallel_detection_equals_one_thread_in_order(name, monkeypatch):
    from istvt_explain.data import detectors

    frames = _frames_with_faces(12)
    detector = create_detector(name)
    alone = detectors.parallel_detect(frames, detector, workers=1)
    clones: list[object] = []
    real_clone = type(detector).clone
    monkeypatch.setattr(type(detector), "clone", lambda self: clones.append(1) or real_clone(self))
    together = detectors.parallel_detect(iter(frames), detector, workers=3)  # a generator, as the face pass gives
    assert 1 <= len(clones) <= 3  # one detector per thread that ran, never the caller's own
    assert [d is None for d in together] == [f is None for f in frames]
    for a, b in zip(alone, together, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert len(a) == len(b) >= 1
            np.testing.assert_allclose([d.box for d in a], [d.box for d in b])
    xs = [d[0].box[0] for d in together if d]
    assert xs == sorted(xs)  # the face moves right frame by frame: results came back in frame order


def test_a_detector_without_clone_runs_in_the_callers_thread():
    import threading

    from istvt_explain.data import detectors

    class Replay:
        name = "replay"

        def __init__(self) -> None:
            self.threads: set[str] = set()

        def detect(self, frame):
            self.threads.add(threading.current_thread().name)
            return []

    replay = Replay()
    assert detectors.parallel_detect([np.zeros((4, 4, 3), np.uint8)] * 5 + [None], replay, workers=4) == [[]] * 5 + [None]
    assert replay.threads == {threading.current_thread().name}
