"""Per-clip scores of an evaluation run, read from the files ``istvt-explain evaluate`` writes (or JSON).

Kept apart from the ranking so that the hard-sample logic never depends on a file format.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .hard_samples import ClipScore

_PROB_KEYS = ("probability", "fake_probability", "score", "prob")
_LABEL_KEYS = ("label", "target", "y")
_VIDEO_KEYS = ("video", "path", "video_path", "file")
_CLIP_KEYS = ("clip", "clip_index", "index")


def _first(record: Mapping[str, Any], keys: Sequence[str], default: Any = None) -> Any:
    for key in keys:
        if key in record and record[key] is not None:
            return record[key]
    return default


def _label(value: Any) -> int:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("fake", "1", "true"):
            return 1
        if text in ("real", "0", "false"):
            return 0
        raise ValueError(f"unknown label {value!r}")
    return int(value)


def scores_from_records(records: Iterable[Mapping[str, Any]]) -> list[ClipScore]:
    """ClipScores from per-clip records (dicts with a label, a probability, and a video and clip index)."""
    out = []
    for n, rec in enumerate(records):
        prob, label = _first(rec, _PROB_KEYS), _first(rec, _LABEL_KEYS)
        if prob is None or label is None:
            raise ValueError(f"clip record {n} lacks a probability or a label: keys {sorted(rec)}")
        video = str(_first(rec, _VIDEO_KEYS, f"video{n}"))
        clip = int(_first(rec, _CLIP_KEYS, 0))
        frames = rec.get("frame_indices") or rec.get("frames")
        out.append(ClipScore(str(rec.get("id") or f"{video}#{clip}"), video, clip, _label(label), float(prob),
                             tuple(int(f) for f in frames) if isinstance(frames, (list, tuple)) else None))
    return out


def load_evaluation(path: str | Path) -> list[ClipScore]:
    """Per-clip scores of an evaluation run: its folder, its ``scores.csv``, or a JSON list of clip records.

    ``istvt-explain evaluate`` writes ``scores.csv`` with one row per clip of the
    data set, in data set order (``video_id, manipulation, label, score``): row i
    is item i, which is how the clip is found again (``ClipScore.clip``).  A JSON
    file holds ``clips`` (a list of records) or ``videos`` (each with its label
    and a ``clips`` / ``clip_scores`` list).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "scores.csv"
    if path.suffix.lower() == ".csv":
        return _scores_from_csv(path)
    try:
        report = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not a readable JSON evaluation report ({err})") from None
    try:
        return scores_from_records(_clip_records(report))
    except (ValueError, TypeError, KeyError) as err:
        raise InputError(f"{path}: no per-clip scores in this report ({err})") from None


def _scores_from_csv(path: Path) -> list[ClipScore]:
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as err:
        raise InputError(f"{path}: cannot read the scores ({err.strerror or err})") from None
    out = []
    for i, row in enumerate(rows):
        try:
            video = row.get("video_id") or row.get("video") or f"item{i}"
            label = _label(row.get("label", ""))
            prob = float(row.get("score") or row.get("probability") or "")
        except (ValueError, TypeError):
            raise InputError(f"{path}: row {i + 2} is not a clip score (need label and score columns)") from None
        manipulation = row.get("manipulation") or ""
        out.append(ClipScore(f"{i}:{video}" + (f":{manipulation}" if manipulation else ""), video, i, label, prob))
    if not out:
        raise InputError(f"{path}: no clip scores in this file")
    return out


def _clip_records(report: Any) -> list[Mapping[str, Any]]:
    if isinstance(report, list):
        return report
    for key in ("clips", "clip_scores", "per_clip"):
        if isinstance(report.get(key), list):
            return report[key]
    videos = report.get("videos") or report.get("per_video")
    if isinstance(videos, list):
        records = []
        for v in videos:
            inner = v.get("clips") or v.get("clip_scores") or []
            for c, item in enumerate(inner):
                rec = dict(item) if isinstance(item, Mapping) else {"probability": item}
                rec.setdefault("clip", c)
                for key in ("label", *_VIDEO_KEYS):
                    if key in v:
                        rec.setdefault(key, v[key])
                records.append(rec)
        return records
    raise KeyError("expected 'clips' or 'videos'")
