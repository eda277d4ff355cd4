"""End-to-end speed of `istvt-explain VIDEO --out heatmap.mp4`, with a per-stage table.

Runs the same library calls as the command (``pipeline.analyze_video`` then ``render.video``)
on a generated 640x360 face video (scikit-image's public-domain astronaut, ``data.media``), with
the bundled demo weights (tiny preset) or, where they are missing, a tiny model of random weights
(the same computation: speed does not depend on the values of the weights).

Stages: decode (one PyAV pass over the file, RGB), faces (the face pass: decode, MTCNN detection,
tracking, cropping), detect (faces minus the decode passes it made), model (a plain forward pass
over all clips, timed on its own), explain (the explanation call, which runs its own forward
pass: this is what the job pays), render (overlay, timeline), encode (H.264).  frames/s = frames
/ wall time of the whole job (faces + explain + render pass).

``--decode``: ``once`` runs the job as the command does, the face pass keeping its frames for the
crops and the render (``data.frame_store``); ``again`` is the job before that, decoding the file
three times (``PipelineOptions(keep_frames=False)``).  With both (the default), the two alternate
in the same run, so their ratio holds on a shared machine; "decode passes" counts the frames
actually decoded, divided by the video's.

    python benchmarks/bench_e2e.py --threads 2 --methods relevance rollout --out benchmarks/results/e2e_cpu
    python benchmarks/bench_e2e.py --size 1280 720 --methods rollout --detect-every 3 --out benchmarks/results/e2e_single_pass
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import istvt_explain as ie
from istvt_explain.data.clips import extract_face_clips, normalize_clip
from istvt_explain.data.frame_store import DecodedFrames
from istvt_explain.data.media import make_face_video
from istvt_explain.data.video import VideoReader
from istvt_explain.models.inference import optimize_for_inference
from istvt_explain.pipeline import PipelineOptions, StageTimer, analyze_video
from istvt_explain.pipeline.heatmap_video import render_video

STAGES = ("decode", "faces", "detect", "model", "explain", "render", "encode")


def _model(device: str) -> tuple[torch.nn.Module, str]:
    if ie.DEMO_WEIGHTS.is_file():
        return ie.load_demo_model(device=device), "bundled demo weights (tiny)"
    torch.manual_seed(0)
    return ie.create_model("tiny", device=device), "tiny preset, random weights (demo weights not yet shipped)"


def _timed(fn, *args) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - start, time.process_time() - cpu


def _decode_pass(path: Path) -> None:
    for _ in VideoReader(path):
        pass


def _forward_pass(model: torch.nn.Module, clips: np.ndarray, batch: int) -> None:
    device = next(model.parameters()).device
    with torch.inference_mode():
        for i in range(0, len(clips), batch):
            model(normalize_clip(clips[i:i + batch]).to(device))
    if device.type == "cuda":
        torch.cuda.synchronize()


class DecodeCounter:
    """Counts the frames every pass decodes (``VideoReader.frames``, where all decoding happens)."""

    def __init__(self) -> None:
        self.frames = 0
        original = VideoReader.frames

        def counting(reader):
            for frame in original(reader):
                self.frames += 1
                yield frame

        VideoReader.frames = counting  # a benchmark's own process: patched for its whole run


COUNTER = DecodeCounter()


def bench(video: Path, model: torch.nn.Module, method: str, detect_every: int, batch: int, out_dir: Path,
          frames: int, decode: str = "once") -> dict:
    """One run of the job; per stage wall and CPU seconds, and the frames it decoded."""
    options = PipelineOptions(method=method, detect_every=detect_every, batch_size=batch,
                              keep_frames=decode == "once")
    timer = StageTimer()
    before = COUNTER.frames
    start, cpu = time.perf_counter(), time.process_time()
    with (DecodedFrames(folder=out_dir) if decode == "once" else contextlib.nullcontext()) as kept:
        analysis = analyze_video(video, model, options, timer=timer, keep=kept)
        render_video(analysis, out_dir / f"{method}.mp4", timer=timer, frames=kept)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    passes = (COUNTER.frames - before) / frames
    face_passes = passes - 1 if decode == "again" else passes  # the render pass decodes only when not kept
    decode_s = _timed(_decode_pass, video)
    clips = extract_face_clips(video, image_size=model.config.image_size, frames=model.config.frames,
                               detect_every=detect_every).clips
    forward = _timed(_forward_pass, model, clips, batch)
    row = {"method": method, "detect_every": detect_every, "decode": decode, "decode_passes": passes,
           "frames": frames, "clips": int(len(analysis.frame_indices)), "wall": wall, "cpu": cpu,
           "fps": frames / wall}
    for kind, source, extra in (("wall", timer.seconds, 0), ("cpu", timer.cpu_seconds, 1)):
        faces = source.get("faces", 0.0)
        row[kind + "_stages"] = {
            "decode": decode_s[extra], "faces": faces, "detect": max(faces - face_passes * decode_s[extra], 0.0),
            "model": forward[extra], "explain": source.get("explain", 0.0), "render": source.get("render", 0.0),
            "encode": source.get("encode", 0.0), "render_pass_decode": source.get("decode", 0.0),
        }
    return row


def fastest_ms(fn, repeat: int, count: int) -> float:
    """ms per item of the fastest of ``repeat`` calls of ``fn`` (each handles ``count`` items)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times) / count


def isolated(video: Path, model: torch.nn.Module, method: str, batch: int, repeat: int) -> dict[str, float]:
    """Per-frame ms of each stage on its own, the fastest of ``repeat`` short runs.

    On a shared machine a short run often lands in a quiet moment, a whole job rarely does: the sum
    of these minima estimates what the job costs on idle cores.
    """
    from istvt_explain.attribution import explain
    from istvt_explain.data.detectors import create_detector
    from istvt_explain.data.video import VideoWriter
    from istvt_explain.pipeline.heatmap_video import FrameComposer

    options = PipelineOptions(method=method, batch_size=batch)
    frames = list(VideoReader(video))[:8]
    detector = create_detector(options.detector, min_face=options.min_face)
    analysis = analyze_video(video, model, options)
    composer = FrameComposer(analysis)
    clips = extract_face_clips(video, image_size=model.config.image_size, frames=model.config.frames).clips
    x = normalize_clip(clips[:batch])
    per_clip_frames = x.shape[0] * x.shape[1]

    def best(fn, count: int) -> float:
        return fastest_ms(fn, repeat, count)

    def encode() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            w, h = composer.size
            with VideoWriter(Path(tmp) / "e.mp4", 25.0, w, h) as writer:
                for i, f in enumerate(frames):
                    writer.write(composer.compose(i, f))

    render = best(lambda: [composer.compose(i, f) for i, f in enumerate(frames)], len(frames))
    return {
        "decode": best(lambda: _decode_pass(video), len(analysis.face_frames)),
        "detect": best(lambda: [detector.detect(f) for f in frames], len(frames)),
        "model": best(lambda: _forward_pass(model, clips[:batch], batch), per_clip_frames),
        "explain": best(lambda: explain(model, x, method=method), per_clip_frames),
        "render": render,
        "encode": best(encode, len(frames)) - render,
    }


def ratio_lines(rows: list[dict]) -> str:
    """Decode once against decode again, per setting: the speed-up on this machine, in this run."""
    pairs = {}
    for r in rows:
        pairs.setdefault((r["method"], r["detect_every"]), {})[r["decode"]] = r
    lines = [f"- {m}, detect every {e}: decode once / decode again = {p['again']['wall'] / p['once']['wall']:.2f}x "
             f"the speed (wall), {p['again']['cpu'] / p['once']['cpu']:.2f}x (CPU seconds)"
             for (m, e), p in pairs.items() if {"once", "again"} <= p.keys()]
    return ("\n".join(lines) + "\n\n") if lines else ""


def video_passes(video: Path, frames: int, detect_every: int, repeat: int, folder: Path) -> dict[str, float]:
    """ms per frame of the job's video passes alone, fastest of ``repeat``: what the single decode changed.

    again: decode the face pass (RGB of every ``detect_every``-th frame), decode again for the crops
    (RGB of every frame, as a face in every frame wants), decode a third time for the render.
    once: decode the face pass keeping every frame's RGB, then read them for the crops and the render.
    No detection, model or encoding: on a shared machine their noise would hide this difference.
    """
    from istvt_explain.data.clips import _decoded

    def again() -> None:
        reader = VideoReader(video)
        for _ in _decoded(reader, lambda i: i % detect_every == 0, None):
            pass
        for _ in _decoded(reader, lambda i: True, None):
            pass
        for _ in reader:
            pass

    def once() -> None:
        reader = VideoReader(video)
        with DecodedFrames(folder=folder) as kept:
            kept.start(reader.frame_size, reader.frame_count)
            for _ in _decoded(reader, lambda i: i % detect_every == 0, None, None, kept):
                pass
            for index in range(len(kept)):
                kept.read(index)
            for _ in kept:
                pass

    result = {}
    for _ in range(2):  # alternate, keep each one's best
        for name, fn in (("again", again), ("once", once)):
            result[name] = min(result.get(name, float("inf")), fastest_ms(fn, repeat, frames))
    return result


def table(rows: list[dict], kind: str = "wall") -> str:
    head = ("| method | detect every | decode passes | " + " | ".join(f"{s} ms/frame" for s in STAGES)
            + f" | total {kind} s | frames/s |")
    lines = [head, "|" + "---|" * (len(STAGES) + 5)]
    for r in rows:
        st = r[kind + "_stages"]
        per = " | ".join(f"{1000 * st[s] / r['frames']:.1f}" for s in STAGES)
        total = r[kind]
        lines.append(f"| {r['method']} | {r['detect_every']} | {r['decode_passes']:.2f} ({r['decode']}) | {per} "
                     f"| {total:.2f} | {r['frames'] / total:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--size", type=int, nargs=2, default=(640, 360), metavar=("W", "H"))
    p.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--methods", nargs="+", default=["relevance", "rollout"])
    p.add_argument("--detect-every", type=int, nargs="+", default=[1, 3])
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--decode", nargs="+", choices=("once", "again"), default=["once", "again"],
                   help="once: the face pass keeps its frames (the command); again: decode three times (before)")
    p.add_argument("--repeat", type=int, default=3, help="runs per setting; the fastest is kept")
    p.add_argument("--isolated-repeat", type=int, default=10, help="runs per stage in the isolated table")
    p.add_argument("--no-channels-last", action="store_true", help="keep the default weight layout")
    p.add_argument("--out", type=Path, help="write OUT.md and OUT.json")
    args = p.parse_args(argv)

    load_start = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    import cv2

    cv2.setNumThreads(args.threads)
    model, weights = _model(args.device)
    if not args.no_channels_last:
        optimize_for_inference(model)  # as the command does
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = make_face_video(Path(tmp) / "bench.mp4", frames=args.frames, size=tuple(args.size)).path
        analyze_video(video, model, PipelineOptions(method="rollout"))  # warm-up: imports, detector, kernels
        for method in args.methods:
            for every in args.detect_every:
                runs: dict[str, list[dict]] = {mode: [] for mode in args.decode}
                for _ in range(args.repeat):  # the modes alternate: a quiet or busy moment falls on both
                    for mode in args.decode:
                        runs[mode].append(bench(video, model, method, every, args.batch_size, Path(tmp),
                                                args.frames, mode))
                for mode in args.decode:
                    rows.append(min(runs[mode], key=lambda r: r["wall"]))
                    print(f"{method} detect_every={every} decode {mode}: {rows[-1]['fps']:.1f} frames/s, "
                          f"{rows[-1]['decode_passes']:.2f} decode passes", file=sys.stderr)
        iso_rows = {m: isolated(video, model, m, args.batch_size, args.isolated_repeat) for m in args.methods}
        passes = {every: video_passes(video, args.frames, every, args.isolated_repeat, Path(tmp))
                  for every in args.detect_every}
    iso_lines = ["| method | decode | detect | model (alone) | explain (incl. its forward) | render | encode "
                 "| job estimate ms/frame | frames/s |", "|" + "---|" * 9]
    for method, st in iso_rows.items():
        total = st["decode"] + st["detect"] + st["explain"] + st["render"] + st["encode"]
        iso_lines.append(f"| {method} | " + " | ".join(f"{st[k]:.1f}" for k in
                         ("decode", "detect", "model", "explain", "render", "encode"))
                         + f" | {total:.1f} | {1000 / total:.1f} |")
    load = os.getloadavg()
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
               f"{args.threads} threads, load average {load_start:.1f} at the start and {load[0]:.1f} at the end "
               f"(other jobs on the machine), torch {torch.__version__}; fastest of {args.repeat} runs per row")
    text = (f"End-to-end, {args.frames} frames of {args.size[0]}x{args.size[1]} video, {weights}, "
            f"device {args.device}.\n{machine}\n\nWall clock (what a user waits):\n\n{table(rows)}\n\n"
            + ratio_lines(rows) +
            f"CPU time of the process, all threads (varies less on a shared machine; frames/s here = "
            f"frames per CPU-second, i.e. the rate on one fully available core):\n\n{table(rows, 'cpu')}\n\n"
            f"Each stage on its own, ms per frame, fastest of {args.isolated_repeat} short runs (detect every frame; "
            f"job estimate = 1 decode pass + detect + explain + render + encode):\n\n"
            + "\n".join(iso_lines) + "\n\n"
            f"The video passes alone (decode, RGB, keeping or reading the kept frames; no detection, model or "
            f"encoding), ms per frame, fastest of {args.isolated_repeat}:\n\n"
            "| detect every | decode again (3 decodes) | decode once (kept frames) | again / once |\n|---|---|---|---|\n"
            + "".join(f"| {e} | {p['again']:.2f} | {p['once']:.2f} | {p['again'] / p['once']:.2f}x |\n"
                      for e, p in passes.items()))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps({"machine": machine, "weights": weights,
                                                             "rows": rows, "isolated_ms_per_frame": iso_rows,
                                                             "video_passes_ms_per_frame": passes}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
