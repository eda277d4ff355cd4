"""Does LRP hold still, conserve, and cost little?  Stability, conservation and speed in one run.

For each model (the bundled demo weights on held-out face clips; the ``paper`` preset with random
weights on random clips) and each method (LRP with the ``cp`` and ``attnlrp`` rules, and ``relevance``
and ``rollout`` for comparison), on every clip:

* nudge: Pearson correlation of the token map with the map of the clip plus N(0, sigma^2) noise
  (sigma = 1e-4 on the normalised input, about 1/80 of a grey level);
* bf16: correlation of the map computed under bf16 autocast with the float32 map;
* conservation (LRP): the accounted relevance over the explained score (1 = nothing lost);
* time: interleaved with a plain forward pass, best of ``--repeats``, as a ratio to it (batch 1).

    python benchmarks/bench_lrp.py --out benchmarks/results            # about 10 minutes on 2 CPUs

Writes ``lrp.json`` and ``lrp.md``.  The goals (issue 22): correlation >= 0.99 under the nudge and
between bf16 and fp32, conservation within 1 %, LRP <= 2.5x a forward pass.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

import istvt_explain as ie
from istvt_explain.evaluate.explanations.data import pseudofake_judging_set

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_explain import paired  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)
from reporting import repo_command  # noqa: E402

METHODS = {"lrp": {"method": "lrp"}, "lrp-attnlrp": {"method": "lrp", "rule": "attnlrp"},
           "relevance": {"method": "relevance"}, "rollout": {"method": "rollout"}}
NUDGE = 1e-4


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) Pearson correlation of two batches of maps, clip by clip."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-300)


def measure(model: torch.nn.Module, clips: torch.Tensor, repeats: int, seed: int) -> dict[str, dict]:
    nudged = clips + NUDGE * torch.randn(clips.shape, generator=torch.Generator().manual_seed(seed))
    one = clips[:1]

    def forward() -> None:
        with torch.inference_mode():
            model(one)

    rows = {}
    for name, options in METHODS.items():
        fp32 = ie.explain(model, clips, precision="fp32", **options)
        nudge = correlation(fp32.spatial, ie.explain(model, nudged, precision="fp32", **options).spatial)
        bf16 = correlation(fp32.spatial, ie.explain(model, clips, precision="bf16", **options).spatial)
        forward_s, method_s, median = paired(forward, lambda o=options: ie.explain(model, one, precision="fp32", **o),
                                             repeats)
        row = {"nudge_min": float(nudge.min()), "nudge_mean": float(nudge.mean()),
               "bf16_min": float(bf16.min()), "bf16_mean": float(bf16.mean()),
               "forward_s": forward_s, "method_s": method_s, "ratio": method_s / forward_s,
               "median_pair_ratio": median}
        if "conservation" in fp32.extras:
            cons = fp32.extras["conservation"].double()
            row["conservation_worst"] = float(cons[(cons - 1).abs().argmax()])
            parts = fp32.extras["account_parts"]
            row["account_mean"] = dict(zip(parts, fp32.extras["account"].double().mean(0).tolist(), strict=True))
            row["top_token_share"] = float((fp32.spatial.flatten(1).abs().amax(1)
                                            / fp32.extras["explained_score"].abs()).mean())
        rows[name] = row
        print(f"  {name:12s} nudge min {row['nudge_min']:.6f}  bf16 min {row['bf16_min']:.6f}  "
              f"ratio {row['ratio']:.2f}x" + (f"  conservation {row['conservation_worst']:.6f}"
                                              if "conservation_worst" in row else ""), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="clips of the demo weights (the paper preset: a quarter)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    results: dict[str, object] = {
        "command": repo_command("benchmarks/bench_lrp.py", argv if argv is not None else sys.argv[1:]),
        "threads": args.threads, "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "load_average_before": os.getloadavg()[0], "nudge_sigma": NUDGE, "models": {},
    }
    demo = ie.load_demo_model()
    c = demo.config
    print(f"demo weights, {args.clips} held-out pseudo-fake clips", flush=True)
    clips = pseudofake_judging_set(args.clips, c.frames, c.image_size, seed=0).clips
    results["models"]["demo"] = measure(demo, clips, args.repeats, seed=1)
    paper = ie.create_model("paper")
    torch.manual_seed(0)
    c = paper.config
    count = max(1, args.clips // 4)
    print(f"paper preset, random weights, {count} random clips", flush=True)
    clips = torch.rand(count, c.frames, 3, c.image_size, c.image_size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    results["models"]["paper"] = measure(paper, clips, max(2, args.repeats // 2), seed=2)
    results["load_average_after"] = os.getloadavg()[0]
    results["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lrp.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "lrp.md").write_text(report(results))
    print(f"wrote {out / 'lrp.md'} in {results['seconds']:.0f} s")


def report(results: dict) -> str:
    lines = ["# LRP: stability, conservation and speed", "",
             f"Made by `{results['command']}` in {results['seconds']:.0f} s ({results['threads']} CPU threads, "
             f"torch {results['torch']}, load average {results['load_average_before']:.1f} before, "
             f"{results['load_average_after']:.1f} after).", "",
             "Goals: map correlation >= 0.99 under a N(0, 1e-4) nudge of the input and between bf16 and fp32; "
             "conservation within 1 %; LRP <= 2.5x a forward pass.", ""]
    for model, rows in results["models"].items():
        lines += [f"## {'bundled demo weights, held-out face clips' if model == 'demo' else 'paper preset, random weights'}",
                  "", "| method | nudge: min corr. | bf16: min corr. | conservation (worst clip) | time / forward |",
                  "|---|---|---|---|---|"]
        for name, r in rows.items():
            cons = f"{r['conservation_worst']:.6f}" if "conservation_worst" in r else "-"
            lines.append(f"| {name} | {r['nudge_min']:.6f} | {r['bf16_min']:.6f} | {cons} | {r['ratio']:.2f}x "
                         f"(median of pairs {r['median_pair_ratio']:.2f}x) |")
        lrp = rows["lrp"]
        lines += ["", "Where the explained score's relevance lands under LRP (`cp`), mean over clips: " + ", ".join(
            f"{k} {v:+.4g}" for k, v in lrp["account_mean"].items() if not k.startswith("bias:"))
                  + f"; all biases {sum(v for k, v in lrp['account_mean'].items() if k.startswith('bias:')):+.4g}. "
                  f"The largest token carries {lrp['top_token_share']:.3g} of the score on average.", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
