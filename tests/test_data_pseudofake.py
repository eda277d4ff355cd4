"""Self-blended pseudo-fake clips: shapes, where the change is, temporal consistency."""

from __future__ import annotations

import numpy as np
import pytest

from istvt_explain.data.faces import create_detector
from istvt_explain.data.media import face_image
from istvt_explain.data.pseudofake import face_mask, make_pseudofake_clip


@pytest.fixture(scope="module")
def real_clip():
    """Six 96 px crops of the real face drifting by a pixel a frame, and MTCNN keypoints for them."""
    import cv2

    picture = cv2.resize(face_image()[20:200, 20:210], (112, 106))
    frames = np.stack([np.ascontiguousarray(picture[t:t + 96, t:t + 96]) for t in range(6)])
    detector = create_detector("mtcnn")
    keypoints = np.stack([detector.detect(f)[0].keypoints for f in frames])
    return frames, keypoints


@pytest.mark.parametrize("use_keypoints", [False, True])
def test_pseudofake_changes_only_the_masked_face_under_a_steady_mask(real_clip, use_keypoints):
    frames, keypoints = real_clip
    fake, masks = make_pseudofake_clip(frames, np.random.default_rng(1), keypoints if use_keypoints else None)
    assert fake.shape == frames.shape and fake.dtype == np.uint8
    assert masks.shape == (6, 96, 96) and masks.dtype == np.float32
    assert masks.min() >= 0 and 0.2 <= masks.max() <= 1
    # Outside the mask the clip is untouched; inside it changed.
    outside = masks == 0
    assert outside.any() and np.array_equal(fake[outside], frames[outside])
    inside = masks > 0.5 * masks.max()
    assert np.abs(fake[inside].astype(int) - frames[inside]).mean() > 1
    # The mask covers the face: the centre, not the corners.
    assert masks[:, 48, 48].min() > 0.5 * masks.max() and masks[:, :8, :8].max() == 0
    # Consistent over time: neighbouring masks differ far less than the mask itself.
    assert np.abs(np.diff(masks, axis=0)).mean() < 0.2 * masks.mean()


def test_pseudofake_is_reproducible_and_checks_input(real_clip):
    frames, _ = real_clip
    a = make_pseudofake_clip(frames, np.random.default_rng(7))
    b = make_pseudofake_clip(frames, np.random.default_rng(7))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="expected uint8 face crops"):
        make_pseudofake_clip(frames[0], np.random.default_rng(0))


def test_face_mask_follows_keypoints(real_clip):
    _, keypoints = real_clip
    mask = face_mask(96, keypoints[0])
    eyes_and_mouth = np.round(keypoints[0]).astype(int)
    assert all(mask[y, x] > 0.9 for x, y in eyes_and_mouth)
    shifted = face_mask(96, keypoints[0] + [20, 0])
    assert (np.argwhere(shifted > 0.5)[:, 1].mean() - np.argwhere(mask > 0.5)[:, 1].mean()) == pytest.approx(20, abs=2)
