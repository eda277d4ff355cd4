"""`istvt-explain sensitivity`: how the answer and the explanation change under everyday degradations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..analysis.perturbations import PERTURBATIONS
from .weights import check_weights

HELP = "perturb clips (JPEG, blur, noise, scale, brightness, contrast, frame drops/shuffles); CSV and curves"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="sensitivity", help="folder for sensitivity.csv, summary CSV and figure")
    parser.add_argument("--weights", help="an istvt-explain checkpoint (default: the bundled demo weights)")
    parser.add_argument("--device", help="torch device, e.g. cuda (default: cpu)")
    parser.add_argument("--config", default="demo", help="data configuration (YAML or preset name), as for evaluate")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--clips", type=int, default=4, help="clips studied, half real and half fake (default 4)")
    parser.add_argument("--method", default="relevance", help="explanation method whose stability is measured")
    parser.add_argument("--perturbations", nargs="+", choices=list(PERTURBATIONS), help="default: all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=4)


def run(args: argparse.Namespace) -> int:
    check_weights(args.weights)  # before torch: a crafted file is refused at once
    from ..analysis.clipsets import clips_from_dataset
    from ..analysis.common import load_analysis_model
    from ..analysis.paper import balanced_indices
    from ..analysis.sensitivity import run_sensitivity
    from ..attribution import available_methods
    from ..render.figures import sensitivity_figure
    from ..render.style import save_figure
    from ..train import load_config
    from ..train.data import build_dataset
    from .errors import UserError

    if args.clips < 1 or args.batch_size < 1:
        raise UserError("--clips and --batch-size must be >= 1")
    if args.method not in available_methods():
        raise UserError(f"unknown method {args.method!r}; choose from {', '.join(available_methods())}")
    model = load_analysis_model(args.weights, device=args.device)
    dataset = build_dataset(load_config(args.config), model.config, args.split)
    pool = clips_from_dataset(dataset, range(min(len(dataset), 4 * args.clips)))
    data = pool.subset(balanced_indices(pool.labels, args.clips))
    result = run_sensitivity(model, data.clips, labels=data.labels, clip_ids=data.ids,
                             perturbations=args.perturbations, method=args.method, seed=args.seed,
                             batch_size=args.batch_size, progress=lambda msg: print(msg, file=sys.stderr))
    out = Path(args.out)
    csv_path = result.to_csv(out / "sensitivity.csv")
    summary_path = result.summary_to_csv(out / "sensitivity_summary.csv")
    figure = save_figure(sensitivity_figure(result), out, "sensitivity")
    for row in result.summary():
        print(f"{row['perturbation']:15s} {row['strength']:>6g}: |dp| {row['mean_abs_change']:.3f}, "
              f"flips {row['decision_flips']}, spatial rho {row['spatial_correlation']:.2f}, "
              f"temporal rho {row['temporal_correlation']:.2f}")
    print(f"rows: {csv_path}; summary: {summary_path}; figure: {', '.join(map(str, figure))}")
    return 0
