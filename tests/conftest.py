"""Shared fixtures: short generated videos of a real face (scikit-image's public-domain astronaut),
the small test model's factory and a booby-trapped pickle.

Plain helpers (``tiny_model``, ``random_clips``, ``PickleExploit``, ``SMALL``) live in ``support.py``;
import them from there (``from support import tiny_model``) where a fixture does not fit, e.g. in a
module-scoped fixture.  The fixtures below import it lazily, so that collecting a test that needs no
model does not import torch.
"""

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


@pytest.fixture(scope="session")
def tiny_model_factory():
    """``support.tiny_model``: ``tiny_model_factory(depth=1, seed=0)`` builds the tiny preset at test
    sizes (64 px crops, 3 frames, 2 blocks unless told otherwise)."""
    from support import tiny_model

    return tiny_model


@pytest.fixture
def pickle_exploit(tmp_path):
    """A ``support.PickleExploit`` whose marker is ``tmp_path / "pwned"``: pickle it into a file, load
    the file, and ``pickle_exploit.marker.exists()`` tells whether the loader ran code from it."""
    from support import PickleExploit

    return PickleExploit(tmp_path / "pwned")
