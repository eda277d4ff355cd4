"""`istvt-explain figures --out figures/`: regenerate every paper figure (PNG and PDF) from the demo weights."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "regenerate the paper figures (ROC, heatmap grid, curves, judging, attention, sensitivity) as PNG and PDF"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="figures", help="output folder (default: figures)")
    parser.add_argument("--weights", help="an istvt-explain checkpoint (default: the bundled demo weights)")
    parser.add_argument("--device", help="torch device, e.g. cuda (default: cpu)")
    parser.add_argument("--clips", type=int, help="clips of the demo test split to score (default: the level's)")
    parser.add_argument("--level", default="paper", choices=("paper", "quick", "smoke"),
                        help="paper: the committed figures; quick / smoke: the same figures from less work")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..analysis.common import load_analysis_model
    from ..analysis.paper import FigureSettings, demo_test_clips, make_paper_figures
    from .errors import UserError

    settings = {"paper": FigureSettings, "quick": FigureSettings.quick, "smoke": FigureSettings.smoke}[args.level]()
    if args.clips is not None:
        if args.clips < 4:
            raise UserError(f"--clips must be at least 4 (real and fake clips are both needed), got {args.clips}")
        settings = replace(settings, clips=args.clips)
    settings = replace(settings, seed=args.seed)
    model = load_analysis_model(args.weights, device=args.device)
    data = demo_test_clips(model.config, settings.clips)
    results = make_paper_figures(model, data, Path(args.out), settings,
                                 progress=lambda msg: print(msg, file=sys.stderr))
    summary = results.summary()
    print(f"{summary['clips']} clips: AUC {summary['clip_auc']}, accuracy {summary['clip_accuracy']}, "
          f"{summary['false_positives']} false positives, {summary['false_negatives']} false negatives")
    for name, paths in results.files.items():
        print(f"{name}: {', '.join(str(p) for p in paths)}")
    return 0
