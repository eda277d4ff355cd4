"""Training material for the demo weights: shipped faces, the identity split, the blend, the degradations."""

from __future__ import annotations

import numpy as np
import pytest

from istvt_explain.data.datasets.pseudofake import MaterialClipSource, PseudoFakeDataset, colourise
from istvt_explain.data.degrade import DegradeOptions, degrade_clip, h264_roundtrip
from istvt_explain.data.material.catalogue import expand_material, face_pictures, material_person, video_faces
from istvt_explain.data.pseudofake import self_blend_clip
from istvt_explain.errors import InputError
from istvt_explain.train import ConfigError, config_from_dict


def _clip(seed: int = 0, t: int = 4, s: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(1, s // 8, s // 8, 3)).astype(np.uint8)
    frames = np.repeat(np.kron(base, np.ones((1, 8, 8, 1), np.uint8)), t, axis=0)
    return frames + rng.integers(0, 8, size=frames.shape).astype(np.uint8)


def test_lfw_ranges_expand_and_unknown_names_are_refused():
    assert expand_material(["lfw_subset[3:6]", "astronaut"]) == [
        "lfw_subset/03", "lfw_subset/04", "lfw_subset/05", "astronaut"]
    assert len(expand_material(["lfw_subset"])) == 100
    with pytest.raises(InputError, match="unknown face material"):
        expand_material(["nobody"])
    with pytest.raises(InputError, match="within"):
        expand_material(["lfw_subset[90:120]"])
    picture = face_pictures(["lfw_subset[7:8]"])[0]
    image = picture.load()
    assert image.shape == (25, 25, 3) and image.dtype == np.uint8 and image.std() > 10  # a real face, not blank
    assert material_person("lfw_subset/07") != material_person("lfw_subset/08")


def _demo_like(**data):
    base = {"kind": "pseudofake_pictures", "train_pictures": ["astronaut", "lfw_subset[0:10]"],
            "val_pictures": ["astronaut"], "test_pictures": ["grace_hopper", "carphone"]}
    return config_from_dict({"data": base | data})


def test_identity_split_is_enforced():
    assert _demo_like().data.test_pictures == ["grace_hopper", "carphone"]
    with pytest.raises(ConfigError, match="Grace Hopper.*also in"):
        _demo_like(train_pictures=["astronaut", "grace_hopper"])
    with pytest.raises(ConfigError, match="lfw_subset/05"):
        _demo_like(test_pictures=["lfw_subset[5:6]"])
    with pytest.raises(ConfigError, match="data.train_pictures"):
        _demo_like(train_pictures=["nobody"])


def test_self_blend_changes_only_the_face_and_is_reproducible():
    frames = _clip(1)
    fake, masks = self_blend_clip(frames, np.random.default_rng(3))
    again, masks_again = self_blend_clip(frames, np.random.default_rng(3))
    assert np.array_equal(fake, again) and np.array_equal(masks, masks_again)
    assert fake.shape == frames.shape and masks.shape == frames.shape[:3]
    outside = masks == 0
    assert np.array_equal(fake[outside], frames[outside])
    assert outside[:, :4, :4].all() and outside[:, :4, -4:].all()  # the crop's top corners are background
    inside = masks > 0.5
    assert inside.any() and np.abs(fake[inside].astype(int) - frames[inside]).mean() > 1
    # One mask shape for the clip: on a still clip every frame has the same mask.
    assert all(np.array_equal(masks[0], m) for m in masks[1:])


def test_blend_mask_follows_keypoints():
    frames = _clip(2, t=2, s=96)
    points = np.array([[30, 30], [50, 30], [40, 42], [32, 54], [48, 54]], np.float32)
    keypoints = np.stack([points, points + [30, 20]])  # the face moves right and down
    _, masks = self_blend_clip(frames, np.random.default_rng(0), keypoints=keypoints)
    centres = [np.array(np.nonzero(m > 0.5)).mean(axis=1) for m in masks]  # (row, col)
    assert centres[1][1] - centres[0][1] == pytest.approx(30, abs=2)
    assert centres[1][0] - centres[0][0] == pytest.approx(20, abs=2)


def test_degradations_are_drawn_once_per_pair():
    real = _clip(3, s=128)
    fake, masks = self_blend_clip(real, np.random.default_rng(4), face_fraction=0.5)
    no_codec = DegradeOptions(jpeg=0.0, h264=0.0, colour=1.0, downscale=1.0, blur=1.0, noise=1.0, grey=0.0)
    a = degrade_clip(real, np.random.default_rng(9), options=no_codec)
    b = degrade_clip(fake, np.random.default_rng(9), options=no_codec)
    assert not np.array_equal(a, real)
    # Downscaling and blur spread the blend a few pixels; far from the mask the pair stays identical.
    far = np.stack([cv2_dilate_free(m) for m in masks])
    assert far.mean() > 0.1
    assert np.array_equal(a[far], b[far])


def cv2_dilate_free(mask: np.ndarray, margin: int = 12) -> np.ndarray:
    """Pixels at least ``margin`` pixels from any blended pixel."""
    rows, cols = np.nonzero(mask > 0)
    free = np.ones_like(mask, bool)
    free[max(rows.min() - margin, 0):rows.max() + margin + 1, max(cols.min() - margin, 0):cols.max() + margin + 1] = False
    return free


def test_h264_roundtrip_keeps_shape_and_loses_more_at_higher_crf():
    frames = _clip(5, t=6, s=64)
    low = h264_roundtrip(frames, 23)
    high = h264_roundtrip(frames, 40)
    assert low.shape == frames.shape and low.dtype == np.uint8
    err = [np.abs(x.astype(int) - frames).mean() for x in (low, high)]
    assert 0 < err[0] < err[1]
    odd = h264_roundtrip(frames[:, :63, :61], 30)  # odd sides are padded for yuv420p and cropped back
    assert odd.shape == (6, 63, 61, 3)


def test_colourise_turns_grey_into_colour():
    grey = np.repeat(_clip(6)[..., :1], 3, axis=-1)
    colour = colourise(grey, np.random.default_rng(0))
    assert colour.shape == grey.shape and not np.array_equal(colour[..., 0], colour[..., 2])
    # Brighter grey stays brighter: the ramp is monotone.
    order = np.argsort(grey[0, ..., 0].ravel())
    assert np.all(np.diff(colour[0, ..., 0].ravel()[order].astype(int)) >= 0)


def test_video_material_gives_consecutive_runtime_crops():
    faces = video_faces("carphone", 64)
    assert faces.crops.shape[1:] == (64, 64, 3) and len(faces.crops) > 100  # a face in nearly all 120 frames
    starts = faces.clip_starts(6)
    assert len(starts) > 0 and np.all(faces.frames[starts + 5] - faces.frames[starts] == 5)
    source = MaterialClipSource(["carphone"], 6, 64)
    data = PseudoFakeDataset(source, 4, seed=0, augment=False, blend="builtin")
    real, fake = data[0], data[1]
    assert real["clip"].shape == (6, 3, 64, 64) and fake["label"] == 1.0
    assert float(fake["mask"].max()) > 0.5 and real["video_id"].startswith("carphone")


def test_degradation_ramp_starts_clean_and_reaches_the_full_rates():
    from istvt_explain.data.degrade import ramped

    full = DegradeOptions()
    assert ramped(full, 1.0) == full and ramped(full, 3.0) == full
    none = ramped(full, 0.0)
    assert all(getattr(none, k) == 0 for k in DegradeOptions.PROBABILITIES)
    assert none.h264_crf == full.h264_crf  # strengths stay; only how often changes
    frames = _clip(7)
    assert np.array_equal(degrade_clip(frames, np.random.default_rng(1), options=none), frames)
    data = PseudoFakeDataset(MaterialClipSource(["astronaut"], 2, 32), 2, degrade_ramp_epochs=3)
    rates = []
    for epoch in range(5):
        data.set_epoch(epoch)
        rates.append(data._degrade_now().h264)
    assert rates == pytest.approx([full.h264 * f for f in (0.25, 0.5, 0.75, 1.0, 1.0)])


def test_config_degrade_section_changes_the_rates_and_refuses_bad_values():
    from istvt_explain.models import preset_config
    from istvt_explain.train.config import ConfigError, load_config
    from istvt_explain.train.data import build_dataset

    config = load_config("demo_robust", **{"data.train_clips": 2})
    data = build_dataset(config, preset_config("tiny"), "train")
    assert data.degrade.blur == 0.4 and data.degrade.blur_sigma == (0.4, 4.0) and data.degrade.downscale == 0.35
    assert data.degrade.jpeg == DegradeOptions().jpeg  # fields not named keep their defaults
    for bad in ({"blurr": 0.1}, {"blur": 1.5}, {"blur_sigma": [3, 1]}, {"noise": "often"}):
        with pytest.raises(ConfigError, match="data.degrade"):
            load_config("demo_robust", **{"data.degrade": bad})


def _detail(frames: np.ndarray, inside: np.ndarray) -> float:
    """Mean absolute Laplacian inside the mask: how much fine detail a region keeps."""
    import cv2
    grey = frames.mean(axis=-1).astype(np.float32)
    return float(np.mean([np.abs(cv2.Laplacian(g, cv2.CV_32F))[m] for g, m in zip(grey, inside, strict=True)]))


def test_blend_frequency_mix_decides_whether_the_face_gets_softer_or_sharper():
    from istvt_explain.data.pseudofake import DEFAULT_FREQUENCY_MIX, frequency_mix
    assert frequency_mix(None) == DEFAULT_FREQUENCY_MIX
    assert frequency_mix({"none": 2, "sharpen": 2}) == {"none": 0.5, "blur": 0.0, "sharpen": 0.5, "resample": 0.0}
    for bad in ({"blurry": 1}, {"blur": -1}, {"none": 0}):
        with pytest.raises(ValueError):
            frequency_mix(bad)
    source = MaterialClipSource(["astronaut", "camera"], 4, 96)
    ratios: dict[str, list[float]] = {"blur": [], "sharpen": [], "linear": [], "cubic": []}
    for seed in range(6):  # detail inside the blend against the real clip's, per kind of blend
        real = source.clip(seed, np.random.default_rng(seed)).frames
        for name, options in {"blur": {"frequency": {"blur": 1}, "warp": "cubic"},
                              "sharpen": {"frequency": {"sharpen": 1}, "warp": "cubic"},
                              "linear": {"frequency": {"none": 1}}, "cubic": {"frequency": {"none": 1}, "warp": "cubic"},
                              }.items():
            fake, masks = self_blend_clip(real, np.random.default_rng(100 + seed), **options)
            inside = masks >= 0.9 * masks.max()  # the blend ratio may be below 1
            ratios[name].append(_detail(fake, inside) / _detail(real, inside))
    median = {name: float(np.median(r)) for name, r in ratios.items()}
    assert median["blur"] < 0.9 and median["sharpen"] > 1.05, median
    # bilinear warping alone softens the blended face; bicubic keeps most of its detail
    assert median["cubic"] > median["linear"] + 0.1, median
    frames = _clip(2, s=96)
    with pytest.raises(ValueError, match="warp"):
        self_blend_clip(frames, np.random.default_rng(0), warp="nearest")


def test_config_blend_frequency_reaches_the_data_set_and_is_checked():
    from istvt_explain.models import preset_config
    from istvt_explain.train.config import ConfigError, load_config
    from istvt_explain.train.data import build_dataset

    config = load_config("demo_balanced", **{"data.train_clips": 2})
    blend = build_dataset(config, preset_config("tiny"), "train").blend
    assert blend.keywords["frequency"] == {"none": 0.4, "blur": 0.15, "sharpen": 0.3, "resample": 0.15}
    for bad in ({"blurry": 1.0}, {"blur": -0.5}):
        with pytest.raises(ConfigError, match="data.blend_frequency"):
            load_config("demo_balanced", **{"data.blend_frequency": bad})
    with pytest.raises(ConfigError, match="builtin blend"):
        load_config("demo_balanced", **{"data.blend": "data"})
    cubic = build_dataset(load_config("demo_balanced_cubic", **{"data.train_clips": 2}), preset_config("tiny"), "train")
    assert cubic.blend.keywords["warp"] == "cubic"
    with pytest.raises(ConfigError, match="data.blend_warp"):
        load_config("demo_balanced_cubic", **{"data.blend_warp": "nearest"})
