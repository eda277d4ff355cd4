"""GPU benchmark of ISTVT: forward, its profile, explanations, the whole command, scan, training and DDP, in one run.

    python benchmarks/bench_gpu.py --out benchmarks/results/gpu_h100                 # one GPU, paper preset (<= 8 min on an H100)
    python benchmarks/bench_gpu.py --smoke --device cpu --out /tmp/gpu_smoke         # every part, tiny sizes (about a minute on a CPU)
    python benchmarks/bench_gpu.py --out OUT --only forward train --compile off      # a subset, no torch.compile
    python benchmarks/bench_gpu.py --out OUT --only forward profile --trace           # and the profiler's trace

Sections (each writes its numbers into ``OUT/gpu.json`` and a table into ``OUT/gpu.md``):

1. ``forward``: clips/s of the preset at batch 1, 8 and 32, fp32 and bf16 (``torch.autocast``), fused
   (``scaled_dot_product_attention``) and explicit attention, eager and ``torch.compile``; peak memory
   (``torch.cuda.max_memory_allocated``; on the CPU the process's RSS high-water mark).  A cell that
   fails says ``failed: <reason>`` and the run goes on.  Compiled cells run last, after every other
   section, and only while the run can still end within ``--time-limit`` (a compile takes about a
   minute for the paper preset), so the whole run keeps to its time whatever the compiler does.
2. ``profile``: ``torch.profiler`` over a few eager forwards at the forward section's best-throughput
   batch (8 without it), bf16 autocast on CUDA, fp32 on the CPU: wall time per forward, the 15
   operators with the most self device time (self CPU time on the CPU) and their shares, the shares
   by kind (convolution, matmul/linear/attention, normalisation, elementwise/activation,
   copies/casts, other), kernel launches per forward (leaf operators on the CPU), the GPU's busy
   share, and the achieved FLOP/s as a fraction of the card's peak (transformer FLOPs as
   ``bench_model.transformer_tflop`` counts them: a lower bound).  ``--trace`` saves the Chrome trace.
3. ``explain``: each attention-based method (attention, rollout, relevance, lrp, spatial-only,
   temporal-only, and lrp-attnlrp: LRP with AttnLRP's softmax rule) as a ratio to a plain forward, timed
   interleaved (``bench_explain.paired``), fp32 and bf16, at the command's batch; and under bf16, how
   well each method's maps correlate with fp32's, next to how well fp32's survive a 1e-4 nudge of the
   input (the method's own stability, for scale).
4. ``e2e``: ``istvt-explain VIDEO --out ... --json ...`` (in this process, random weights of the preset
   saved with ``save_checkpoint``: speed only) on a generated 720p, 30 fps, 20 s face video
   (``data.media.make_face_video``); frames/s per stage and in total, against the real-time goal of 30.
5. ``single_pass``: how many times that command decoded the video: the frames ``VideoReader.frames``
   yielded during it over the video's frames ("decode passes", goal 1), next to one decode pass's
   frames/s (from the e2e run; without it, the command runs once more here, counted only).
6. ``scan``: ``istvt-explain scan`` (in this process, the same random weights, ``--scan-workers``) over
   6 generated 20 s 720p 30 fps face videos that differ (fewer when the e2e job says they would take
   over 90 s): videos per hour and frames/s, loading included, against the goal of 800 videos/hour.
7. ``train``: optimizer steps/s in bf16 (the training loop's step: autocast, BCE on the logit, gradient
   clipping, AdamW) and the fraction of the card's peak dense bf16 FLOP/s, FLOPs counted as
   ``bench_model.transformer_tflop`` does (the transformer only: a lower bound).
8. ``ddp``: the same step under DistributedDataParallel with NCCL on every GPU, when there are several.

Profile, scan, and single_pass where it runs the command itself, start only while the run can still
end within ``--time-limit`` (each has a guess of its time); otherwise they say ``skipped``.

``--smoke``: tiny preset, batches 1 and 2, two repeats, a 320x180 2 s video (3 for the scan), one CPU thread, no
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
SECTIONS = ("forward", "profile", "explain", "e2e", "single_pass", "scan", "train", "ddp")
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
    profile_batch: int  # the profile's batch when the forward section did not run
    profile_steps: int  # forwards under the profiler
    scan_videos: int  # generated videos for the scan's throughput (fewer when e2e says they would take too long)
    scan_budget_s: float  # what the scan itself may take, judged from the e2e job's seconds per video
    generate_workers: int  # processes that generate the scan's videos (1: in this process)
    # What a section takes before it starts, for ``--time-limit`` (it starts only if it can end in time)
    profile_guess_s: float
    e2e_guess_s: float
    scan_guess_s: float


FULL = Settings(preset="paper", batches=(1, 8, 32), warmup=3, repeats=10, explain_batch=4, explain_repeats=5,
                agreement_clips=8,
                video_size=(1280, 720), video_seconds=20.0, video_fps=30.0, train_batch=8, train_steps=10,
                time_limit_s=450.0, compile_guess_s=90.0, profile_batch=8, profile_steps=5, scan_videos=6,
                scan_budget_s=90.0, generate_workers=6, profile_guess_s=30.0, e2e_guess_s=60.0, scan_guess_s=150.0)
SMOKE = Settings(preset="tiny", batches=(1, 2), warmup=1, repeats=2, explain_batch=1, explain_repeats=2,
                 agreement_clips=2,
                 video_size=(320, 180), video_seconds=2.0, video_fps=30.0, train_batch=2, train_steps=2,
                 time_limit_s=300.0, compile_guess_s=60.0, profile_batch=2, profile_steps=2, scan_videos=3,
                 scan_budget_s=600.0, generate_workers=1, profile_guess_s=15.0, e2e_guess_s=20.0, scan_guess_s=40.0)

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
    layout: str = "contiguous"  # or "channels_last": the backbone's convolution weights (NHWC kernels)

    @property
    def dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.precision == "bf16" else None


def forward_cells(settings: Settings, compiled: bool) -> list[Cell]:
    """The eager cells, or the compiled ones in the order they run: fused attention and bf16 first (the
    path that serves), so that the cells most worth having are measured if the time runs out."""
    batches = sorted(settings.batches, reverse=True)
    if not compiled:
        return ([Cell(b, p, a, False) for p in ("bf16", "fp32") for a in ("fused", "explicit") for b in batches]
                + [Cell(b, "bf16", "fused", False, "channels_last") for b in batches])
    return [Cell(b, p, a, True) for a in ("fused", "explicit") for p in ("bf16", "fp32") for b in batches]


def measure_cell(model: torch.nn.Module, cell: Cell, clips: torch.Tensor, device: torch.device,
                 settings: Settings) -> dict[str, Any]:
    """clips/s of one (batch, precision, attention, compile) cell; the first call's extra time is the compile."""
    set_fused(model, cell.attention == "fused")
    getattr(model, "backbone", model).to(
        memory_format=torch.channels_last if cell.layout == "channels_last" else torch.contiguous_format)
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


# -- 1b. profile --------------------------------------------------------------------------------

# (kind, fragments of an operator's name, or its exact base names) in the order they are tried; the base
# name is the part after "::" without leading or trailing "_" ("aten::add_" -> "add").  Fragments for
# the families with many variants ("aten::_conv_depthwise2d", "aten::_scaled_dot_product_flash_attention",
# "aten::native_layer_norm"), exact names where a fragment would catch others ("exp" is in "expand").
OP_KINDS: tuple[tuple[str, tuple[str, ...], frozenset[str]], ...] = (
    ("convolution", ("conv",), frozenset()),
    ("matmul/linear/attention", ("mm", "matmul", "linear", "attention", "einsum", "softmax"), frozenset()),
    ("normalisation", ("norm",), frozenset()),
    ("copies/casts", (), frozenset({"copy", "to", "to_copy", "contiguous", "clone", "cat", "stack"})),
    ("elementwise/activation", (), frozenset({
        "add", "mul", "sub", "div", "neg", "pow", "sqrt", "rsqrt", "exp", "abs", "reciprocal", "addcmul",
        "addcdiv", "lerp", "maximum", "minimum", "where", "fill", "zero", "clamp", "clamp_min", "clamp_max",
        "threshold", "dropout", "gelu", "relu", "silu", "sigmoid", "tanh", "hardtanh", "leaky_relu", "elu",
        "softplus"})),
)
OTHER_KIND = "other"


def op_kind(name: str) -> str:
    """The kind an operator's time is counted under in the profile's grouped shares."""
    lowered = name.lower()
    base = lowered.rsplit("::", 1)[-1].strip("_")
    for kind, fragments, names in OP_KINDS:
        if base in names or any(fragment in lowered for fragment in fragments):
            return kind
    return OTHER_KIND


def profile_batch(forward: dict | None, precision: str, default: int) -> tuple[int, str]:
    """(batch, why): the batch of the forward section's best eager clips/s in the profiled precision with
    fused attention, else ``default`` (the forward section did not run or no such cell is ok)."""
    cells = [c for c in (forward or {}).get("cells", []) if not c["compiled"] and c["status"] == "ok"
             and c["precision"] == precision and c["attention"] == "fused"
             and c["layout"] == "contiguous"]  # the profile runs the model as loaded
    if not cells:
        return default, "the default: no eager forward cell to pick from"
    best = max(cells, key=lambda c: c["clips_per_s"])
    return best["batch"], f"the forward section's best eager {precision} fused clips/s"


def summarise_profile(events: Any, on_device: bool, steps: int) -> dict[str, Any]:
    """Per operator self time (device time on a GPU, CPU time on the CPU), the shares by kind, launches.

    Why operators and not kernels: a kernel's name says little (``sm90_xmma_gemm_...``), the operator
    that launched it says what the model does; each operator's self device time is the time of the
    kernels it launched itself (``FunctionEvent.self_device_time_total``).
    """
    from torch.autograd import DeviceType

    per_op: dict[str, float] = {}
    launches = 0
    device_us = 0.0
    for event in events:
        if getattr(event, "is_user_annotation", False) or event.is_async:
            continue
        if event.device_type == DeviceType.CPU:
            self_us = event.self_device_time_total if on_device else event.self_cpu_time_total
            if self_us > 0:
                per_op[event.name] = per_op.get(event.name, 0.0) + self_us
            if not on_device and not event.cpu_children:
                launches += 1  # on the CPU: leaf operators, the nearest thing to kernel launches
        elif on_device:
            device_us += event.self_device_time_total
            if not event.name.startswith(("Memcpy", "Memset")):
                launches += 1
    total_us = sum(per_op.values())
    if total_us <= 0:
        raise RuntimeError("the profiler recorded no operator time")
    kinds = {kind: 0.0 for kind, _, _ in OP_KINDS} | {OTHER_KIND: 0.0}
    for name, self_us in per_op.items():
        kinds[op_kind(name)] += self_us / total_us
    top = sorted(per_op.items(), key=lambda item: item[1], reverse=True)[:15]
    summary = {
        "self_time": "device (kernels each operator launched)" if on_device else "CPU",
        "self_ms_per_forward": total_us / 1e3 / steps,
        "top_operators": [{"name": name, "kind": op_kind(name), "self_ms_per_forward": us / 1e3 / steps,
                           "share": us / total_us} for name, us in top],
        "kind_shares": kinds,
        "launches_per_forward": launches / steps,
        "launches_are": "CUDA kernels (memcpy and memset not counted)" if on_device else "leaf CPU operators",
    }
    if on_device:
        summary["kernel_ms_per_forward"] = device_us / 1e3 / steps  # every kernel, an operator's or not
    return summary


def bench_profile(settings: Settings, device: torch.device, forward: dict | None,
                  trace: Path | None) -> dict[str, Any]:
    """``torch.profiler`` over a few eager forwards at the best-throughput batch: where the time goes.

    bf16 autocast on CUDA (the serving path), fp32 on the CPU (bf16 there is emulated and says
    nothing about a GPU).  FLOP/s from the unprofiled forwards' wall time (the profiler adds its own).
    """
    from torch.profiler import ProfilerActivity, profile

    precision = "bf16" if device.type == "cuda" else "fp32"
    batch, why = profile_batch(forward, precision, settings.profile_batch)
    torch.manual_seed(0)
    model = preset_model(settings.preset, device)
    set_fused(model, True)
    clips = random_clips(model.config, batch, device)
    dtype = torch.bfloat16 if precision == "bf16" else None
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    if device.type == "cpu":  # kineto's "gpuGetDeviceCount failed" on a machine without a GPU is noise there
        os.environ.setdefault("KINETO_LOG_LEVEL", "5")
    steps = settings.profile_steps
    log(f"profile: {steps} forwards at batch {batch} ({precision})")
    with torch.no_grad(), autocast(device, dtype):
        timed_calls(lambda: model(clips), device, settings.warmup)
        wall = statistics.median(timed_calls(lambda: model(clips), device, steps))
        with profile(activities=activities) as prof:
            profiled = sum(timed_calls(lambda: model(clips), device, steps))
    summary = summarise_profile(prof.events(), device.type == "cuda", steps)
    if trace is not None:
        trace.parent.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(trace))
    tflop = transformer_tflop(settings.preset)
    achieved = tflop * 1e12 * batch / wall
    peak = peak_bf16_flops(device_name(device)) if device.type == "cuda" else None
    result = {"preset": settings.preset, "batch": batch, "batch_from": why, "precision": precision,
              "attention": "fused", "compiled": False, "steps": steps, "wall_ms_per_forward": wall * 1e3,
              "profiled_wall_ms_per_forward": profiled * 1e3 / steps, **summary,
              "flop_count": "bench_model.transformer_tflop: the transformer only (a lower bound)",
              "transformer_tflop_per_clip": tflop, "achieved_flops": achieved,
              "peak_bf16_flops": peak if peak is not None else "n/a",
              "fraction_of_peak": achieved / peak if peak is not None else "n/a",
              "trace": str(trace) if trace is not None else "not saved (--trace)"}
    if device.type == "cuda":  # the GPU's busy share: below 1, the forward waits on launches or the host
        result["device_busy"] = summary["kernel_ms_per_forward"] / (wall * 1e3)
    return result


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


@contextlib.contextmanager
def count_decoded_frames() -> Iterator[dict[str, int]]:
    """Count the frames every ``VideoReader.frames`` pass yields in this process while the block runs.

    Why the reader: every decoding pass of the pipeline goes through ``VideoReader.frames`` (``__iter__``
    and ``read_frames`` call it), so the count says how often a command decoded its video, whatever
    the pipeline does.  ``passes``: the calls (a pass may stop early); ``frames``: frames yielded.
    Thread-safe: the pipeline decodes in ``Prefetch`` threads.  Worker processes are not counted.
    """
    import threading

    from istvt_explain.data.video import VideoReader

    original = VideoReader.frames
    counts = {"frames": 0, "passes": 0}
    lock = threading.Lock()

    @functools.wraps(original)
    def frames(self: VideoReader) -> Iterator[Any]:
        with lock:
            counts["passes"] += 1
        inner = original(self)
        try:
            for frame in inner:
                with lock:
                    counts["frames"] += 1
                yield frame
        finally:
            inner.close()  # a consumer that stops early closes the container now, as without the count

    VideoReader.frames = frames
    try:
        yield counts
    finally:
        VideoReader.frames = original


def decode_figures(counts: dict[str, int], video_frames: int, videos: int = 1) -> dict[str, Any]:
    """Decoded frames over the video's frames: how many times a command decoded each video (goal: 1)."""
    return {"video_frames": video_frames * videos, "decoded_frames": counts["frames"],
            "reader_passes": counts["passes"], "decode_passes": counts["frames"] / (video_frames * videos),
            "goal_passes": 1}


def face_pass_stages(video: Path, report: dict, image_size: int, device: torch.device) -> dict[str, float]:
    """Seconds of decode, detection and cropping, each on its own, in one pass as the face pass does them.

    Why apart from the job: its "faces" timer holds the decode, detection, tracking and cropping
    together.  Detection runs on every ``detect_every``-th frame with the detector the command uses on
    ``device`` (``pipeline.run.face_detector``: MTCNN's PyTorch port on a GPU, in its batches), and
    cropping on the frames the clips use, with the crop boxes the job reported.
    """
    import numpy as np

    from istvt_explain.data.faces import crop_square
    from istvt_explain.data.video import VideoReader
    from istvt_explain.pipeline import PipelineOptions
    from istvt_explain.pipeline.run import face_detector

    options = PipelineOptions()
    detector = face_detector(options, device)
    batch_size = int(getattr(detector, "batch_size", 1)) if hasattr(detector, "detect_batch") else 1
    boxes = {f["index"]: np.asarray(f["box"], np.float64) for f in report["frames"] if f["box"] is not None}
    wanted = {i for clip in report["clips"] for i in clip["frames"]} & set(boxes)
    reader = VideoReader(video)
    seconds = {"decode": 0.0, "detect": 0.0, "crops": 0.0}
    waiting: list = []

    def detect() -> None:
        start = time.perf_counter()
        if batch_size > 1:
            detector.detect_batch(waiting)
        else:
            detector.detect(waiting[0])
        synchronize(device)
        seconds["detect"] += time.perf_counter() - start
        waiting.clear()

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
            waiting.append(rgb)
            if len(waiting) == batch_size:
                detect()
        if index in wanted:
            start = time.perf_counter()
            crop_square(rgb, boxes[index], image_size)
            seconds["crops"] += time.perf_counter() - start
        index += 1
    if waiting:
        detect()
    return seconds


def model_stage(checkpoint: Path, device: torch.device, clips: int) -> float:
    """Seconds of plain forwards over the job's clips at the command's batch, the model as the command loads it.

    Why: the job's "explain" stage runs each method's own forward; this is the classification alone.
    """
    def forward(model: torch.nn.Module, inputs: torch.Tensor) -> None:
        with torch.inference_mode():
            model(inputs)

    return _over_the_job_clips(checkpoint, device, clips, forward)


def method_stage(checkpoint: Path, device: torch.device, clips: int, method: str) -> float:
    """Seconds of the job's method alone over the job's clips, at the command's batch and precision.

    The clips already sit on the device, normalised: what the job's "explain" timer adds to this is
    the stage's own overhead (gathering crops, copies, checks, taking results off the device).
    """
    from istvt_explain.attribution import explain
    from istvt_explain.pipeline import PipelineOptions

    precision = PipelineOptions(method=method).precision
    return _over_the_job_clips(checkpoint, device, clips,
                               lambda model, inputs: explain(model, inputs, method=method, precision=precision))


def _over_the_job_clips(checkpoint: Path, device: torch.device, clips: int,
                        call: Callable[[torch.nn.Module, torch.Tensor], object]) -> float:
    """Seconds of ``call(model, batch)`` over ``clips`` random clips in the command's batches, after one
    warm-up call, the model loaded and prepared as the command does."""
    from istvt_explain.models import load_model
    from istvt_explain.models.inference import optimize_for_inference
    from istvt_explain.pipeline import PipelineOptions

    model = optimize_for_inference(load_model(checkpoint, device=device))
    batch = PipelineOptions().clips_per_call(device)
    inputs = random_clips(model.config, batch, device)
    call(model, inputs)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    for first in range(0, clips, batch):
        call(model, inputs[:min(batch, clips - first)])
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
        with count_decoded_frames() as counts:  # how many times the command decodes the video (single_pass)
            job_s, report = run_command(video, checkpoint, device, folder)
        log("e2e: stages on their own")
        image_size = preset_config(settings.preset).image_size
        stages = face_pass_stages(video, report, image_size, device)
        stages["model"] = model_stage(checkpoint, device, len(report["clips"]))
        stages["method"] = method_stage(checkpoint, device, len(report["clips"]), report["method"]["name"])
    job = report["timings_s"]
    stages |= {"explain": job["explain"], "render": job["render"], "encode": job["encode"]}
    fps = frames / job_s
    return {
        "preset": settings.preset, "weights": "random (speed only)", "method": report["method"]["name"],
        "detect_every": PipelineOptions().detect_every, "batch_size": PipelineOptions().clips_per_call(device),
        "video": {"width": settings.video_size[0], "height": settings.video_size[1], "fps": settings.video_fps,
                  "seconds": settings.video_seconds, "frames": frames, "clips": len(report["clips"])},
        "precision": report["method"].get("settings", {}).get("precision"), "job_s": job_s, "frames_per_s": fps, "real_time_goal_fps": REAL_TIME_FPS,
        "real_time_ratio": fps / REAL_TIME_FPS, "meets_real_time": fps >= REAL_TIME_FPS,
        "stage_seconds": stages, "stage_frames_per_s": {k: frames / v for k, v in stages.items()},
        "job_timers_s": job, "decode": decode_figures(counts, frames),
        "explain_overhead": job["explain"] / stages["method"],
    }


# -- 3b. decode passes (single pass) -----------------------------------------------------------------


def bench_single_pass(settings: Settings, device: torch.device, e2e: dict | None) -> dict[str, Any]:
    """How many times ``istvt-explain`` decoded its video, and what decoding then costs per frame.

    From the e2e run when it ran (it counts its command's decoded frames); otherwise the command is
    run here once on the same generated video, counted only.  ``decode_bound_frames_per_s``: the
    frames/s decoding alone allows, one pass's frames/s over the passes (the ceiling a single pass lifts).
    """
    if e2e is not None and "decode" in e2e:
        figures = dict(e2e["decode"]) | {"source": "the e2e run", "job_frames_per_s": e2e["frames_per_s"]}
        one_pass = e2e["stage_frames_per_s"].get("decode")
        if one_pass:
            figures |= {"one_pass_frames_per_s": one_pass,
                        "decode_bound_frames_per_s": one_pass / figures["decode_passes"]}
        return figures
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        folder = Path(tmp)
        log("single_pass: generating the e2e video (e2e did not run)")
        video, frames = make_video(settings, folder)
        checkpoint = random_checkpoint(settings.preset, folder)
        with count_decoded_frames() as counts:
            job_s, _ = run_command(video, checkpoint, device, folder)
    return decode_figures(counts, frames) | {"source": "its own run of the command", "job_frames_per_s": frames / job_s}


# -- 3c. scan throughput ------------------------------------------------------------------------------

SCAN_GOAL_VIDEOS_PER_HOUR = 800.0
SCAN_MOTIONS = ("pan-zoom", "pan", "zoom")


def make_scan_videos(settings: Settings, folder: Path, count: int) -> int:
    """``count`` different face videos of the e2e size (face picture, motion and pace vary); their frames each.

    Why processes: a 20 s 720p video takes seconds to draw and encode, and a GPU machine has idle cores.
    """
    from istvt_explain.data.media import FACE_NAMES, make_face_video

    folder.mkdir(parents=True, exist_ok=True)
    frames = round(settings.video_fps * settings.video_seconds)
    jobs = [(folder / f"face_{i:02d}.mp4",
             {"frames": frames, "size": settings.video_size, "fps": settings.video_fps,
              "face": FACE_NAMES[i % len(FACE_NAMES)], "motion": SCAN_MOTIONS[i % len(SCAN_MOTIONS)],
              "period": 3.0 + 0.5 * i}) for i in range(count)]
    workers = min(count, settings.generate_workers, os.cpu_count() or 1)
    if workers <= 1:
        for path, options in jobs:
            make_face_video(path, **options)
        return frames
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        for future in [pool.submit(make_face_video, path, **options) for path, options in jobs]:
            future.result()
    return frames


def scan_count(settings: Settings, e2e: dict | None) -> tuple[int, str]:
    """(videos, why): ``settings.scan_videos``, fewer when the e2e job's time per video says they
    would take longer than ``settings.scan_budget_s`` (a slow card keeps the run within its time)."""
    count = settings.scan_videos
    job_s = (e2e or {}).get("job_s")
    if not job_s:
        return count, "as set; no e2e time to judge from"
    fitting = max(2, int(settings.scan_budget_s // job_s))
    if fitting >= count:
        return count, "as set"
    return fitting, (f"fewer than set: the e2e job's {job_s:.1f} s per video within the scan's "
                     f"{settings.scan_budget_s:g} s budget")


def run_scan(videos: Path, checkpoint: Path, device: torch.device, results: Path, workers: int) -> float:
    """``istvt-explain scan VIDEOS --out RESULTS --weights ...`` in this process: its wall seconds."""
    from istvt_explain.cli import main as cli_main

    argv = ["scan", str(videos), "--out", str(results), "--weights", str(checkpoint), "--device", device.type,
            "--workers", str(workers), "--quiet"]
    start = time.perf_counter()
    code = cli_main(argv)
    wall = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"istvt-explain scan exited {code}: {shlex.join(['istvt-explain', *argv])}")
    return wall


def bench_scan(settings: Settings, device: torch.device, e2e: dict | None, workers: int) -> dict[str, Any]:
    """Videos per hour of ``istvt-explain scan`` over generated 20 s 720p face videos (the command's
    whole time, loading the weights included), against the goal of 800 videos an hour."""
    import csv

    count, why = scan_count(settings, e2e)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-scan-") as tmp:
        folder = Path(tmp)
        log(f"scan: generating {count} {settings.video_size[0]}x{settings.video_size[1]} "
            f"{settings.video_seconds:g} s videos")
        start = time.perf_counter()
        frames = make_scan_videos(settings, folder / "videos", count)
        generate_s = time.perf_counter() - start
        checkpoint = random_checkpoint(settings.preset, folder)
        log(f"scan: istvt-explain scan over {count} videos")
        with count_decoded_frames() as counts:
            scan_s = run_scan(folder / "videos", checkpoint, device, folder / "results", workers)
        with (folder / "results" / "results.csv").open(newline="", encoding="utf-8") as table:
            rows = list(csv.DictReader(table))
    failed = [row for row in rows if row["error"]]
    if len(rows) != count or len(failed) == count:
        raise RuntimeError(f"scan: {len(rows)} rows for {count} videos, {len(failed)} failed"
                           + (f" ({failed[0]['error']})" if failed else ""))
    per_video = [float(row["seconds"]) for row in rows if not row["error"] and row["seconds"]]
    videos_per_hour = count / scan_s * 3600
    result = {
        "preset": settings.preset, "weights": "random (speed only)", "workers": workers,
        "video": {"width": settings.video_size[0], "height": settings.video_size[1], "fps": settings.video_fps,
                  "seconds": settings.video_seconds, "frames": frames},
        "videos": count, "videos_from": why, "videos_failed": len(failed), "generate_s": generate_s,
        "scan_s": scan_s, "videos_per_hour": videos_per_hour, "frames_per_s": count * frames / scan_s,
        "goal_videos_per_hour": SCAN_GOAL_VIDEOS_PER_HOUR,
        "goal_ratio": videos_per_hour / SCAN_GOAL_VIDEOS_PER_HOUR,
        "meets_goal": videos_per_hour >= SCAN_GOAL_VIDEOS_PER_HOUR,
        "median_video_s": statistics.median(per_video) if per_video else "n/a",
    }
    if failed:
        result["first_error"] = failed[0]["error"]
    # Worker processes decode out of sight of the count: then it says nothing
    result["decode"] = decode_figures(counts, frames, count) if workers == 0 else "n/a (worker processes decode)"
    return result


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
    lines = ["| precision | attention | layout | batch | torch.compile | clips/s | ms/batch | peak MiB "
             "| transformer TFLOP/s | vs eager contiguous | compile s | status |", "|" + "---|" * 12]
    skipped: dict[str, int] = {}
    eager = {(r["precision"], r["attention"], r["batch"]): r for r in section["cells"]
             if not r["compiled"] and r["layout"] == "contiguous"}
    # Table order: each eager cell next to its twins (the run order puts compiled cells last).
    for r in sorted(section["cells"], key=lambda r: (r["precision"], r["attention"] != "fused", r["batch"],
                                                    r["compiled"], r["layout"])):
        if r["status"].startswith("skipped"):  # one line per reason below the table, not a row per cell
            skipped[r["status"]] = skipped.get(r["status"], 0) + 1
            continue
        twin = eager.get((r["precision"], r["attention"], r["batch"]), {})
        speedup = (f"{r['clips_per_s'] / twin['clips_per_s']:.2f}x" if r is not twin and r["status"] == "ok"
                   and twin.get("status") == "ok" else "")
        lines.append(f"| {r['precision']} | {r['attention']} | {r.get('layout', 'contiguous')} | {r['batch']} "
                     f"| {'yes' if r['compiled'] else 'no'} "
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
    how = {"decode": "one decode pass, on its own (how many the job makes: section 5)",
           "detect": "MTCNN on the frames the job detects on, on its own",
           "crops": "crops of the clips' frames, on its own",
           "model": "plain forwards of the clips, on its own (inside explain in the job)",
           "method": "the job's method alone on clips already on the device, at the job's batch",
           "explain": "job timer (the method's own forward included)", "render": "job timer",
           "encode": "job timer"}
    for stage, seconds in section["stage_seconds"].items():
        lines.append(f"| {stage} | {seconds:.3f} | {section['stage_frames_per_s'][stage]:.1f} | {how[stage]} |")
    verdict = "meets" if section["meets_real_time"] else "misses"
    lines += ["", f"Whole job (`istvt-explain`, loading the weights included): {section['job_s']:.2f} s, "
              f"**{section['frames_per_s']:.1f} frames/s**, {section['real_time_ratio']:.2f}x the real-time "
              f"goal of {section['real_time_goal_fps']:g} frames/s ({verdict} it).  The job's own timers: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in section["job_timers_s"].items()) + "."]
    if "explain_overhead" in section:
        lines += ["", f"The explain stage takes {section['explain_overhead']:.2f}x the method's own time on the "
                      "same number of clips (1.00x: no overhead)."]
    return lines


def profile_lines(section: dict) -> list[str]:
    self_time = "self device ms" if section["self_time"] != "CPU" else "self CPU ms"
    frac = section["fraction_of_peak"]
    peak = section["peak_bf16_flops"]
    busy = (f", the GPU busy {section['device_busy']:.0%} of the forward's wall time "
            f"({section['kernel_ms_per_forward']:.2f} ms of kernels)" if "device_busy" in section else "")
    lines = [f"Preset `{section['preset']}`, batch {section['batch']} ({section['batch_from']}), "
             f"{section['precision']}, fused attention, eager; {section['steps']} forwards under `torch.profiler`.  "
             f"Per forward: {section['wall_ms_per_forward']:.2f} ms wall without the profiler "
             f"({section['profiled_wall_ms_per_forward']:.2f} ms with it), {section['self_ms_per_forward']:.2f} "
             f"{self_time} in operators{busy}; {section['launches_per_forward']:.0f} launches "
             f"({section['launches_are']}).", "",
             f"Achieved {fmt(section['achieved_flops'] / 1e12, 3)} TFLOP/s counting {section['flop_count']}, "
             + (f"{frac:.1%} of the card's dense bf16 peak of {peak / 1e12:.0f} TFLOP/s" if isinstance(frac, float)
                else "no peak known for this device") + f".  Trace: {section['trace']}.", "",
             "| kind | share of self time |", "|---|---|"]
    lines += [f"| {kind} | {share:.1%} |" for kind, share in
              sorted(section["kind_shares"].items(), key=lambda item: item[1], reverse=True)]
    lines += ["", f"| operator | kind | {self_time} per forward | share |", "|---|---|---|---|"]
    lines += [f"| `{op['name']}` | {op['kind']} | {op['self_ms_per_forward']:.3f} | {op['share']:.1%} |"
              for op in section["top_operators"]]
    return lines


def single_pass_lines(section: dict) -> list[str]:
    line = (f"The command decoded {section['decoded_frames']} frames of a {section['video_frames']}-frame video "
            f"({section['source']}): **{section['decode_passes']:.2f} decode passes** (goal "
            f"{section['goal_passes']}; `VideoReader.frames` called {section['reader_passes']} times), "
            f"the job {section['job_frames_per_s']:.1f} frames/s")
    if "decode_bound_frames_per_s" in section:
        line += (f"; one decode pass on its own runs {section['one_pass_frames_per_s']:.1f} frames/s, so decoding "
                 f"alone allows {section['decode_bound_frames_per_s']:.1f} frames/s")
    return [line + "."]


def scan_lines(section: dict) -> list[str]:
    v = section["video"]
    verdict = "meets" if section["meets_goal"] else "misses"
    decode = section["decode"]
    passes = f"{decode['decode_passes']:.2f}" if isinstance(decode, dict) else decode
    median = section["median_video_s"]
    lines = [f"{section['videos']} generated face videos ({section['videos_from']}), {v['width']}x{v['height']}, "
             f"{v['fps']:g} fps, {v['seconds']:g} s ({v['frames']} frames each); preset `{section['preset']}` with "
             f"random weights, `--workers {section['workers']}`, the command's defaults otherwise.", "",
             f"`istvt-explain scan` (loading the weights included): {section['scan_s']:.1f} s, "
             f"**{section['videos_per_hour']:.0f} videos/hour**, {section['frames_per_s']:.1f} frames/s, "
             f"{section['goal_ratio']:.2f}x the goal of {section['goal_videos_per_hour']:g} videos/hour "
             f"({verdict} it).  Median seconds per video (the records'): "
             f"{fmt(median) if isinstance(median, float) else median}; decode passes per video: {passes}; "
             f"{section['videos_failed']} failed; generating the videos took {section['generate_s']:.1f} s."]
    if "first_error" in section:
        lines.append(f"First error: {section['first_error']}")
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
    titles = {"forward": "1. Forward pass", "profile": "2. Profile of the forward pass",
              "explain": "3. Explanation methods against a forward pass", "e2e": "4. `istvt-explain` end to end",
              "single_pass": "5. Decode passes of `istvt-explain`", "scan": "6. `istvt-explain scan` throughput",
              "train": "7. Training (bf16)", "ddp": "8. DDP"}
    render = {"forward": forward_table, "profile": profile_lines, "explain": explain_table, "e2e": e2e_lines,
              "single_pass": single_pass_lines, "scan": scan_lines, "train": train_lines, "ddp": ddp_lines}
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
                        help="compiled cells (run last), profile and scan start only while the run can end "
                             "within S seconds (default 450; smoke 300)")
    parser.add_argument("--preset", help="model preset (default: paper; with --smoke: tiny)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch CPU threads (default: torch's; 1 with --smoke on the CPU)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), metavar="SECTION",
                        help=f"run these sections only ({', '.join(SECTIONS)})")
    parser.add_argument("--trace", action="store_true",
                        help="save the profile section's Chrome trace as OUT/profile_trace.json (chrome://tracing, "
                             "Perfetto)")
    parser.add_argument("--scan-workers", type=int, default=0, metavar="N",
                        help="the scan section's --workers (default 0, the command's; decode passes not "
                             "counted with workers)")
    parser.add_argument("--ddp-gloo", type=int, default=0, metavar="N",
                        help="run the DDP section with N gloo processes on the CPU (checks the code path)")
    return parser.parse_args(argv)


def section_guess(name: str, settings: Settings, results: dict[str, Any]) -> float:
    """Seconds a section is expected to take: it starts only if the run can still end within
    ``--time-limit``.  0 for forward, explain, e2e, train and ddp, which always run (as before)."""
    if name == "profile":
        return settings.profile_guess_s
    if name == "scan":
        return settings.scan_guess_s
    if name == "single_pass":  # from the e2e run at no cost, or a run of the command of its own
        return 0.0 if "decode" in results.get("e2e", {}) else settings.e2e_guess_s
    return 0.0


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
        "profile": lambda: bench_profile(settings, device, results.get("forward"),
                                         args.out / "profile_trace.json" if args.trace else None),
        "explain": lambda: bench_explain(settings, device),
        "e2e": lambda: bench_e2e(settings, device),
        "single_pass": lambda: bench_single_pass(settings, device, results.get("e2e")),
        "scan": lambda: bench_scan(settings, device, results.get("e2e"), args.scan_workers),
        "train": lambda: bench_train(settings, device),
        "ddp": lambda: bench_ddp(settings, device, results.get("train"), args.ddp_gloo),
    }
    def write(final: bool) -> None:
        """Both files after every section: a run cut off by a time limit still leaves what it measured."""
        results["meta"] = meta(device, settings, args, argv, final)
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out / "gpu.json", json.dumps(results, indent=2) + "\n")
        write_atomic(args.out / "gpu.md", markdown(results))

    deadline = _START + settings.time_limit_s
    for name in SECTIONS:
        if name in args.only:
            guess = section_guess(name, settings, results)
            if time.perf_counter() + guess > deadline:  # started, it would end after the time limit
                results[name] = {"status": f"skipped: the run's time limit of {settings.time_limit_s:.0f} s "
                                           f"(--time-limit; the section takes about {guess:.0f} s)"}
                log(f"{name}: {results[name]['status']}")
                continue
            with section_guard(results, name):
                results[name] = runners[name]()
            log(f"{name}: done")
            write(final=False)
    if "cells" in results["forward"]:  # the eager cells ran: now the compiled ones, in the time left
        with section_guard(results["forward"], "compiled"):
            bench_forward_compiled(results["forward"], settings, device, args.compile, deadline)
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
