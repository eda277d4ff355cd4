"""`istvt-explain figures --out figures/`: regenerate every paper figure (PNG and PDF) from the demo weights."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .weights import check_weights

HELP = "regenerate the paper figures (ROC, heatmap grid, curves, judging, attention, sensitivity) as PNG and PDF"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="figures", help="output folder (default: figures)")
    parser.add_argument("--weights", help="an istvt-explain checkpoint (default: the bundled demo weights)")
    parser.add_argument("--device", help="torch device, e.g. cuda (default: cpu)")
    parser.add_argument("--clips", type=int, help="clips of the demo test split to score (default: the level's)")
    parser.add_argument("--level", default="paper", choices=("paper", "quick", "smoke"),
                        help="paper: the committed figures; quick / smoke: the same figures from less work")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the cached results of earlier runs with the same weights, settings and clips "
                             "(each reused stage is named); without it every stage is computed again")
    parser.add_argument("--cache", metavar="DIR",
                        help="where each stage's results are cached (default: OUT/.cache)")


def run(args: argparse.Namespace) -> int:
    """The figures; SIGTERM stops them as Ctrl-C does (the cache entry being written removes its
    temporary, one line, exit 130)."""
    from ..data._files import sigterm_as_interrupt

    with sigterm_as_interrupt():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    check_weights(args.weights)  # before torch: a crafted file is refused at once
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
    start = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {msg}", file=sys.stderr, flush=True)

    say("loading the model and the demo test clips")
    model = load_analysis_model(args.weights, device=args.device)
    data = demo_test_clips(model.config, settings.clips)
    out = Path(args.out)
    results = make_paper_figures(model, data, out, settings, progress=say,
                                 cache_dir=Path(args.cache) if args.cache else out / ".cache", reuse=args.reuse)
    say(f"done; reused from the cache: {', '.join(results.reused)}" if results.reused
        else "done; every stage computed (rerun with --reuse to redraw from the cache)")
    summary = results.summary()
    print(f"{summary['clips']} clips: AUC {summary['clip_auc']}, accuracy {summary['clip_accuracy']}, "
          f"{summary['false_positives']} false positives, {summary['false_negatives']} false negatives")
    for name, paths in results.files.items():
        print(f"{name}: {', '.join(str(p) for p in paths)}")
    return 0
