"""Training throughput (clips/s) of the model presets on this machine: forward, backward, step.

    python benchmarks/bench_train.py                                 # tiny (batch 8) and paper (batch 1)
    python benchmarks/bench_train.py --presets tiny --batch 16 --steps 5 --threads 2

Each preset runs the training loop's own step (``train.loop``: autocast as the config says, BCE on
the fake logit, gradient clipping, AdamW) on generated clips at the preset's full size (tiny: 160 px,
paper: 300 px, 6 frames).  One warm-up step, then the median of ``--steps`` timed steps.  Results go
to benchmarks/results/train_<device>.{json,md}.  The machines are shared: the load average is
recorded with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from istvt_explain.models import create_model
from istvt_explain.models.precision import autocast, resolve_precision
from istvt_explain.train import config_from_dict
from istvt_explain.train.loop import build_optimizer

RESULTS = Path(__file__).parent / "results"
DEFAULT_BATCH = {"tiny": 8, "small": 4, "paper": 1}


def make_step(net: torch.nn.Module, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              clips: torch.Tensor, labels: torch.Tensor, precision: str) -> Callable[[], None]:
    """One optimizer step as ``train.loop`` takes it (autocast to ``precision``, BCE on the fake logit,
    gradient clipping at 1, the optimizer).  ``net`` runs the forward: the model, or its DDP wrapper."""
    def step() -> None:
        with autocast(precision, clips.device):
            logits = net(clips)
        loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return step


def bench_preset(preset: str, batch: int, steps: int, device: torch.device, precision: str) -> dict:
    config = config_from_dict({"model": {"preset": preset}, "data": {"kind": "pseudofake_pictures"},
                               "optim": {"name": "adamw", "lr": 1e-4}, "precision": precision})
    torch.manual_seed(0)
    model = create_model(preset, device=device).train()
    optimizer = build_optimizer(config, model)
    concrete = resolve_precision(config.precision, device)
    c = model.config
    clips = torch.rand(batch, c.frames, 3, c.image_size, c.image_size, device=device) * 2 - 1
    labels = (torch.arange(batch, device=device) % 2).float()

    train_step = make_step(model, model, optimizer, clips, labels, concrete)

    def step() -> float:
        start = time.perf_counter()
        train_step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    step()  # warm-up: allocator, kernels
    times = [step() for _ in range(steps)]
    median = statistics.median(times)
    return {"preset": preset, "batch": batch, "frames": c.frames, "image_size": c.image_size,
            "precision": concrete, "steps": steps,
            "seconds_per_step_median": round(median, 3), "seconds_per_step_min": round(min(times), 3),
            "clips_per_s": round(batch / median, 3), "clips_per_s_best": round(batch / min(times), 3),
            "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    parser.add_argument("--batch", type=int, help="clips per step for every preset (default: tiny 8, small 4, paper 1)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    parser.add_argument("--out", help="results path without suffix (default benchmarks/results/train_<device>)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = os.getloadavg()
    rows = []
    for preset in args.presets:
        row = bench_preset(preset, args.batch or DEFAULT_BATCH.get(preset, 2), args.steps, device, args.precision)
        print(json.dumps(row), flush=True)
        rows.append(row)
    machine = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "python": platform.python_version(), "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
    out = Path(args.out) if args.out else RESULTS / f"train_{device.type}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "results": rows}, indent=2) + "\n")
    lines = [f"# Training throughput ({device.type})", "",
             f"torch {machine['torch']}, {machine['torch_threads']} thread(s) on {machine['cpu_count']} cores "
             f"(shared machine: load average {machine['load_average_before']} before, "
             f"{machine['load_average_after']} after). One step = forward + backward + clip + AdamW step "
             "on generated clips; median of the timed steps after one warm-up step.", "",
             "| preset | input | batch | precision | s/step (median) | clips/s (median) | clips/s (best) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['frames']} x {r['image_size']} px | {r['batch']} | {r['precision']} | "
                     f"{r['seconds_per_step_median']} | {r['clips_per_s']} | {r['clips_per_s_best']} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
