"""Speed of the explanation methods against a plain forward pass (CPU, one run).

Measures, on one preset (default "small": the paper's 300 px crops and 7 x 362 token grid, fewer
and narrower blocks), the median of ``--repeats`` timings of: a plain forward (fused attention,
inference mode), rollout, gradient-weighted relevance, LRP (both rules) and Integrated Gradients (``--ig-steps``);
each as a ratio to the forward.  Separately it times class-row propagation alone at the *paper* grid
(7 x 362 tokens, 12 blocks, random maps): the vector form used by the methods against the dense
(T+1)(N+1) square product (``attribution._reference``).

    python benchmarks/bench_explain.py --preset small --out benchmarks/results

Writes ``explain_<preset>.json`` and ``explain_<preset>.md``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

import istvt_explain as ie
from istvt_explain.attribution import explain
from istvt_explain.attribution._reference import dense_row
from istvt_explain.attribution.propagation import class_start, propagate_row

METHODS: dict[str, dict] = {  # explain() options per timed entry
    "rollout": {"method": "rollout"}, "relevance": {"method": "relevance"}, "lrp": {"method": "lrp"},
    "lrp-attnlrp": {"method": "lrp", "rule": "attnlrp"},
    "integrated-gradients": {"method": "integrated-gradients"},
}


def _once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Best wall time of ``repeats`` calls after ``warmup`` calls (the least disturbed by other load)."""
    for _ in range(warmup):
        fn()
    return min(_once(fn) for _ in range(repeats))


def paired(base: Callable[[], object], method: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Interleaved timings of a forward and a method: (best forward, best method, median of the ratios).

    On a CPU shared with other jobs the load drifts; timing the two side by
    side and reporting the best of each (and the median per-pair ratio as a
    check) keeps the ratio meaningful.
    """
    base()
    method()
    pairs = [(_once(base), _once(method)) for _ in range(repeats)]
    forward_s, method_s = min(p[0] for p in pairs), min(p[1] for p in pairs)
    return forward_s, method_s, statistics.median(m / f for f, m in pairs)


def paper_grid_blocks(depth: int = 12, frames: int = 6, tokens: int = 361, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    rows, cols = frames + 1, tokens + 1
    blocks = []
    for _ in range(depth):
        t = torch.rand(1, cols, rows, rows, generator=gen)
        s = torch.rand(1, rows, cols, cols, generator=gen)
        blocks.append((t / t.sum(-1, keepdim=True), s / s.sum(-1, keepdim=True)))
    return blocks, rows, cols


def bench_propagation(repeats: int) -> dict[str, float]:
    blocks, rows, cols = paper_grid_blocks()
    start = class_start(1, rows, cols)
    # Millisecond work: with 2 OpenMP threads on a loaded CPU each tiny op can wait ~10 ms at a
    # barrier (calls took 2 ms or 140 ms at random), so the vector form runs on ONE thread, and the
    # dense product keeps every thread (a conservative comparison).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        vector = timed(lambda: propagate_row(start, blocks, keep=0.5, mix=0.5), max(20, repeats), warmup=5)
    finally:
        torch.set_num_threads(threads)
    dense = timed(lambda: dense_row(start, blocks, keep=0.5, mix=0.5), 1)
    err = (propagate_row(start, blocks, keep=0.5, mix=0.5) - dense_row(start, blocks, keep=0.5, mix=0.5)).abs().max()
    return {"grid": f"{rows} x {cols}", "blocks": len(blocks), "vector_s": vector, "vector_threads": 1,
            "dense_s": dense, "dense_threads": threads,
            "speedup": dense / vector, "max_abs_difference": float(err)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ig-steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS), help="what to time")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = ie.create_model(args.preset)
    c = model.config
    clips = torch.rand(1, c.frames, 3, c.image_size, c.image_size, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def forward() -> None:
        with torch.inference_mode():
            model(clips)

    results: dict[str, object] = {
        "preset": c.name, "config": c.to_dict(), "batch": 1, "threads": args.threads, "repeats": args.repeats,
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "load_average_before": os.getloadavg()[0],
    }
    methods = {name: METHODS[name] for name in args.methods}
    timings: dict[str, dict[str, float]] = {}
    for name, options in methods.items():
        repeats = 1 if name == "integrated-gradients" else args.repeats
        if name == "integrated-gradients":
            run = functools.partial(explain, model, clips, method=name, n_steps=args.ig_steps, internal_batch_size=10)
        else:
            run = functools.partial(explain, model, clips, **options)
        if repeats == 1:  # too slow to repeat: one call, between two forwards
            base = timed(forward, args.repeats)
            method_s = _once(run)
            base = min(base, timed(forward, args.repeats))
            median_ratio = method_s / base
        else:
            base, method_s, median_ratio = paired(forward, run, repeats)
        timings[name] = {"forward_s": base, "method_s": method_s, "ratio": method_s / base,
                         "median_pair_ratio": median_ratio}
        print(f"{name:22s} {method_s:8.3f} s   forward {base:6.3f} s   ratio {method_s / base:6.2f} "
              f"(median of pairs {median_ratio:.2f})", flush=True)
    results["methods"] = timings
    results["load_average_after"] = os.getloadavg()[0]
    results["note"] = (f"load average {results['load_average_before']:.1f} before and "
                       f"{results['load_average_after']:.1f} after, on {os.cpu_count()} cores: each method is "
                       "timed interleaved with a forward; times are the best of the repeats")
    results["propagation_paper_grid"] = prop = bench_propagation(args.repeats)
    print(f"propagation at {prop['grid']} x {prop['blocks']} blocks: vector {prop['vector_s'] * 1000:.1f} ms, "
          f"dense {prop['dense_s']:.2f} s, speed-up {prop['speedup']:.0f}x")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"explain_{c.name}.json").write_text(json.dumps(results, indent=2))
    lines = [f"# Explanation speed, preset `{c.name}` (batch 1, {args.threads} CPU threads, torch {torch.__version__})",
             "", "| method | method s | forward s | ratio to forward | median ratio of pairs |", "|---|---|---|---|---|"]
    for name, t in timings.items():
        label = f"{name} ({args.ig_steps} steps)" if name == "integrated-gradients" else name
        lines.append(f"| {label} | {t['method_s']:.3f} | {t['forward_s']:.3f} | {t['ratio']:.2f}x "
                     f"| {t['median_pair_ratio']:.2f}x |")
    lines += ["", f"Class-row propagation alone at the paper grid ({prop['grid']}, {prop['blocks']} blocks, random "
              f"maps): vector {prop['vector_s'] * 1000:.2f} ms (1 thread), dense product {prop['dense_s']:.2f} s "
              f"({prop['dense_threads']} threads), "
              f"**{prop['speedup']:.0f}x** (max |difference| {prop['max_abs_difference']:.1e}).", "",
              results["note"] + "."]
    (out / f"explain_{c.name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
