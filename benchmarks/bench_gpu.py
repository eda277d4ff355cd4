"""GPU benchmark of ISTVT: forward, explanations, the whole command, training and DDP, in one run.

    python benchmarks/bench_gpu.py --out benchmarks/results/gpu_h100                 # one GPU, paper preset (<= 8 min on an H100)
    python benchmarks/bench_gpu.py --smoke --device cpu --out /tmp/gpu_smoke         # every part, tiny sizes (about a minute on a CPU)
    python benchmarks/bench_gpu.py --out OUT --only forward train --compile off      # a subset, no torch.compile

Sections (each writes its numbers into ``OUT/gpu.json`` and a table into ``OUT/gpu.md``):

1. ``forward``: clips/s of the preset at batch 1, 8 and 32, fp32 and bf16 (``torch.autocast``), fused
   (``scaled_dot_product_attention``) and explicit attention, eager and ``torch.compile``; peak memory
   (``torch.cuda.max_memory_allocated``; on the CPU the process's RSS high-water mark).  A cell that
   fails says ``failed: <reason>`` and the run goes on.  Compiled cells run last, after every other
   section, and only while the run can still end within ``--time-limit`` (a compile takes about a
   minute for the paper preset), so the whole run keeps to its time whatever the compiler does.
2. ``explain``: each attention-based method (attention, rollout, relevance, lrp, spatial-only,
   temporal-only, and lrp-attnlrp: LRP with AttnLRP's softmax rule) as a ratio to a plain forward, timed
   interleaved (``bench_explain.paired``), fp32 and bf16, at the command's batch; and under bf16, how
   well each method's maps correlate with fp32's, next to how well fp32's survive a 1e-4 nudge of the
   input (the method's own stability, for scale).
3. ``e2e``: ``istvt-explain VIDEO --out ... --json ...`` (in this process, random weights of the preset
   saved with ``save_checkpoint``: speed only) on a generated 720p, 30 fps, 20 s face video
   (``data.media.make_face_video``); frames/s per stage and in total, against the real-time goal of 30.
4. ``train``: optimizer steps/s in bf16 (the training loop's step: autocast, BCE on the logit, gradient
   clipping, AdamW) and the fraction of the card's peak dense bf16 FLOP/s, FLOPs counted as
   ``bench_model.transformer_tflop`` does (the transformer only: a lower bound).
5. ``ddp``: the same step under DistributedDataParallel with NCCL on every GPU, when there are several.

``--smoke``: tiny preset, batches 1 and 2, two repeats, a 320x180 2 s video, one CPU thread, no
``torch.compile`` on the CPU (it takes minutes there; ``--compile on`` forces it).  Without ``--device``
it runs on the GPU when there is one and on the CPU otherwise, saying so in one line.  Quote ratios rather
than absolute times on a shared machine.  Exit status 0 when every section ran (cells may still say
failed or skipped), 1 when a whole section failed, and a one-line error when CUDA is asked for (``--device
cuda``, or the default outside ``--smoke``) and absent.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import importlib.util
import json
import multiprocessing as mp
import os
import platform
import resource
import shlex
import socket
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
SECTIONS = ("forward", "explain", "e2e", "train", "ddp")
# row name -> (method, options): every attention-based method, and LRP with its cheaper linear rule
EXPLAIN_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    name: (name, {}) for name in ("attention", "rollout", "relevance", "lrp", "spatial-only", "temporal-only")
} | {"lrp-attnlrp": ("lrp", {"rule": "attnlrp"})}
REAL_TIME_FPS = 30.0
NUDGE = 1e-4  # std of the input noise that shows how stable a method's own fp32 maps are (inputs span [-1, 1])
# Dense (no sparsity) bf16 tensor-core peaks from the vendor's data sheets; the first name found in the
# device name wins, so "H100 PCIe" must come before "H100" (which is then the SXM card).
PEAK_BF16_FLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12),
)


@dataclass(frozen=True)
class Settings:
    """Every size of a run; ``FULL`` for a GPU, ``SMOKE`` to check every code path in about a minute."""

    preset: str
    batches: tuple[int, ...]
    warmup: int
    repeats: int
    explain_batch: int
    explain_repeats: int
    agreement_clips: int  # clips through the demo weights for the bf16-against-fp32 map check
    video_size: tuple[int, int]  # (width, height)
    video_seconds: float
    video_fps: float
    train_batch: int
    train_steps: int
    time_limit_s: float  # compiled cells start only while the run can end within this
    compile_guess_s: float  # the time of one compiled cell before one has been timed


FULL = Settings(preset="paper", batches=(1, 8, 32), warmup=3, repeats=10, explain_batch=4, explain_repeats=5,
                agreement_clips=8,
                video_size=(1280, 720), video_seconds=20.0, video_fps=30.0, train_batch=8, train_steps=10,
                time_limit_s=450.0, compile_guess_s=90.0)
SMOKE = Settings(preset="tiny", batches=(1, 2), warmup=1, repeats=2, explain_batch=1, explain_repeats=2,
                 agreement_clips=2,
                 video_size=(320, 180), video_seconds=2.0, video_fps=30.0, train_batch=2, train_steps=2,
                 time_limit_s=300.0, compile_guess_s=60.0)

_START = time.perf_counter()


# -- small helpers ------------------------------------------------------------------------------


def log(message: str) -> None:
    """Progress on stderr (stdout stays free for whoever pipes the run)."""
    print(f"[bench_gpu {time.perf_counter() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


def one_line(err: BaseException, limit: int = 200) -> str:
    """An exception as one short line: compiler and CUDA errors span pages."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:limit]


@functools.cache
def sibling(name: str) -> ModuleType:
    """A benchmark script next to this one, imported by path (``benchmarks/`` is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work: CUDA calls return before the kernels finish."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float:
    """GPU: the most memory tensors held since ``reset_peak``.  CPU: the process's RSS high-water mark
    (it never goes down, so on the CPU it is an upper bound for every cell after the largest)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """bf16 autocast as the training loop uses it; fp32 (None) runs without."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def random_clips(config: Any, batch: int, device: torch.device) -> torch.Tensor:
    """Clips in the model's input range [-1, 1]: speed does not depend on the pixels."""
    return torch.rand(batch, config.frames, 3, config.image_size, config.image_size, device=device) * 2 - 1


def set_fused(model: torch.nn.Module, fused: bool) -> None:
    """Switch every attention module between SDPA and the explicit softmax(QK^T)V (``models.layers``)."""
    for _, _, module in model.attention_modules():
        module.fused_attn = fused


def timed_calls(fn: Callable[[], object], device: torch.device, count: int) -> list[float]:
    """Wall seconds of ``count`` calls, each synchronized (so GPU time is counted, not launch time)."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return (f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores, {threads} "
            f"thread{'s' if threads != 1 else ''})")


def peak_bf16_flops(name: str) -> float | None:
    """The card's dense bf16 peak FLOP/s by its name; None for a CPU or a card not in the table."""
    for key, flops in PEAK_BF16_FLOPS:
        if key.lower() in name.lower():
            return flops
    return None


def transformer_tflop(preset: str) -> float:
    """Forward TFLOP per clip of the transformer, as ``bench_model.py`` counts it (one definition)."""
    return sibling("bench_model").transformer_tflop(preset)


# -- 1. forward ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    batch: int
    precision: str  # "fp32" or "bf16"
    attention: str  # "fused" or "explicit"
    compiled: bool

    @property
    def dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.precision == "bf16" else None


def forward_cells(settings: Settings, compiled: bool) -> list[Cell]:
    """The eager cells, or the compiled ones in the order they run: fused attention and bf16 first (the
    path that serves), so that the cells most worth having are measured if the time runs out."""
    batches = sorted(settings.batches, reverse=True)
    if not compiled:
        return [Cell(b, p, a, False) for p in ("bf16", "fp32") for a in ("fused", "explicit") for b in batches]
    return [Cell(b, p, a, True) for a in ("fused", "explicit") for p in ("bf16", "fp32") for b in batches]


def measure_cell(model: torch.nn.Module, cell: Cell, clips: torch.Tensor, device: torch.device,
                 settings: Settings) -> dict[str, Any]:
    """clips/s of one (batch, precision, attention, compile) cell; the first call's extra time is the compile."""
    set_fused(model, cell.attention == "fused")
    if cell.compiled:
        reset_compiled()  # a fresh graph per cell: no recompile limit, no guards left from the last cell
        runner = torch.compile(model, dynamic=False)
    else:
        runner = model
    reset_peak(device)
    with torch.no_grad(), autocast(device, cell.dtype):
        first = timed_calls(lambda: runner(clips), device, 1)[0]
        timed_calls(lambda: runner(clips), device, settings.warmup - 1)
        times = timed_calls(lambda: runner(clips), device, settings.repeats)
    median = statistics.median(times)
    tflop = transformer_tflop(model.config.name)
    row = {"seconds_per_batch": median, "seconds_per_batch_best": min(times),
           "clips_per_s": cell.batch / median, "peak_mib": peak_mib(device),
           "transformer_tflop_per_s": tflop * cell.batch / median}
    if cell.compiled:
        row["compile_s"] = max(first - median, 0.0)
    return row


def reset_compiled() -> None:
    """Drop every compiled graph and the memory it holds (``torch._dynamo`` is imported on first use)."""
    importlib.import_module("torch._dynamo").reset()


def compile_policy(mode: str, device: torch.device) -> str | None:
    """None when compiled cells run; otherwise why they are skipped."""
    if mode == "off":
        return "skipped: --compile off"
    if mode == "auto" and device.type == "cpu":
        return ("skipped: torch.compile of the model takes minutes on a shared CPU and says nothing about "
                "the GPU (--compile on forces it)")
    return None


def run_cell(model: torch.nn.Module, cell: Cell, clips: torch.Tensor, device: torch.device,
             settings: Settings) -> dict[str, Any]:
    """One cell as a row of the table; a failure (OOM, a compiler error) is the row's status, not the run's end."""
    row: dict[str, Any] = dataclasses.asdict(cell)
    log(f"forward batch {cell.batch} {cell.precision} {cell.attention}{' compiled' if cell.compiled else ''}")
    try:
        row |= measure_cell(model, cell, clips, device, settings)
        row["status"] = "ok"
    except Exception as err:
        row["status"] = f"failed: {one_line(err)}"
        log(row["status"])
    finally:
        if cell.compiled:
            reset_compiled()
        reset_peak(device)
    return row


def bench_forward(settings: Settings, device: torch.device) -> dict[str, Any]:
    """The eager cells (the compiled ones are added by ``bench_forward_compiled`` at the end of the run)."""
    torch.manual_seed(0)
    model = preset_model(settings.preset, device)
    rows = [run_cell(model, cell, random_clips(model.config, cell.batch, device), device, settings)
            for cell in forward_cells(settings, compiled=False)]
    return {"preset": settings.preset, "peak_memory": peak_kind(device),
            "transformer_tflop_per_clip": transformer_tflop(settings.preset), "cells": rows}


def bench_forward_compiled(section: dict[str, Any], settings: Settings, device: torch.device, compile_mode: str,
                           deadline: float) -> None:
    """Add the ``torch.compile`` cells to the forward section, each started only if it can end by ``deadline``.

    Why last and timed against the whole run: compiling takes a minute or more per cell and nothing
    bounds it, so it gets whatever time the other sections left.
    """
    policy = compile_policy(compile_mode, device)
    torch.manual_seed(0)
    model = None if policy else preset_model(settings.preset, device)
    durations: list[float] = []
    for cell in forward_cells(settings, compiled=True):
        expected = max(durations, default=settings.compile_guess_s)
        if policy:
            row = dataclasses.asdict(cell) | {"status": policy}
        elif time.perf_counter() + expected > deadline:
            row = dataclasses.asdict(cell) | {"status": f"skipped: the run's time limit of "
                                                        f"{settings.time_limit_s:.0f} s (--time-limit)"}
        else:
            start = time.perf_counter()
            row = run_cell(model, cell, random_clips(model.config, cell.batch, device), device, settings)
            durations.append(time.perf_counter() - start)
        section["cells"].append(row)
    section["compile_seconds_spent"] = sum(durations)


def preset_model(preset: str, device: torch.device) -> torch.nn.Module:
    """The preset with random weights, in eval mode, on ``device``."""
    from istvt_explain.models import create_model

    return create_model(preset, device=device)


def peak_kind(device: torch.device) -> str:
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated per cell"
    return "process RSS high-water mark (resource.getrusage; cumulative, not per cell)"


# -- 2. explanation methods against the forward ------------------------------------------------


def bench_explain(settings: Settings, device: torch.device) -> dict[str, Any]:
    """Each method's time over a forward's, pairs timed side by side (load drift cancels in the ratio)."""
    from istvt_explain.attribution import explain
    from istvt_explain.models.precision import autocast
    from istvt_explain.models.pretrained import load_demo_model

    paired = sibling("bench_explain").paired
    torch.manual_seed(0)
    model = preset_model(settings.preset, device)
    clips = random_clips(model.config, settings.explain_batch, device)
    demo = load_demo_model(device=device)  # trained weights: maps with structure, for the agreement check
    demo_clips = random_clips(demo.config, settings.agreement_clips, device)

    def forward(precision: str) -> None:
        with torch.inference_mode(), autocast(precision, device):
            model(clips)
        synchronize(device)

    def method_call(name: str, precision: str) -> None:
        method, options = EXPLAIN_METHODS[name]
        explain(model, clips, method=method, precision=precision, **options)
        synchronize(device)

    results: dict[str, Any] = {"preset": settings.preset, "batch": settings.explain_batch, "precision": "fp32",
                               "repeats": settings.explain_repeats}
    for precision, key in (("fp32", "methods"), ("bf16", "methods_bf16")):
        methods: dict[str, dict[str, Any]] = {}
        for name in EXPLAIN_METHODS:
            log(f"explain {name} ({precision})")
            try:
                forward_s, method_s, median_ratio = paired(functools.partial(forward, precision),
                                                           functools.partial(method_call, name, precision),
                                                           settings.explain_repeats)
                methods[name] = {"status": "ok", "forward_s": forward_s, "method_s": method_s,
                                 "ratio": method_s / forward_s, "median_pair_ratio": median_ratio}
                if precision != "fp32":
                    methods[name]["agreement"] = {
                        "paper_random": map_agreement(model, clips, *EXPLAIN_METHODS[name], precision),
                        "demo_weights": map_agreement(demo, demo_clips, *EXPLAIN_METHODS[name], precision)}
            except Exception as err:
                methods[name] = {"status": f"failed: {one_line(err)}"}
                log(methods[name]["status"])
        results[key] = methods
    return results


def map_agreement(model: torch.nn.Module, clips: torch.Tensor, method: str, options: dict[str, Any],
                  precision: str) -> dict[str, float]:
    """The lowest Pearson correlation, over ``clips``, of ``precision``'s maps with float32's (issue bar: 0.99)."""
    import numpy as np

    from istvt_explain.attribution import explain

    full = explain(model, clips, method=method, precision="fp32", **options)
    reduced = explain(model, clips, method=method, precision=precision, **options)
    generator = torch.Generator(device=clips.device).manual_seed(1)
    noise = torch.randn(clips.shape, generator=generator, device=clips.device, dtype=clips.dtype)
    nudged = explain(model, clips + NUDGE * noise, method=method, precision="fp32", **options)

    def lowest(a: torch.Tensor, b: torch.Tensor) -> float:
        pairs = zip(a.detach().cpu().double(), b.detach().cpu().double(), strict=True)
        return float(min(np.corrcoef(x.flatten(), y.flatten())[0, 1] for x, y in pairs))

    return {"spatial": lowest(full.spatial, reduced.spatial), "temporal": lowest(full.temporal, reduced.temporal),
            "clips": int(clips.shape[0]),
            # the method's own stability, for scale: fp32 maps of the clips nudged by NUDGE-sized noise
            "nudged_fp32_spatial": lowest(full.spatial, nudged.spatial),
            "nudged_fp32_temporal": lowest(full.temporal, nudged.temporal)}


# -- 3. the command end to end ------------------------------------------------------------------


def make_video(settings: Settings, folder: Path) -> tuple[Path, int]:
    """The talking-head stand-in: the project's generated face video (a real face moving over a background)."""
    from istvt_explain.data.media import make_face_video

    frames = round(settings.video_fps * settings.video_seconds)
    video = make_face_video(folder / "talking_head.mp4", frames=frames, size=settings.video_size,
                            fps=settings.video_fps)
    return video.path, frames


def random_checkpoint(preset: str, folder: Path) -> Path:
    """Random weights of the preset, saved as the command reads them (the cost does not depend on values)."""
    from istvt_explain.models import create_model, save_checkpoint

    torch.manual_seed(0)
    path = folder / f"random_{preset}.safetensors"
    save_checkpoint(create_model(preset), path)
    return path


def run_command(video: Path, checkpoint: Path, device: torch.device, folder: Path) -> tuple[float, dict]:
    """``istvt-explain VIDEO --out --json --weights`` in this process: (wall seconds, its JSON report).

    The command builds the model the checkpoint describes, as it does for any ``--weights``.
    """
    from istvt_explain.cli import main as cli_main

    report = folder / "report.json"
    argv = [str(video), "--out", str(folder / "explained.mp4"), "--json", str(report), "--weights", str(checkpoint),
            "--device", device.type, "--quiet", "--force"]
    start = time.perf_counter()
    code = cli_main(argv)
    wall = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"istvt-explain exited {code}: {shlex.join(['istvt-explain', *argv])}")
    return wall, json.loads(report.read_text())


def face_pass_stages(video: Path, report: dict, image_size: int) -> dict[str, float]:
    """Seconds of decode, detection and cropping, each on its own, in one pass as the face pass does them.

    Why apart from the job: its "faces" timer holds two decode passes, detection, tracking and
    cropping together.  Detection runs on every ``detect_every``-th frame and cropping on the frames
    the clips use, with the crop boxes the job reported, as ``data.clips.extract_face_clips`` does.
    """
    import numpy as np

    from istvt_explain.data.detectors import create_detector
    from istvt_explain.data.faces import crop_square
    from istvt_explain.data.video import VideoReader
    from istvt_explain.pipeline import PipelineOptions

    options = PipelineOptions()
    detector = create_detector(options.detector, min_face=options.min_face)
    boxes = {f["index"]: np.asarray(f["box"], np.float64) for f in report["frames"] if f["box"] is not None}
    wanted = {i for clip in report["clips"] for i in clip["frames"]} & set(boxes)
    reader = VideoReader(video)
    seconds = {"decode": 0.0, "detect": 0.0, "crops": 0.0}
    frames = iter(reader.frames())
    index = 0
    while True:
        start = time.perf_counter()
        raw = next(frames, None)
        if raw is None:
            break
        rgb = reader.to_rgb(raw)
        seconds["decode"] += time.perf_counter() - start
        if index % options.detect_every == 0:
            start = time.perf_counter()
            detector.detect(rgb)
            seconds["detect"] += time.perf_counter() - start
        if index in wanted:
            start = time.perf_counter()
            crop_square(rgb, boxes[index], image_size)
            seconds["crops"] += time.perf_counter() - start
        index += 1
    return seconds


def model_stage(checkpoint: Path, device: torch.device, clips: int) -> float:
    """Seconds of plain forwards over the job's clips at the command's batch, the model as the command loads it.

    Why: the job's "explain" stage runs each method's own forward; this is the classification alone.
    """
    from istvt_explain.models import load_model
    from istvt_explain.models.inference import optimize_for_inference
    from istvt_explain.pipeline import PipelineOptions

    model = optimize_for_inference(load_model(checkpoint, device=device))
    batch = PipelineOptions().batch_size
    inputs = random_clips(model.config, batch, device)
    with torch.inference_mode():
        model(inputs)  # warm-up
        synchronize(device)
        start = time.perf_counter()
        for first in range(0, clips, batch):
            model(inputs[:min(batch, clips - first)])
        synchronize(device)
    return time.perf_counter() - start


def bench_e2e(settings: Settings, device: torch.device) -> dict[str, Any]:
    from istvt_explain.models import preset_config
    from istvt_explain.pipeline import PipelineOptions

    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        folder = Path(tmp)
        log(f"e2e: generating a {settings.video_size[0]}x{settings.video_size[1]} "
            f"{settings.video_seconds:g} s video")
        video, frames = make_video(settings, folder)
        checkpoint = random_checkpoint(settings.preset, folder)
        log("e2e: istvt-explain VIDEO --out --json")
        job_s, report = run_command(video, checkpoint, device, folder)
        log("e2e: stages on their own")
        image_size = preset_config(settings.preset).image_size
        stages = face_pass_stages(video, report, image_size)
        stages["model"] = model_stage(checkpoint, device, len(report["clips"]))
    job = report["timings_s"]
    stages |= {"explain": job["explain"], "render": job["render"], "encode": job["encode"]}
    fps = frames / job_s
    return {
        "preset": settings.preset, "weights": "random (speed only)", "method": report["method"]["name"],
        "detect_every": PipelineOptions().detect_every, "batch_size": PipelineOptions().batch_size,
        "video": {"width": settings.video_size[0], "height": settings.video_size[1], "fps": settings.video_fps,
                  "seconds": settings.video_seconds, "frames": frames, "clips": len(report["clips"])},
        "precision": report["method"].get("settings", {}).get("precision"), "job_s": job_s, "frames_per_s": fps, "real_time_goal_fps": REAL_TIME_FPS,
        "real_time_ratio": fps / REAL_TIME_FPS, "meets_real_time": fps >= REAL_TIME_FPS,
        "stage_seconds": stages, "stage_frames_per_s": {k: frames / v for k, v in stages.items()},
        "job_timers_s": job,
    }


# -- 4. training --------------------------------------------------------------------------------


def train_step_fn(net: torch.nn.Module, model: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor,
                  device: torch.device) -> Callable[[], None]:
    """One bf16 optimizer step as ``train.loop`` takes it (``bench_train.make_step``), AdamW at the
    config's default learning rate.  ``net`` runs the forward (the model, or its DDP wrapper)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    return sibling("bench_train").make_step(net, model, optimizer, clips, labels, "bf16")


def bench_train(settings: Settings, device: torch.device) -> dict[str, Any]:
    torch.manual_seed(0)
    model = preset_model(settings.preset, device).train()
    batch = settings.train_batch
    clips = random_clips(model.config, batch, device)
    labels = (torch.arange(batch, device=device) % 2).float()
    step = train_step_fn(model, model, clips, labels, device)
    reset_peak(device)
    log(f"train: {settings.train_steps} bf16 steps at batch {batch}")
    timed_calls(step, device, 1)  # warm-up: optimizer state, allocator, kernels
    times = timed_calls(step, device, settings.train_steps)
    median = statistics.median(times)
    tflop = 3 * transformer_tflop(settings.preset)  # forward + backward (twice the forward's FLOPs)
    achieved = tflop * 1e12 * batch / median
    peak = peak_bf16_flops(device_name(device)) if device.type == "cuda" else None
    return {"preset": settings.preset, "batch": batch, "precision": "bf16", "steps": settings.train_steps,
            "seconds_per_step": median, "seconds_per_step_best": min(times), "steps_per_s": 1 / median,
            "clips_per_s": batch / median, "peak_mib": peak_mib(device),
            "transformer_tflop_per_step_clip": tflop, "achieved_flops": achieved,
            "peak_bf16_flops": peak if peak is not None else "n/a",
            "fraction_of_peak": achieved / peak if peak is not None else "n/a"}


# -- 5. DDP ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, preset: str, batch: int, steps: int, device_type: str,
                queue: mp.Queue) -> None:
    """One rank: join the group as torchrun would (``train.distributed.setup``), time DDP steps."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    from torch.nn.parallel import DistributedDataParallel

    from istvt_explain.train import distributed

    if device_type == "cpu":
        torch.set_num_threads(1)  # the ranks share the cores: more threads would only wait for each other
    ctx = distributed.setup(device_type)
    try:
        torch.manual_seed(0)
        model = preset_model(preset, ctx.device).train()
        net = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
        clips = random_clips(model.config, batch, ctx.device)
        labels = (torch.arange(batch, device=ctx.device) % 2).float()
        step = train_step_fn(net, model, clips, labels, ctx.device)
        timed_calls(step, ctx.device, 1)
        distributed.barrier(ctx)
        start = time.perf_counter()
        timed_calls(step, ctx.device, steps)
        distributed.barrier(ctx)
        elapsed = time.perf_counter() - start
        if ctx.is_main:
            queue.put({"seconds_per_step": elapsed / steps, "backend": torch.distributed.get_backend()})
    except Exception as err:
        queue.put({"error": one_line(err)})
        raise
    finally:
        distributed.cleanup(ctx)


def run_ddp(world: int, preset: str, batch: int, steps: int, device_type: str, timeout_s: float = 300) -> dict:
    """Spawn ``world`` ranks (NCCL on CUDA, gloo on the CPU); rank 0's timing or the first error."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_ddp_worker, args=(r, world, port, preset, batch, steps, device_type, queue))
             for r in range(world)]
    for p in procs:
        p.start()
    try:
        result = queue.get(timeout=timeout_s)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def bench_ddp(settings: Settings, device: torch.device, single: dict | None, gloo_processes: int) -> dict[str, Any]:
    """All GPUs under DDP; ``gloo_processes`` > 1 runs the same code on the CPU (a check, not a figure)."""
    if gloo_processes > 1:
        world, device_type = gloo_processes, "cpu"
    elif device.type != "cuda":
        return {"status": "skipped: no GPU (CPU run)"}
    elif torch.cuda.device_count() < 2:
        return {"status": "skipped: one GPU"}
    else:
        world, device_type = torch.cuda.device_count(), "cuda"
    log(f"ddp: {world} processes, {settings.train_steps} steps at batch {settings.train_batch} each")
    try:
        result = run_ddp(world, settings.preset, settings.train_batch, settings.train_steps, device_type)
    except Exception as err:
        return {"status": f"failed: {one_line(err)}"}
    clips_per_s = world * settings.train_batch / result["seconds_per_step"]
    row = {"status": "ok", "processes": world, "backend": result["backend"], "batch_per_process": settings.train_batch,
           "seconds_per_step": result["seconds_per_step"], "steps_per_s": 1 / result["seconds_per_step"],
           "clips_per_s": clips_per_s}
    if single and device_type == device.type and "clips_per_s" in single:
        row["scaling_efficiency"] = clips_per_s / (world * single["clips_per_s"])
    return row


# -- report -----------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 2) -> str:
    """Fixed decimals; numbers under 1 keep ``digits`` significant digits (a CPU's 0.0004 TFLOP/s is not 0.00)."""
    if not isinstance(value, float):
        return str(value)
    return f"{value:.{digits}g}" if 0 < abs(value) < 1 else f"{value:.{digits}f}"


def forward_table(section: dict) -> list[str]:
    lines = ["| precision | attention | batch | torch.compile | clips/s | ms/batch | peak MiB | transformer TFLOP/s "
             "| compiled vs eager | compile s | status |", "|" + "---|" * 11]
    skipped: dict[str, int] = {}
    eager = {(r["precision"], r["attention"], r["batch"]): r for r in section["cells"] if not r["compiled"]}
    # Table order: each eager cell next to its compiled twin (the run order puts compiled cells last).
    for r in sorted(section["cells"], key=lambda r: (r["precision"], r["attention"] != "fused", r["batch"],
                                                    r["compiled"])):
        if r["status"].startswith("skipped"):  # one line per reason below the table, not a row per cell
            skipped[r["status"]] = skipped.get(r["status"], 0) + 1
            continue
        twin = eager.get((r["precision"], r["attention"], r["batch"]), {})
        speedup = (f"{r['clips_per_s'] / twin['clips_per_s']:.2f}x" if r["compiled"] and r["status"] == "ok"
                   and twin.get("status") == "ok" else "")
        lines.append(f"| {r['precision']} | {r['attention']} | {r['batch']} | {'yes' if r['compiled'] else 'no'} "
                     f"| {cell_number(r, 'clips_per_s')} | {cell_number(r, 'seconds_per_batch', 1000, 1)} "
                     f"| {cell_number(r, 'peak_mib', 1, 0)} | {cell_number(r, 'transformer_tflop_per_s', 1, 3)} "
                     f"| {speedup} | {cell_number(r, 'compile_s', 1, 1)} | {r['status']} |")
    lines += ["", *(f"{count} compiled cell(s) {status}" for status, count in skipped.items())]
    if "compiled" in section:  # the compiled part as a whole failed (see main)
        lines.append(f"Compiled cells: {section['compiled']['status']}")
    return lines


def cell_number(row: dict, key: str, scale: float = 1.0, digits: int = 2) -> str:
    """A measured number of a cell, blank where the cell has none (skipped, failed, not compiled)."""
    return fmt(row[key] * scale, digits) if row["status"] == "ok" and key in row else ""


def explain_table(section: dict) -> list[str]:
    lines = ["| method | precision | method s | forward s (same precision) | ratio to forward | median ratio of pairs "
             "| lowest map correlation with fp32: spatial / frames (paper, random weights; demo weights) |",
             "|---|---|---|---|---|---|---|"]
    for key, precision in (("methods", "fp32"), ("methods_bf16", "bf16")):
        for name, r in section.get(key, {}).items():
            if r["status"] != "ok":
                lines.append(f"| {name} | {precision} | {r['status']} | | | | |")
                continue
            agreement = "; ".join(f"{a['spatial']:.4f} / {a['temporal']:.4f} (nudged fp32: "
                                  f"{a['nudged_fp32_spatial']:.4f} / {a['nudged_fp32_temporal']:.4f})"
                                  for a in r.get("agreement", {}).values())
            lines.append(f"| {name} | {precision} | {r['method_s']:.4f} | {r['forward_s']:.4f} | {r['ratio']:.2f}x "
                         f"| {r['median_pair_ratio']:.2f}x | {agreement} |")
    return lines


def e2e_lines(section: dict) -> list[str]:
    v = section["video"]
    lines = [f"{v['width']}x{v['height']}, {v['fps']:g} fps, {v['seconds']:g} s ({v['frames']} frames, "
             f"{v['clips']} clips), preset `{section['preset']}` with random weights, method "
             f"`{section['method']}` in {section.get('precision') or 'fp32'}, the command's defaults (detect every {section['detect_every']} frames, "
             f"batch {section['batch_size']}).", "",
             "| stage | seconds | frames/s | how |", "|---|---|---|---|"]
    how = {"decode": "one decode pass, on its own (the job decodes 3 times: 2 face passes, 1 render pass)",
           "detect": "MTCNN on the frames the job detects on, on its own",
           "crops": "crops of the clips' frames, on its own",
           "model": "plain forwards of the clips, on its own (inside explain in the job)",
           "explain": "job timer (the method's own forward included)", "render": "job timer",
           "encode": "job timer"}
    for stage, seconds in section["stage_seconds"].items():
        lines.append(f"| {stage} | {seconds:.3f} | {section['stage_frames_per_s'][stage]:.1f} | {how[stage]} |")
    verdict = "meets" if section["meets_real_time"] else "misses"
    lines += ["", f"Whole job (`istvt-explain`, loading the weights included): {section['job_s']:.2f} s, "
              f"**{section['frames_per_s']:.1f} frames/s**, {section['real_time_ratio']:.2f}x the real-time "
              f"goal of {section['real_time_goal_fps']:g} frames/s ({verdict} it).  The job's own timers: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in section["job_timers_s"].items()) + "."]
    return lines


def train_lines(section: dict) -> list[str]:
    frac = section["fraction_of_peak"]
    peak = section["peak_bf16_flops"]
    return ["| preset | batch | precision | steps/s | clips/s | peak MiB | TFLOP/s (transformer) | peak TFLOP/s "
            "| fraction of peak |", "|---|---|---|---|---|---|---|---|---|",
            f"| {section['preset']} | {section['batch']} | bf16 | {section['steps_per_s']:.3f} "
            f"| {section['clips_per_s']:.2f} | {section['peak_mib']:.0f} | {fmt(section['achieved_flops'] / 1e12)} "
            f"| {peak / 1e12 if isinstance(peak, float) else peak} "
            f"| {f'{frac:.1%}' if isinstance(frac, float) else frac} |"]


def ddp_lines(section: dict) -> list[str]:
    line = (f"{section['processes']} processes ({section['backend']}), batch {section['batch_per_process']} each: "
            f"{section['steps_per_s']:.3f} steps/s, {section['clips_per_s']:.2f} clips/s")
    if "scaling_efficiency" in section:
        line += f", {section['scaling_efficiency']:.0%} of {section['processes']} times one process's clips/s"
    return [line + "."]


def markdown(results: dict) -> str:
    meta = results["meta"]
    out = [f"# ISTVT on {meta['device']}{' (smoke run)' if meta['smoke'] else ''}", "",
           f"torch {meta['torch']} (CUDA {meta['cuda']}), preset `{meta['preset']}`, {meta['date']}, "
           f"wall time {meta['wall_s']:.0f} s; TF32 for fp32 matmuls {'on' if meta['tf32_matmul'] else 'off'}, "
           f"for cuDNN convolutions {'on' if meta['tf32_cudnn'] else 'off'} (torch's defaults).", "",
           f"    {meta['command']}", ""]
    titles = {"forward": "1. Forward pass", "explain": "2. Explanation methods against a forward pass",
              "e2e": "3. `istvt-explain` end to end", "train": "4. Training (bf16)", "ddp": "5. DDP"}
    render = {"forward": forward_table, "explain": explain_table, "e2e": e2e_lines, "train": train_lines,
              "ddp": ddp_lines}
    notes = {"forward": f"Peak memory: {results['forward'].get('peak_memory', '')}. Transformer FLOPs as "
                        "`bench_model.transformer_tflop` counts them (the Xception entry flow not included).",
             "explain": "fp32 and bf16 (`explain(..., precision=)`; LRP keeps its transformer in fp32), fused "
                        "attention, batch as the command explains; each "
                        "method interleaved with a forward in the same precision, best of each; ratios are what to "
                        "quote.  Correlation: the lowest over the clips (the timed ones; random clips through the "
                        "demo weights, 8 in a full run) between the bf16 maps and the fp32 maps of the same clips; in brackets, for scale, the "
                        "fp32 maps of the same clips nudged by Gaussian noise of std 1e-4 (inputs span [-1, 1]).",
             "train": "One step: bf16 autocast forward, BCE, backward, gradient clipping, AdamW.  FLOPs per "
                      "step = 3 x the transformer's forward FLOPs x batch (the backbone not counted: a lower bound).",
             "ddp": ""}
    for name in SECTIONS:
        section = results[name]
        out += [f"## {titles[name]}", ""]
        if "status" in section and section["status"] != "ok":
            out += [section["status"], ""]
            continue
        out += render[name](section) + [""]
        if notes.get(name):
            out += [notes[name], ""]
    return "\n".join(out)


# -- main -------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu.md and gpu.json")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks every code path in about a minute")
    parser.add_argument("--device", choices=("cuda", "cpu"),
                        help="default cuda; with --smoke, the CPU when no CUDA device is present (said in one line)")
    parser.add_argument("--compile", default="auto", choices=("auto", "on", "off"),
                        help="torch.compile cells (auto: on a GPU only)")
    parser.add_argument("--time-limit", type=float, metavar="S",
                        help="compiled cells (run last) start only while the run can end within S seconds "
                             "(default 450; smoke 300)")
    parser.add_argument("--preset", help="model preset (default: paper; with --smoke: tiny)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch CPU threads (default: torch's; 1 with --smoke on the CPU)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), metavar="SECTION",
                        help=f"run these sections only ({', '.join(SECTIONS)})")
    parser.add_argument("--ddp-gloo", type=int, default=0, metavar="N",
                        help="run the DDP section with N gloo processes on the CPU (checks the code path)")
    return parser.parse_args(argv)


def check_device(name: str | None, smoke: bool = False) -> torch.device:
    """The device to measure: ``name``, or (None) cuda, except that a smoke run falls back to the CPU.

    Why the fallback: the smoke run checks code paths, so it is meant to run everywhere; an explicit
    ``--device cuda`` without CUDA is refused early and in one line instead (no half-written results).
    """
    if name == "cpu":
        return torch.device("cpu")
    with warnings.catch_warnings():  # a driver warning here would add lines to the one-line message
        warnings.simplefilter("ignore")
        available = torch.cuda.is_available()
    if not available and name is None and smoke:
        print("bench_gpu: no CUDA device is available; the smoke run falls back to the CPU (--device cpu)",
              file=sys.stderr, flush=True)
        return torch.device("cpu")
    if not available:
        raise SystemExit(f"bench_gpu: error: --device cuda: no CUDA device is available (torch "
                         f"{torch.__version__}); use --device cpu")
    return torch.device("cuda")


@contextlib.contextmanager
def section_guard(results: dict, name: str) -> Iterator[None]:
    """A section that raises records ``failed: <reason>`` and the run goes on to the next."""
    try:
        yield
    except Exception as err:
        results[name] = {"status": f"failed: {one_line(err)}"}
        log(f"{name}: {results[name]['status']}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    device = check_device(args.device, smoke=args.smoke)
    settings = SMOKE if args.smoke else FULL
    if args.time_limit is not None:
        settings = dataclasses.replace(settings, time_limit_s=args.time_limit)
    if args.preset:
        settings = dataclasses.replace(settings, preset=args.preset)
    threads = args.threads or (1 if args.smoke and device.type == "cpu" else None)
    if threads:
        # Why one thread for the smoke run: on two cores that other jobs keep busy, OpenMP's threads
        # wait for each other at every op's barrier; the smoke run took 220 s with 2 threads, 23 s with 1.
        torch.set_num_threads(threads)
    results: dict[str, Any] = {name: {"status": "skipped: not in --only"} for name in SECTIONS}
    runners: dict[str, Callable[[], dict]] = {
        "forward": lambda: bench_forward(settings, device),
        "explain": lambda: bench_explain(settings, device),
        "e2e": lambda: bench_e2e(settings, device),
        "train": lambda: bench_train(settings, device),
        "ddp": lambda: bench_ddp(settings, device, results.get("train"), args.ddp_gloo),
    }
    def write(final: bool) -> None:
        """Both files after every section: a run cut off by a time limit still leaves what it measured."""
        results["meta"] = meta(device, settings, args, argv, final)
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out / "gpu.json", json.dumps(results, indent=2) + "\n")
        write_atomic(args.out / "gpu.md", markdown(results))

    for name in SECTIONS:
        if name in args.only:
            with section_guard(results, name):
                results[name] = runners[name]()
            log(f"{name}: done")
            write(final=False)
    if "cells" in results["forward"]:  # the eager cells ran: now the compiled ones, in the time left
        with section_guard(results["forward"], "compiled"):
            bench_forward_compiled(results["forward"], settings, device, args.compile, _START + settings.time_limit_s)
    write(final=True)
    log(f"wrote {args.out / 'gpu.md'} and {args.out / 'gpu.json'} in {results['meta']['wall_s']:.0f} s")
    failed = [n for n in SECTIONS if str(results[n].get("status", "ok")).startswith("failed")]
    return 1 if failed else 0


def meta(device: torch.device, settings: Settings, args: argparse.Namespace, argv: list[str],
         final: bool) -> dict[str, Any]:
    """What ran where: the numbers mean little without the card, the versions and the load."""
    return {
        "device": device_name(device), "device_type": device.type, "torch": torch.__version__,
        "cuda": torch.version.cuda, "python": platform.python_version(), "smoke": args.smoke,
        "cpu_threads": torch.get_num_threads(), "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "preset": settings.preset, "settings": dataclasses.asdict(settings), "compile": args.compile,
        "command": sibling("reporting").repo_command("benchmarks/bench_gpu.py", argv),
        "date": time.strftime("%Y-%m-%d %H:%M"), "load_average": list(os.getloadavg()),
        "wall_s": time.perf_counter() - _START, "complete": final,
    }


def write_atomic(path: Path, text: str) -> None:
    """Write beside, then rename: a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


if __name__ == "__main__":
    sys.exit(main())
