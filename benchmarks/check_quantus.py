"""Our judging metrics beside Quantus's (the reference library for judging explanations), on the same inputs.

The project does not depend on Quantus (it requires the full ``opencv-python``, and it works on
image-shaped arrays), so this check runs with Quantus installed apart, without its dependencies:

    python -m pip install --no-deps --target /tmp/quantus quantus==0.6.0 cachetools
    PYTHONPATH=/tmp/quantus python benchmarks/check_quantus.py --out benchmarks/results

Compared: the Gini sparseness of random maps (``complexity.gini`` against ``quantus.Sparseness``) and ROAD's
noisy linear imputation without its noise (``imputation.linear_imputation`` against
``quantus.functions.perturb_func.noisy_linear_imputation``) on a smooth picture with token-shaped holes.
Writes ``quantus_reference.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from istvt_explain.evaluate.explanations.complexity import gini
from istvt_explain.evaluate.explanations.imputation import linear_imputation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    try:
        import quantus
        from quantus.functions.perturb_func import noisy_linear_imputation
    except ImportError:
        print("quantus is not importable: install it apart (see the module doc)", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    maps = np.abs(rng.normal(size=(16, 6 * 10 * 10))) ** rng.uniform(0.5, 4, size=(16, 1))  # sparse to even
    ours = np.array([gini(m) for m in maps])
    theirs = quantus.Sparseness(disable_warnings=True).evaluate_batch(x_batch=maps.copy(), a_batch=maps.copy())
    gini_diff = float(np.abs(ours - np.asarray(theirs)).max())

    yy, xx = np.mgrid[0:160, 0:160] / 160
    picture = np.stack([np.sin(5 * yy + c) * np.cos(4 * xx - c) + 0.3 * np.sin(17 * xx * yy) for c in range(3)])
    rows = []
    for share in (0.2, 0.5, 0.8):
        holes = np.kron(rng.random((10, 10)) < share, np.ones((16, 16))) > 0  # whole 16 px tokens
        reference = noisy_linear_imputation(picture.copy(), np.flatnonzero(holes.reshape(-1)), noise=0.0)
        frame, unknown = torch.from_numpy(picture)[None].float(), torch.from_numpy(holes)[None, None]
        half = linear_imputation(frame, unknown, noise=0.0)[0].double().numpy()
        full = linear_imputation(frame, unknown, noise=0.0, refine=48)[0].double().numpy()
        rows.append((share, float(np.abs(half - reference)[:, holes].mean()),
                     float(np.abs(full - reference)[:, holes].mean()),
                     float(np.abs(picture - reference)[:, holes].mean())))
    lines = ["# Judging metrics beside Quantus", "",
             f"Made by `PYTHONPATH=... python benchmarks/check_quantus.py` with quantus {quantus.__version__} "
             "(installed apart, without its dependencies).", "",
             f"**Sparseness** (Gini index of 16 random maps of 600 tokens, from nearly even to very sparse): "
             f"largest difference from `quantus.Sparseness` {gini_diff:.2e} (Quantus adds 1e-7 to every value).",
             "", "**ROAD imputation** without noise, a smooth 160 x 160 picture (values in [-1.3, 1.3]) with "
             "random 16-pixel tokens removed: mean absolute difference inside the holes from Quantus's direct "
             "sparse solve of the same equations.", "",
             "| tokens removed | ours, half resolution (the judge's default) | ours, full resolution | "
             "the removed picture itself (for scale) |", "|---|---|---|---|"]
    lines += [f"| {s:.0%} | {a:.4f} | {b:.5f} | {c:.3f} |" for s, a, b, c in rows]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "quantus_reference.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if gini_diff < 1e-4 and all(a < 0.05 for _, a, _, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
