"""`istvt-explain hard-samples`: the clips the model gets wrong or is unsure of, explained, as a gallery."""

from __future__ import annotations

import argparse
from pathlib import Path

from .weights import check_weights

HELP = "rank the clips of an evaluation set by loss and by closeness to the threshold; explain them in a gallery"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="hard_samples", help="folder for gallery.png, index.html, hard_samples.csv")
    parser.add_argument("--weights", help="an istvt-explain checkpoint (default: the bundled demo weights)")
    parser.add_argument("--device", help="torch device, e.g. cuda (default: cpu)")
    parser.add_argument("--config", default="demo", help="data configuration (YAML or preset name), as for evaluate")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--scores", help="reuse an evaluation run: its folder or scores.csv (same config and split)")
    parser.add_argument("--max-clips", type=int, help="look at the first N clips of the split only")
    parser.add_argument("--methods", nargs="+", default=["relevance", "rollout"], help="explanation methods")
    parser.add_argument("--top", type=int, default=8, help="clips kept from each ranking (default 8)")
    parser.add_argument("--limit", type=int, default=12, help="clips explained and shown, at most (default 12)")
    parser.add_argument("--threshold", type=float, default=0.5, help="fake probability that counts as fake")
    parser.add_argument("--batch-size", type=int, default=8)


def run(args: argparse.Namespace) -> int:
    check_weights(args.weights)  # before torch: a crafted file is refused at once
    from ..analysis.common import load_analysis_model
    from ..analysis.gallery import write_gallery
    from ..analysis.hard_samples import (
        clips_from_dataset_items,
        explain_hard_samples,
        rank_hard_samples,
        score_dataset_clips,
    )
    from ..analysis.scores_io import load_evaluation
    from ..attribution import available_methods
    from ..train import load_config
    from ..train.data import build_dataset
    from .errors import UserError

    for name, value, low in (("--top", args.top, 1), ("--limit", args.limit, 1), ("--batch-size", args.batch_size, 1)):
        if value < low:
            raise UserError(f"{name} must be >= {low}, got {value}")
    if not 0 < args.threshold < 1:
        raise UserError(f"--threshold must lie between 0 and 1, got {args.threshold}")
    unknown = [m for m in args.methods if m not in available_methods()]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(available_methods())}")

    model = load_analysis_model(args.weights, device=args.device)
    dataset = build_dataset(load_config(args.config), model.config, args.split)
    count = len(dataset) if args.max_clips is None else min(args.max_clips, len(dataset))
    if args.scores:
        scores = load_evaluation(args.scores)
        if len(scores) != len(dataset):
            raise UserError(f"{args.scores}: {len(scores)} clip scores for {len(dataset)} clips in the "
                            f"{args.split} split of {args.config}: not the same evaluation (or clips were skipped)")
        scores = scores[:count]
    else:
        scores = score_dataset_clips(model, dataset, range(count), batch_size=args.batch_size)
    hard = rank_hard_samples(scores, threshold=args.threshold, top=args.top)
    samples = explain_hard_samples(model, hard, clips_from_dataset_items(dataset), methods=args.methods,
                                   limit=args.limit, batch_size=min(args.batch_size, 4))
    files = write_gallery(samples, hard, Path(args.out), title=f"Hard samples: {args.config} {args.split}")
    s = hard.summary()
    print(f"{s['clips']} clips: {s['false_positives']} false positives, {s['false_negatives']} false negatives; "
          f"{len(samples)} explained")
    for sample in samples[:5]:
        sc = sample.score
        print(f"  {sc.id}: {'fake' if sc.label else 'real'}, p={sc.probability:.3f}, loss {sc.loss:.3f} "
              f"({', '.join(sample.reasons)})")
    print(f"gallery: {files.html}, {files.grid_png}; table: {files.csv}")
    return 0
