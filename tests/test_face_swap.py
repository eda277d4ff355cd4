"""Cross-identity blends (data/face_swap.py) and dense landmarks (data/landmarks.py), on tiny images.

Landmarks here are a synthetic 468-point face (an ellipse of points with the eye corners where the
mesh has them), so the tests need neither the landmark model nor any training.
"""

from __future__ import annotations

import numpy as np
import pytest

from istvt_explain.data import face_swap as fs
from istvt_explain.data.datasets import pseudofake as pf
from istvt_explain.data.landmarks import LEFT_EYE_OUTER, POINTS, RIGHT_EYE_OUTER, FaceLandmarker, Landmarks
from istvt_explain.errors import InputError
from istvt_explain.train.config import ConfigError, config_from_dict


def synthetic_face(centre: tuple[float, float] = (24, 24), radius: float = 12.0, seed: int = 0,
                   squash: float = 1.0) -> np.ndarray:
    """468 points filling an ellipse (the outline and a scatter inside), eye corners at the mesh's indices."""
    rng = np.random.default_rng(seed)
    angle = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    outline = np.stack([np.cos(angle), 1.2 * np.sin(angle)], axis=1)
    r = np.sqrt(rng.uniform(0, 0.8, POINTS - 60))
    theta = rng.uniform(0, 2 * np.pi, POINTS - 60)
    inside = np.stack([r * np.cos(theta), 1.2 * r * np.sin(theta)], axis=1)
    pts = np.concatenate([outline, inside])
    pts[LEFT_EYE_OUTER] = (-0.5, -0.3)
    pts[RIGHT_EYE_OUTER] = (0.5, -0.3)
    pts[:, 0] *= squash
    return (pts * radius + centre).astype(np.float32)


def textured(seed: int, size: int = 48, level: float = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(level + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)


def smooth(seed: int, level: float, size: int = 48) -> np.ndarray:
    """A soft picture (texture blurred over a few pixels): a sub-pixel jitter barely changes it."""
    import cv2

    return cv2.GaussianBlur(textured(seed, size, level), (0, 0), 3)


def clip_of(face: np.ndarray, frames: int = 4, step: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A still background and its face landmarks moving right by ``step`` pixels a frame."""
    background = textured(1, level=90)
    video = np.stack([background] * frames)
    landmarks = np.stack([face + [step * t, 0] for t in range(frames)])
    return video, landmarks


# -- the mask ---------------------------------------------------------------------------------------
def test_hull_mask_covers_the_landmarks_not_the_background():
    face = synthetic_face()
    mask = fs.hull_mask(face, (48, 48))
    inside = np.round(face).astype(int)
    assert mask[inside[:, 1].clip(0, 47), inside[:, 0].clip(0, 47)].mean() > 0.95
    assert mask[:4].sum() == 0 and mask[-4:].sum() == 0 and mask[:, :6].sum() == 0 and mask[:, -6:].sum() == 0
    area = mask.sum()
    assert 0.8 * np.pi * 12 * 14.4 < area < 1.1 * np.pi * 12 * 14.4  # the hull's own area, not the frame's


def test_hull_mask_moves_with_the_landmarks():
    face = synthetic_face()
    shape = fs.draw_mask_shape(np.random.default_rng(0))
    here = fs.hull_mask(face, (48, 48), shape)
    there = fs.hull_mask(face + [6, 3], (48, 48), shape)
    np.testing.assert_array_equal(np.roll(here, (3, 6), axis=(0, 1)), there)


def test_mask_deformation_erodes_or_dilates():
    face = synthetic_face()
    plain = fs.MaskShape(np.ones(24), 0.0, 0.02)
    grown = fs.hull_mask(face, (48, 48), fs.MaskShape(np.ones(24), 0.08, 0.02))
    shrunk = fs.hull_mask(face, (48, 48), fs.MaskShape(np.ones(24), -0.08, 0.02))
    base = fs.hull_mask(face, (48, 48), plain)
    assert shrunk.sum() < base.sum() < grown.sum()
    assert np.all(grown >= base) and np.all(base >= shrunk)


# -- the donor --------------------------------------------------------------------------------------
def test_choose_donor_never_picks_the_target_person_and_picks_the_nearest():
    target = synthetic_face(seed=0)
    candidates = [("target", target.copy()),  # the same person, same pose: must never win
                  ("near", synthetic_face(seed=0, squash=1.05) * 2.0 + 7),  # same shape, scaled and moved
                  ("far", synthetic_face(seed=5, squash=0.6)),
                  ("farther", synthetic_face(seed=9, squash=1.6))]
    rng = np.random.default_rng(0)
    picks = {candidates[fs.choose_donor("target", target, candidates, rng, pool=8)][0] for _ in range(20)}
    assert picks == {"near"}
    with pytest.raises(InputError, match="second person"):
        fs.choose_donor("target", target, [("target", target)], rng)


def test_landmark_distance_ignores_position_scale_and_roll():
    face = synthetic_face()
    turned = face - face.mean(axis=0)
    c, s = np.cos(0.3), np.sin(0.3)
    turned = turned @ np.array([[c, -s], [s, c]]).T * 3 + 50
    assert fs.landmark_distance(face, turned) < 1e-6
    assert fs.landmark_distance(face, synthetic_face(squash=0.6)) > 0.05


@pytest.fixture
def material_with_landmarks(monkeypatch):
    """Train, val and test material with synthetic landmarks instead of the model's."""
    from istvt_explain.data import landmarks

    def fake_landmarks(names, progress=True):
        out = {}
        for i, name in enumerate(names):
            box = pf.face_pictures([name])[0].box
            centre = (box[0] + box[2] / 2, box[1] + box[3] / 2)
            out[name] = Landmarks(synthetic_face(centre, box[2] / 2.5, seed=i % 3), 1.0)
        return out

    monkeypatch.setattr(landmarks, "picture_landmarks", fake_landmarks)


def test_training_donors_come_from_the_training_people_only(material_with_landmarks):
    train = pf.MaterialClipSource(["astronaut", "camera", "lfw_subset[0:6]"], 2, 48, landmarks=True)
    held_out = {"Grace Hopper"}
    seen = set()
    for i in range(40):
        rng = np.random.default_rng(i)
        target = train.clip(i, rng)
        donor = train.donor(target, rng)
        if donor is None:
            continue
        assert donor.person != pf.material_person(target.name)
        assert donor.person in train.people and donor.person not in held_out
        seen.add(donor.person)
    assert len(seen) >= 3


def test_no_donor_when_only_one_person(material_with_landmarks):
    source = pf.MaterialClipSource(["astronaut"], 2, 48, landmarks=True)
    rng = np.random.default_rng(0)
    assert source.donor(source.clip(0, rng), rng) is None


def test_animated_clips_carry_landmarks_that_follow_the_face(material_with_landmarks):
    source = pf.MaterialClipSource(["astronaut"], 3, 64, landmarks=True)
    clip = source.clip(0, np.random.default_rng(3))
    assert clip.landmarks.shape == (3, POINTS, 2)
    centre = clip.landmarks.mean(axis=1)
    assert np.all(np.abs(centre - 32) < 10)  # the face is near the crop's centre on every frame


# -- the blend ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("blend", fs.SWAP_BLENDS)
def test_both_blends_change_only_the_masked_region(blend):
    video, landmarks = clip_of(synthetic_face(), frames=3)
    donor = fs.Donor(textured(7, level=200), synthetic_face(seed=2), "someone else")
    rng = np.random.default_rng(0)
    draw = fs.SwapDraw(blend, fs.draw_mask_shape(rng), 1.0, 1.0)
    fake, masks = fs.swap_clip(video, landmarks, donor, rng, draw=draw)
    assert fake.shape == video.shape and masks.shape == video.shape[:3]
    changed = np.any(fake != video, axis=-1)
    assert changed.any()
    assert not np.any(changed & (masks == 0)), "a pixel outside the mask moved"
    assert masks.max() > 0.9 and masks[:, :2].max() == 0


def test_a_clip_gets_one_draw_and_only_a_small_jitter_per_frame():
    face = synthetic_face()
    video, landmarks = clip_of(face, frames=5, step=0.0)  # a still face: frames differ only by jitter
    video = np.clip(video.astype(int) + 12 * np.arange(5)[:, None, None, None], 0, 255).astype(np.uint8)
    # the target brightens frame by frame: a colour transfer measured anew on each frame would follow it
    donor = fs.Donor(smooth(7, level=200), synthetic_face(seed=2), "someone else")
    rng = np.random.default_rng(1)
    draw = fs.SwapDraw("alpha", fs.draw_mask_shape(rng), 1.0, 1.0)  # the donor alone in the mask's core
    fake, masks = fs.swap_clip(video, landmarks, donor, rng, draw=draw)
    np.testing.assert_array_equal(masks[0], masks[-1])  # one mask shape for the clip
    inside = masks[0] >= 0.999
    means = np.array([f[inside].astype(float).mean(axis=0) for f in fake])
    assert np.abs(means - means[0]).max() < 3  # one colour transfer: the same colours on every frame
    assert np.abs(fake[0].astype(int) - fake[-1].astype(int)).mean() > 0  # but not a frozen copy
    # a wholly new draw moves far more than the per-frame jitter does
    other, _ = fs.swap_clip(video, landmarks, fs.Donor(smooth(8, level=60), synthetic_face(seed=4), "third"),
                            np.random.default_rng(2), blends=("alpha",))
    jitter = np.abs(fake[0].astype(int) - fake[-1].astype(int))[inside].mean()
    assert np.abs(fake[0].astype(int) - other[0].astype(int))[inside].mean() > 3 * jitter


def test_colour_transfer_matches_the_target_colours():
    target = np.full((24, 24, 3), (180, 120, 90), np.uint8)
    source = np.full((24, 24, 3), (60, 90, 160), np.float32)
    mask = np.ones((24, 24), np.float32)
    scale, shift = fs.reinhard_transfer(source, target, mask, mask)
    moved = fs.apply_transfer(source, scale, shift)
    assert np.abs(moved.mean(axis=(0, 1)) - target.mean(axis=(0, 1))).max() < 3


def test_frames_without_landmarks_are_left_alone():
    video, landmarks = clip_of(synthetic_face(), frames=2)
    landmarks[1] = np.nan
    donor = fs.Donor(textured(7, level=200), synthetic_face(seed=2), "someone else")
    fake, masks = fs.swap_clip(video, landmarks, donor, np.random.default_rng(0))
    np.testing.assert_array_equal(fake[1], video[1])
    assert masks[1].max() == 0 and masks[0].max() > 0


def test_dataset_mixes_swaps_and_self_blends(material_with_landmarks):
    source = pf.MaterialClipSource(["astronaut", "camera", "lfw_subset[0:4]"], 2, 48, landmarks=True)
    data = pf.PseudoFakeDataset(source, 24, augment=False, swap_share=0.5)
    kinds = [data[i]["manipulation"] for i in range(1, 24, 2)]
    assert {"pseudofake"} < set(kinds) and any(k.startswith("faceswap_") for k in kinds)
    assert all(data[i]["manipulation"] == "real" for i in range(0, 6, 2))
    none = pf.PseudoFakeDataset(source, 8, augment=False, swap_share=0.0)
    assert {none[i]["manipulation"] for i in range(1, 8, 2)} == {"pseudofake"}


def test_dataset_refuses_swaps_without_landmark_material():
    with pytest.raises(InputError, match="landmarks"):
        pf.PseudoFakeDataset(pf.PictureClipSource(["astronaut"], 2, 32), 4, swap_share=0.5)
    with pytest.raises(InputError, match="swap blends"):
        pf.PseudoFakeDataset(pf.MaterialClipSource(["astronaut"], 2, 32), 4, swap_blends=("glue",))


# -- the config ---------------------------------------------------------------------------------------
def _config(**data):
    base = {"kind": "pseudofake_pictures", "train_pictures": ["astronaut", "camera"],
            "val_pictures": ["astronaut", "lfw_subset[0:2]"], "test_pictures": ["grace_hopper", "pyfeat_man"]}
    return config_from_dict({"data": base | data})


def test_config_accepts_swaps():
    config = _config(swap_share=0.5, swap_blends=["poisson"], swap_pool=4)
    assert config.data.swap_share == 0.5 and config.data.swap_blends == ["poisson"]
    assert _config().data.swap_share == 0.0


@pytest.mark.parametrize(("data", "message"), [
    ({"swap_share": 1.5}, "data.swap_share must be within"),
    ({"swap_share": -0.1}, "data.swap_share must be within"),
    ({"swap_blends": ["glue"]}, "data.swap_blends"),
    ({"swap_blends": []}, "data.swap_blends"),
    ({"swap_pool": 0}, "data.swap_pool"),
    ({"swap_share": 0.5, "train_pictures": ["astronaut"]}, "two people in data.train_pictures"),
    ({"swap_share": 0.5, "test_pictures": ["grace_hopper"]}, "two people in data.test_pictures"),
    ({"swap_share": "half"}, "data.swap_share must be a number"),
])
def test_config_refuses_bad_swap_keys(data, message):
    with pytest.raises(ConfigError, match=message):
        _config(**data)


def test_config_refuses_swaps_without_face_material():
    with pytest.raises(ConfigError, match="pseudofake_pictures"):
        config_from_dict({"data": {"kind": "cached", "cache_dir": "/tmp/x", "swap_share": 0.3}})


# -- the landmark model -------------------------------------------------------------------------------
def test_missing_landmark_model_is_one_plain_error(tmp_path):
    with pytest.raises(InputError, match="landmark model .* is missing"):
        FaceLandmarker(tmp_path / "nope.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a TFLite file"):
        FaceLandmarker(bad)


def test_landmark_model_finds_a_real_face():
    """The real model on the astronaut's face (runs only where the mediapipe wheel is fetched)."""
    from istvt_explain.data.material.archives import is_fetched
    from istvt_explain.data.material.catalogue import face_pictures

    if not is_fetched("mediapipe"):
        pytest.skip("the mediapipe wheel is not fetched (istvt-explain fetch-material)")
    picture = face_pictures(["astronaut"])[0]
    found = FaceLandmarker()(picture.load(), picture.box)
    x, y, w, h = picture.box
    assert found.ok and found.points.shape == (POINTS, 2)
    centre = found.points.mean(axis=0)
    assert abs(centre[0] - (x + w / 2)) < 0.2 * w and abs(centre[1] - (y + h / 2)) < 0.25 * h
    eyes = found.points[[LEFT_EYE_OUTER, RIGHT_EYE_OUTER]]
    assert eyes[0, 0] < eyes[1, 0] and 0.3 * w < eyes[1, 0] - eyes[0, 0] < 0.9 * w
