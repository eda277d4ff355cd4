"""Clips from a data set's items: uint8 frames back from the model input, labels, masks and names."""

from __future__ import annotations

import numpy as np
import torch
from analysis_support import smooth_uint8_clips

from istvt_explain.analysis.clipsets import clips_from_dataset, to_uint8_frames
from istvt_explain.data.clips import normalize_clip


def test_uint8_clips_survive_a_round_trip_through_the_model_input():
    clip = smooth_uint8_clips(1)[0]
    np.testing.assert_array_equal(to_uint8_frames(normalize_clip(clip)), clip)


def test_items_become_labelled_clips():
    clips = smooth_uint8_clips(3, seed=2)
    items = [{"clip": normalize_clip(c), "label": float(i == 1), "video_id": "v", "manipulation": m,
              **({"mask": torch.ones(6, 64, 64)} if i == 1 else {})}
             for i, (c, m) in enumerate(zip(clips, ["real", "pseudofake", "real"], strict=True))]
    data = clips_from_dataset(items, [1, 2])
    assert data.labels.tolist() == [1, 0] and data.ids == ["1:v", "2:v"]
    assert data.videos == ["v:pseudofake", "v:real"]  # a pseudo-fake is not its real clip's video
    assert data.masks.shape == (2, 6, 64, 64) and data.masks[0].min() == 1 and data.masks[1].max() == 0
    np.testing.assert_array_equal(data.clips[1], clips[2])
    assert len(data.subset([1])) == 1
