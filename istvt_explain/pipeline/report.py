"""The JSON report of one analysed video, and the ``--maps`` file.

The report is what scripts consume: the verdict and every number behind it (per clip, per frame),
every face track found (``face_tracks``: frame ranges and size; ``face`` is the one explained),
the frames that were skipped and why, the boxes, the method, the weights and the tool's version,
so that a result can be traced back to exactly what produced it.

Every frame number in the report counts from 0 (``frames[].index``, ``clips[].frames``,
``segments``, ``skipped_frames``...), like the frame counter drawn in the explained video, the
terminal summary and the key-frame file names (docs/cli.md).  ``verdict`` is "fake" iff ``segments`` is not empty;
``fake_probability`` is the mean of the clip scores (see ``FAKE_PROBABILITY_DEFINITION``).
``frames[].time`` is the frame's presentation time from the stream's timestamps (``data.clock``), not
index / fps: a variable-frame-rate video keeps its clock (docs/cli.md, "Time").
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from . import VideoAnalysis

REPORT_FORMAT = "istvt-explain-report/1"
FAKE_PROBABILITY_DEFINITION = ("mean of the clip scores (the usual video-level protocol); the verdict "
                               "does not use it: it is fake iff segments is not empty")
FRAME_NUMBERING = "0-based"


IMPORTANCE_DEFINITION = ("frames[].importance: the frame's share of its clip's temporal relevance times the "
                         "clip length (1 = an average frame), mean over the clips holding it; the video's strip "
                         "prints the same number ('imp.'). clips[].temporal_importance: the method's raw values")
SUSPICION_DEFINITION = "fake_probability x importance / the video's top importance (the order of suspicious_frames)"
DISPLAY_DEFINITION = ("the heatmaps (video, --maps) show raw spatial values on this scale: unsigned: "
                      "clip((raw - low) / (high - low), 0, 1); signed: clip(raw / high, -1, 1); low and high are "
                      "robust percentiles over the whole video (docs/display.md)")


def _num(value: float, digits: int = 6) -> float | None:
    """JSON-safe float with ``digits`` significant digits: NaN becomes null, and a value of 2e-9 stays
    2e-9 (fixed decimals would print it as 0.0: relevance values span ten orders of magnitude)."""
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else float(f"{value:.{digits}g}")


def _fixed(value: float, decimals: int) -> float | None:
    """JSON-safe float rounded to ``decimals`` places: pixel coordinates and seconds."""
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, decimals)


def _stats(values: np.ndarray) -> dict[str, float | None]:
    """Raw min / max / mean of one clip's spatial maps, so that methods' scales can be compared."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"min": None, "max": None, "mean": None}
    return {"min": _num(values.min()), "max": _num(values.max()), "mean": _num(values.mean())}


def _ranges(indices: list[int]) -> list[list[int]]:
    """[3, 4, 5, 9] -> [[3, 5], [9, 9]]: inclusive ranges, easier to read than long lists."""
    out: list[list[int]] = []
    for i in indices:
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def build_report(analysis: VideoAnalysis, weights: dict[str, Any] | None = None, top_k: int = 5,
                 outputs: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything about one analysis as plain JSON types."""
    a = analysis
    exp = a.explanation
    clip_prob = a.clip_probability
    clip_logit = exp.logits.detach().cpu().numpy().astype(np.float64)
    clip_temporal = exp.temporal.detach().cpu().numpy().astype(np.float64)
    clip_spatial = exp.spatial.detach().float().cpu().numpy().astype(np.float64)
    display = a.display.to_dict() if a.display is not None else None
    suspicion = a.suspicion()
    skipped = a.skipped_frames
    times = a.frame_times if a.fps or a.clock is not None else np.zeros(a.num_frames)
    frames = []
    for i in range(a.num_frames):
        box = a.boxes[i]
        frames.append({
            "index": i,
            "time": _fixed(times[i], 4),
            "face": bool(a.face_frames[i]),
            "box": None if np.isnan(box).any() else [_fixed(v, 2) for v in box],
            "fake_probability": _num(a.frame_probability[i]),
            "importance": _num(a.frame_importance[i]),
            "suspicion": _num(suspicion[i]) if a.processed[i] else None,
            "held": bool(a.held_frames[i]) if a.held_frames.size else False,
        })
    clips = [{
        "index": c,
        "frames": [int(f) for f in a.frame_indices[c]],
        "fake_probability": _num(clip_prob[c]),
        "logit": _num(clip_logit[c] if clip_logit.ndim == 1 else clip_logit[c].max()),
        "temporal_importance": [_num(v) for v in clip_temporal[c]],
        "spatial_raw": _stats(clip_spatial[c]),
    } for c in range(len(a.frame_indices))]
    why = list(a.skip_reasons().values())
    segments = [{k: _num(v) if isinstance(v, float) else v for k, v in s.to_dict().items()} for s in a.segments]
    return {
        "format": REPORT_FORMAT,
        "tool": {"name": "istvt-explain", "version": __version__},
        "input": {"path": str(a.video_path), "frames": a.num_frames, "fps": _num(a.fps, 6),
                  "width": a.width, "height": a.height} | (a.clock.to_dict() if a.clock is not None else {}),
        "verdict": a.verdict,
        "segments": segments,
        "fake_probability": _num(a.video_probability),
        "fake_probability_definition": FAKE_PROBABILITY_DEFINITION,
        "threshold": a.threshold,
        "face": a.track_index,
        "face_tracks": [dict(t, index=i, explained=i == a.track_index) for i, t in enumerate(a.face_tracks)],
        "segment_options": {"min_clips": a.segment_min_clips, "max_gap": a.segment_max_gap,
                            "clip_frames": int(a.frame_indices.shape[1]) if a.frame_indices.ndim == 2 else None},
        "frame_numbering": FRAME_NUMBERING,
        "method": {"name": a.method, "settings": _jsonable(exp.settings)},
        "display": None if display is None else {k: _num(v) if isinstance(v, float) else v for k, v in display.items()}
        | {"definition": DISPLAY_DEFINITION},
        "importance_definition": IMPORTANCE_DEFINITION,
        "suspicion_definition": SUSPICION_DEFINITION,
        "weights": weights or {},
        "clips": clips,
        "frames": frames,
        "suspicious_frames": a.suspicious_frames(top_k),
        "processed_frames": int(a.processed.sum()),
        "skipped_frames": skipped,
        "skipped_ranges": _ranges(skipped),
        "skipped_reasons": {r: why.count(r) for r in ("no_face", "face_too_briefly", "between_clips")},
        "held_frames": np.flatnonzero(a.held_frames).tolist() if a.held_frames.size else [],
        "timings_s": {k: round(v, 4) for k, v in a.timings.items()},
        "outputs": outputs or {},
    }


def _jsonable(value: Any) -> Any:
    """Method settings may hold tensors or tuples: turn them into JSON types (or their repr)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return _num(value)
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    return repr(value)


def write_report(report: dict[str, Any], path: str | Path) -> None:
    """Write the report as indented UTF-8 JSON (the caller takes care of atomicity)."""
    Path(path).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_maps(analysis: VideoAnalysis, path: str | Path) -> None:
    """The ``--maps`` file: every frame's heatmap at full frame size (float16, 0 where no face).

    An ``.npz`` archive (``np.load`` reads it) with ``maps`` (F, H, W) float16 on the display scale
    ([0, 1], or [-1, 1] when ``display_signed``; ``display_low`` / ``display_high`` map them back to raw);
    ``boxes`` (F, 4); ``face_frames`` and ``processed`` (F,) bool; ``fake_probability`` and
    ``importance`` (F,) float32 (NaN where skipped); ``times`` (F,) float64, each frame's presentation
    time in seconds (as ``frames[].time``); ``fps``; ``method``.  The maps are streamed
    frame by frame into the compressed archive: a long video never needs (F, H, W) in memory.
    """
    a = analysis
    small = {
        "boxes": a.boxes.astype(np.float32), "face_frames": a.face_frames, "processed": a.processed,
        "fake_probability": a.frame_probability.astype(np.float32),
        "importance": a.frame_importance.astype(np.float32), "fps": np.float64(a.fps), "method": np.str_(a.method),
        "times": np.asarray(a.frame_times, np.float64),
    }
    if a.display is not None:
        small |= {"display_signed": np.bool_(a.display.signed), "display_low": np.float64(a.display.low),
                  "display_high": np.float64(a.display.high)}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True) as zf:
        with zf.open("maps.npy", "w", force_zip64=True) as fh:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f2")), "fortran_order": False,
                      "shape": (a.num_frames, a.height, a.width)}
            np.lib.format.write_array_header_2_0(fh, header)
            zeros = np.zeros((a.height, a.width), "<f2").tobytes()
            for i in range(a.num_frames):
                fh.write(a.full_frame_map(i).astype("<f2").tobytes() if a.processed[i] else zeros)
        for name, value in small.items():
            with zf.open(f"{name}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)
