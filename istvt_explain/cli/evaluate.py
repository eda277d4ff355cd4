"""`istvt-explain evaluate`: score a checkpoint on a data split; JSON report, ROC figure, per-clip scores.

Also runs under `torchrun --no-python istvt-explain evaluate ...`: each process scores a shard.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .train import parse_overrides
from .weights import check_weights

HELP = "evaluate a checkpoint: clip/video ACC, ROC AUC, AP, EER, per manipulation; JSON report and ROC figure"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="a YAML file or preset naming the data (demo, ffpp_c23_paper, ...)")
    parser.add_argument("--weights", required=True, help="an istvt-explain checkpoint (.safetensors)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--out", default="eval", help="folder for report.json, roc.png and scores.csv")
    parser.add_argument("--batch-size", type=int, help="clips per forward pass (default: the config's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 1, after writing the report) when any video or clip was skipped as unreadable")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    check_weights(args.weights)  # before torch: a crafted file is refused at once
    from ..errors import InputError
    from ..train import load_config
    from ..train.evaluation import evaluate_checkpoint

    if args.batch_size is not None and args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    config = load_config(args.config, **parse_overrides(args.set))
    result = evaluate_checkpoint(config, args.weights, Path(args.out), split=args.split,
                                 batch_size=args.batch_size, progress=not args.no_progress)
    if result is not None:
        for level in ("clip", "video"):
            m = result[level]
            print(f"{level:5s}: n={m['n']} ACC {m['acc']:.4f}  AUC {m.get('auc', float('nan')):.4f}  "
                  f"AP {m.get('ap', float('nan')):.4f}  EER {m.get('eer', float('nan')):.4f}")
        for name, levels in result["per_manipulation"].items():
            print(f"  {name}: clip AUC {levels['clip']['auc']:.4f}, video AUC {levels['video']['auc']:.4f}")
        _print_skipped(result)
        print(f"report: {Path(args.out) / 'report.json'}, figure: {Path(args.out) / 'roc.png'}")
        if args.strict and (result["skipped"] or result["skipped_clips"]):
            first = result["skipped"][0] if result["skipped"] else {"video": "?", "reason": "unreadable clip"}
            print(f"istvt-explain: error: --strict: {len(result['skipped'])} video(s) skipped, first {first['video']}: "
                  f"{first['reason']}", file=sys.stderr)
            return 1
    return 0


def _print_skipped(result: dict, limit: int = 10) -> None:
    """Name what was left out: the evaluation is over the rest, and the reader must know."""
    skipped = result["skipped"]
    if not skipped and not result["skipped_clips"]:
        return
    print(f"skipped {len(skipped)} video(s) ({result['skipped_clips']} clip(s) unreadable at load time):")
    for item in skipped[:limit]:
        print(f"  {item['video']}: {item['reason']}")
    if len(skipped) > limit:
        print(f"  ... and {len(skipped) - limit} more (see report.json)")
