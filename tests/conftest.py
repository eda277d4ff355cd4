"""Shared fixtures: short generated videos of a real face (scikit-image's public-domain astronaut)."""

from __future__ import annotations

import pytest

from istvt_explain.data.media import FaceVideo, make_face_video


@pytest.fixture(scope="session")
def face_video(tmp_path_factory) -> FaceVideo:
    """24 frames, 320 x 240, 25 fps: one real face panning and zooming over a background."""
    return make_face_video(tmp_path_factory.mktemp("media") / "face.mp4", frames=24, size=(320, 240))


@pytest.fixture(scope="session")
def two_face_video(tmp_path_factory) -> FaceVideo:
    """20 frames, 320 x 240: the astronaut large on the left, her mirror image smaller on the right."""
    return make_face_video(tmp_path_factory.mktemp("media") / "two_faces.mp4", frames=20, size=(320, 240),
                           second_face=True)
