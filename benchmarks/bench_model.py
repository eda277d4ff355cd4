"""Forward-pass speed and peak memory of each preset, fused vs explicit attention, in one run.

    python benchmarks/bench_model.py                 # CPU, all presets
    python benchmarks/bench_model.py --device cuda --dtype bfloat16

Each (preset, path) runs in a fresh child process so that peak memory is its own.
Results go to benchmarks/results/model_<device>.{json,md}.  Quote ratios: the
machines are shared and absolute times drift.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(preset: str, fused: bool, batch: int, device: str, dtype: str, repeats: int,
             threads: int, queue: mp.Queue) -> None:
    torch.set_num_threads(threads)
    import istvt_explain as ie

    base_rss = _rss_mib()
    model = ie.create_model(preset, device=device).to(dtype=getattr(torch, dtype))
    for _, _, module in model.attention_modules():
        module.fused_attn = fused
    c = model.config
    clips = torch.rand(batch, c.frames, 3, c.image_size, c.image_size, device=device,
                       dtype=getattr(torch, dtype)) * 2 - 1
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        model(clips)  # warm-up
        sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(clips)
            sync()
            times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2]
    peak = (torch.cuda.max_memory_allocated() / 2**20) if device == "cuda" else _rss_mib() - base_rss
    queue.put({"preset": preset, "attention": "fused" if fused else "explicit", "batch": batch,
               "seconds_per_batch": median, "clips_per_s": batch / median, "peak_mib": peak,
               "parameters": sum(p.numel() for p in model.parameters())})


def run_one(**kwargs) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, kwargs={**kwargs, "queue": queue})
    proc.start()
    result = queue.get()
    proc.join()
    return result


def transformer_tflop(preset: str) -> float:
    """Multiply-adds x 2 of the transformer part for one clip (attention included)."""
    import istvt_explain as ie

    c = ie.models.preset_config(preset)
    rows, cols, d, inner = c.frames + 1, c.tokens_per_frame, c.embed_dim, c.inner_dim
    tokens = rows * cols
    per_block = tokens * (8 * d * inner + 2 * d * c.mlp_dim)  # qk+v, qkv, two outs; MLP
    per_block += cols * rows * rows * inner * 2 + rows * cols * cols * inner * 2  # QK^T and AV
    return 2 * c.depth * per_block / 1e12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "paper"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for preset in args.presets:
        for fused in (True, False):
            result = run_one(preset=preset, fused=fused, batch=args.batch, device=args.device,
                             dtype=args.dtype, repeats=args.repeats, threads=args.threads)
            result["transformer_tflop_per_clip"] = transformer_tflop(preset)
            rows.append(result)
            print(f"{preset:6s} {result['attention']:8s} {result['clips_per_s']:8.2f} clips/s "
                  f"{result['peak_mib']:8.0f} MiB")
    for row in rows:
        fused = next(r for r in rows if r["preset"] == row["preset"] and r["attention"] == "fused")
        row["time_vs_fused"] = row["seconds_per_batch"] / fused["seconds_per_batch"]
        row["time_vs_tiny_fused"] = row["seconds_per_batch"] / rows[0]["seconds_per_batch"]
    meta = {"device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
            "cpu": platform.processor() or platform.machine(), "threads": args.threads,
            "dtype": args.dtype, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"model_{args.device}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [f"# Forward pass, batch {args.batch}, {meta['device']}, {args.threads} threads, {args.dtype}",
             "", "| preset | attention | clips/s | s/clip | peak MiB | time vs fused | TFLOP/clip (transformer) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['attention']} | {r['clips_per_s']:.2f} | "
                     f"{r['seconds_per_batch'] / r['batch']:.3f} | {r['peak_mib']:.0f} | "
                     f"{r['time_vs_fused']:.2f}x | {r['transformer_tflop_per_clip']:.3f} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
