"""Our relevance rules beside LXT's (AttnLRP by its authors), on the same inputs.

The project does not depend on LXT: its package requires transformers, accelerate, bitsandbytes,
open_clip_torch and zennit, and its patches target Hugging Face model classes, while the rules it applies
(``lxt.efficient.rules``) are a few lines each.  So this check runs with LXT installed apart:

    python -m pip install --no-deps --target /tmp/lxt lxt==2.1
    PYTHONPATH=/tmp/lxt python benchmarks/check_lxt.py --out benchmarks/results

Compared, as gradient x input with the same seed relevance: GELU's identity rule
(``identity_rule_implicit``), LayerNorm with its scale held constant (``patches.layer_norm_forward``),
conservative attention (queries and keys detached, ``cp_multi_head_attention_forward``'s rule) and
AttnLRP's uniform rule on the attention products (``divide_gradient``).  Writes ``lxt_reference.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from istvt_explain.models.layers import GELU, LayerNorm, SpatialAttention


def _lxt_modules():
    """``lxt.efficient.rules`` and ``.patches`` alone: the package's own ``__init__`` imports its Hugging Face
    patches, and with them transformers, which this check does without."""
    import importlib.util
    import types

    spec = importlib.util.find_spec("lxt")
    if spec is None or spec.origin is None:
        raise ImportError("lxt")
    folder = Path(spec.origin).parent / "efficient"
    for name in ("lxt", "lxt.efficient"):
        sys.modules.setdefault(name, types.ModuleType(name))
    loaded = []
    for name in ("rules", "patches"):
        module_spec = importlib.util.spec_from_file_location(f"lxt.efficient.{name}", folder / f"{name}.py")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[f"lxt.efficient.{name}"] = module
        module_spec.loader.exec_module(module)
        loaded.append(module)
    return loaded


def relevance(fn, x: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    leaf = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(leaf), leaf, grad_outputs=seed)
    return leaf.detach() * grad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    try:
        rules, patches = _lxt_modules()
    except ImportError:
        print("lxt is not importable: install it apart (see the module doc)", file=sys.stderr)
        return 2
    layer_norm_forward = patches.layer_norm_forward
    divide_gradient, identity_rule_implicit = rules.divide_gradient, rules.identity_rule_implicit
    stop_gradient = rules.stop_gradient
    torch.manual_seed(0)
    x, seed = torch.randn(4, 10, 16, dtype=torch.float64), torch.randn(4, 10, 16, dtype=torch.float64)
    results = {}

    ours = GELU()
    ours.lrp = "cp"
    results["GELU, identity rule"] = (relevance(ours, x, seed),
                                      relevance(lambda v: identity_rule_implicit(F.gelu, v), x, seed))

    norm = LayerNorm(16, dtype=torch.float64)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    norm.lrp = "cp"
    results["LayerNorm, constant scale"] = (relevance(norm, x, seed),
                                            relevance(lambda v: layer_norm_forward(norm, v), x, seed))

    attention = SpatialAttention(16, heads=2, dim_head=8).double()
    grid = x[None]  # (1, rows, tokens, dim)

    def theirs(rule):
        def run(v):
            seq = v.reshape(-1, v.shape[-2], v.shape[-1])
            q, k, value = attention.to_qkv(seq).chunk(3, dim=-1)
            if rule == "cp":
                q, k = stop_gradient(q), stop_gradient(k)
            else:
                q, k, value = divide_gradient(q, 4), divide_gradient(k, 4), divide_gradient(value, 2)
            split = lambda t: t.view(t.shape[0], t.shape[1], 2, 8).transpose(1, 2)  # noqa: E731
            out = F.scaled_dot_product_attention(split(q), split(k), split(value), scale=attention.scale)
            return attention.to_out(out.transpose(1, 2).reshape(seq.shape[0], seq.shape[1], 16)).view(v.shape)
        return run

    for rule, label in (("cp", "attention, conservative (CP-LRP)"), ("attnlrp", "attention, AttnLRP uniform rule")):
        attention.lrp = rule
        results[label] = (relevance(attention, grid, seed[None]), relevance(theirs(rule), grid, seed[None]))
    attention.lrp = None

    lines = ["# Relevance rules beside LXT", "",
             "Made by `PYTHONPATH=... python benchmarks/check_lxt.py` with lxt 2.1 (installed apart, without its "
             "dependencies), float64: gradient x input of each rule for the same input and seed relevance.", "",
             "| rule | largest difference from LXT | largest relevance |", "|---|---|---|"]
    worst = 0.0
    for label, (a, b) in results.items():
        diff = float((a - b).abs().max())
        worst = max(worst, diff)
        lines.append(f"| {label} | {diff:.1e} | {float(b.abs().max()):.2f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lxt_reference.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if worst < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
