"""Clips with known manipulation masks, and the person each shows, for judging explanations.

``heldout_judging_set`` (what ``evaluate-explanations`` uses): real clips and self-blended pseudo-fakes
of the people the demo weights never saw in training (the demo config's test split: every held-out
picture and camera recording), in pairs: clip 2k is real (its mask is all zero), clip 2k+1 the same clip
with a blend and the blend mask.  Pairs are shared out among the *people* in turn, so each person has
about the same number of clips; a recording gives windows that do not overlap (no frame is in two clips),
a picture gives fresh animations.  ``identities`` names each clip's person: the unit the judge's
bootstrap resamples.

``pseudofake_judging_set``: fakes only, from ``data.media.face_image`` with a slow random camera move,
a cheap set for tests (each picture one identity).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

DEMO_CONFIG = "demo"  # whose test split is held out


@dataclass
class JudgingSet:
    """``clips`` (N, T, 3, S, S) normalised, ``masks`` (N, T, S, S) soft blend masks (zero: real)."""

    clips: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor | None = None  # (N,) 1 = manipulated
    material: tuple[str, ...] = ()
    identities: tuple[str, ...] = ()  # (N,) the person (or recording) each clip shows


def heldout_material(config: str = DEMO_CONFIG) -> list[str]:
    """The held-out pictures and recordings of a shipped training config (its test split), one name each.

    Read from the config file itself: judging sits below training in the package's layers
    (docs/architecture.md), and only this list of names is needed from it.
    """
    import yaml

    from ...data.material.catalogue import expand_material

    path = Path(__file__).resolve().parents[2] / "configs" / f"{config}.yaml"
    return expand_material(yaml.safe_load(path.read_text())["data"]["test_pictures"])


def heldout_judging_set(count: int, frames: int, size: int, seed: int = 0, material: Sequence[str] | None = None,
                        progress: Callable[[int, int], None] | None = None) -> JudgingSet:
    """``count`` clips of held-out people, real and self-blended in alternation (deterministic)."""
    from ...data.datasets.pseudofake import animate_picture
    from ...data.material.archives import ensure_archives
    from ...data.material.catalogue import (
        FACE_VIDEOS,
        face_pictures,
        material_archives,
        material_person,
        video_faces,
    )
    from ...data.pseudofake import self_blend_clip

    if count < 2:
        raise ValueError(f"count must be >= 2 (a real clip and its fake), got {count}")
    names = list(material) if material is not None else heldout_material()
    ensure_archives(material_archives(names))
    people: dict[str, list[str]] = {}
    for name in names:
        people.setdefault(material_person(name), []).append(name)
    windows = {name: _windows(video_faces(name, size), frames) for name in names if name in FACE_VIDEOS}
    pictures = {p.name: p for p in face_pictures([n for n in names if n not in FACE_VIDEOS])}
    plan = _share_pairs(people, windows, count // 2)
    clips, masks, labels, identities, used = [], [], [], [], []
    for pair, (person, name, window) in enumerate(plan):
        rng = np.random.default_rng([seed, pair])
        if name in windows:
            faces = video_faces(name, size)
            span = slice(window, window + frames)
            real, keypoints, fraction = np.ascontiguousarray(faces.crops[span]), faces.keypoints[span], 0.8
        else:
            clip = animate_picture(pictures[name], frames, size, rng)
            real, keypoints, fraction = clip.frames, clip.keypoints, clip.face_fraction
        fake, mask = self_blend_clip(real, np.random.default_rng([seed, pair, 1]), face_fraction=fraction,
                                     keypoints=keypoints)
        for frames_, mask_, label in ((real, np.zeros_like(mask), 0.0), (fake, mask, 1.0)):
            clips.append(_normalised(frames_))
            masks.append(torch.from_numpy(np.ascontiguousarray(mask_, dtype=np.float32)))
            labels.append(label)
            identities.append(person)
        used.append(name)
        if progress:
            progress(2 * (pair + 1), 2 * len(plan))
    return JudgingSet(torch.stack(clips), torch.stack(masks), torch.tensor(labels),
                      tuple(dict.fromkeys(used)), tuple(identities))


def _windows(faces, frames: int) -> list[int]:
    """Starts of non-overlapping runs of ``frames`` consecutive face frames, in order."""
    chosen, end = [], -1
    for start in faces.clip_starts(frames).tolist():
        if start > end:
            chosen.append(start)
            end = start + frames - 1
    return chosen


def _share_pairs(people: dict[str, list[str]], windows: dict[str, list[int]], pairs: int
                 ) -> list[tuple[str, str, int]]:
    """(person, material, window start) per pair: people in turn; a person's material in turn; each
    recording's windows spread over its length, each used once; pictures without limit."""
    turns = {person: 0 for person in people}
    spent = {name: 0 for name in windows}
    plan: list[tuple[str, str, int]] = []
    while len(plan) < pairs:
        progressed = False
        for person, names in people.items():
            if len(plan) >= pairs:
                break
            for _ in range(len(names)):
                name = names[turns[person] % len(names)]
                turns[person] += 1
                if name not in windows:
                    plan.append((person, name, -1))
                    progressed = True
                    break
                if spent[name] < len(windows[name]):
                    plan.append((person, name, -2 - spent[name]))  # resolved to a window below
                    spent[name] += 1
                    progressed = True
                    break
        if not progressed:
            raise ValueError(f"the material gives only {len(plan)} pairs of non-overlapping clips, not {pairs}")
    resolved = []
    for person, name, slot in plan:
        if slot <= -2:  # spread the used windows evenly over the recording
            k, used = -2 - slot, spent[name]
            index = int(round(k * (len(windows[name]) - 1) / max(used - 1, 1))) if used > 1 else 0
            slot = windows[name][index]
        resolved.append((person, name, slot))
    return resolved


def _normalised(frames: np.ndarray) -> torch.Tensor:
    from ...data.clips import normalize_clip

    return torch.as_tensor(normalize_clip(np.array(frames))).float()  # a copy: video crops are read-only


def _camera_move(picture: np.ndarray, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(T, size, size, 3) uint8 crops of ``picture`` along a slow random shift and zoom."""
    h, w = picture.shape[:2]
    side = min(h, w)
    start, end = rng.uniform(-0.04, 0.04, size=3), rng.uniform(-0.04, 0.04, size=3)
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        dx, dy, dz = start + (end - start) * t / max(frames - 1, 1)
        half = side * (1 + dz) / 2
        cx, cy = w / 2 + dx * side, h / 2 + dy * side
        src = np.float32([[cx - half, cy - half], [cx + half, cy - half], [cx - half, cy + half]])
        dst = np.float32([[0, 0], [size, 0], [0, size]])
        matrix = cv2.getAffineTransform(src, dst)
        out[t] = cv2.warpAffine(picture, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
    return out


def pseudofake_judging_set(count: int, frames: int, size: int, seed: int = 0) -> JudgingSet:
    """``count`` pseudo-fake clips of ``frames`` x ``size`` x ``size`` with their masks (deterministic)."""
    from ...data.media import FACE_NAMES, face_image
    from ...data.pseudofake import make_pseudofake_clip

    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng = np.random.default_rng(seed)
    clips, masks, identities = [], [], []
    for i in range(count):
        picture = FACE_NAMES[i % len(FACE_NAMES)]
        real = _camera_move(face_image(picture), frames, size, rng)
        fake, mask = make_pseudofake_clip(real, rng)
        clips.append(_normalised(fake))
        masks.append(torch.from_numpy(np.asarray(mask, np.float32)))
        identities.append(picture.removesuffix("-mirrored"))  # a mirror image shows the same person
    return JudgingSet(torch.stack(clips), torch.stack(masks), identities=tuple(identities))
