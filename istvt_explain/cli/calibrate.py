"""`istvt-explain calibrate`: fit a probability temperature on a split and write a calibrated checkpoint.

    istvt-explain calibrate --config demo --weights runs/demo/best.safetensors \\
        --out runs/demo/calibrated.safetensors [--split val]

Prints the temperature and the expected calibration error before and after; writes the checkpoint
(the input's weights and metadata plus ``temperature``) and ``calibration.json`` beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .train import parse_overrides
from .weights import check_weights

HELP = "fit a probability temperature on a validation split; write a calibrated checkpoint and its ECE report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="a YAML file or preset naming the data (demo, ffpp_c23_paper, ...)")
    parser.add_argument("--weights", required=True, help="the istvt-explain checkpoint (.safetensors) to calibrate")
    parser.add_argument("--out", required=True, help="the calibrated checkpoint to write (.safetensors); "
                                                     "calibration.json goes beside it")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"),
                        help="the labelled split to fit on (default val; never fit on the test split you report)")
    parser.add_argument("--batch-size", type=int, help="clips per forward pass (default: the config's)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: the config's)")
    parser.add_argument("--bins", type=int, default=15, help="equal-width confidence bins of the ECE (default 15)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs (also --out == --weights)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    check_weights(args.weights)  # before torch: a crafted file is refused at once
    from ..errors import InputError
    from ..train import load_config
    from ..train.calibration import calibrate_checkpoint

    if args.batch_size is not None and args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.bins < 1:
        raise InputError(f"--bins must be >= 1, got {args.bins}")
    config = load_config(args.config, **parse_overrides(args.set))
    report = calibrate_checkpoint(config, args.weights, args.out, split=args.split, batch_size=args.batch_size,
                                  device=args.device, bins=args.bins, force=args.force,
                                  progress=not args.no_progress)
    print(report.summary())
    if report.skipped:
        print(f"skipped {report.skipped} unreadable clip(s)")
    print(f"checkpoint: {args.out}, report: {Path(args.out).parent / 'calibration.json'}")
    return 0
