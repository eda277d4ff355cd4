"""`istvt-explain preprocess`: cache the face crops (and masks) of a whole data set."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.datasets import READERS
from ..data.datasets.ffpp import COMPRESSIONS as FFPP_COMPRESSIONS
from ..data.datasets.ffpp import MANIPULATIONS as FFPP_MANIPULATIONS
from ..data.detectors import CROP_MARGIN
from ..errors import InputError
from ..models.presets import PRESETS

HELP = """extract and cache the face crops of a data set for training and evaluation

Finished videos are skipped (an incomplete entry is built again), so an interrupted run resumes
where it stopped; videos that fail, including one whose worker process dies, are listed at the end
(and in OUT/failures.json) and retried by the next run.  Workers never outlive the run.
Exit status: 0 all videos cached, 1 some failed (the others are cached), 2 bad input or usage,
130 interrupted (Ctrl-C or SIGTERM)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("root", type=Path, help="the data set folder")
    parser.add_argument("--dataset", required=True, choices=sorted(READERS), help="the layout of ROOT")
    parser.add_argument("--out", type=Path, required=True, help="the cache folder (created; reused to resume)")
    parser.add_argument("--preset", default="paper", choices=PRESETS,
                        help="crop size and clip length from this model preset (default: paper, 300 px)")
    parser.add_argument("--image-size", type=int, help="crop size in pixels (overrides the preset)")
    parser.add_argument("--frames", type=int, help="frames per clip (overrides the preset)")
    parser.add_argument("--detector", default="mtcnn", choices=["mtcnn", "haar", "auto"])
    parser.add_argument("--min-face", type=int, default=20, metavar="PX",
                        help="smallest face to look for, in pixels of the frame shrunk to 640 px "
                             "(default 20; 40 detects about twice as fast)")
    parser.add_argument("--detect-every", type=int, default=1, metavar="K",
                        help="run the detector on every K-th frame, track in between (default 1)")
    parser.add_argument("--max-frames", type=int, help="use only the first N frames of each video")
    parser.add_argument("--margin", type=float, default=CROP_MARGIN, help="crop side / face box side")
    parser.add_argument("--compression", default="c23", choices=FFPP_COMPRESSIONS, help="FaceForensics++ quality")
    parser.add_argument("--manipulations", nargs="+", choices=FFPP_MANIPULATIONS, metavar="M",
                        help="FaceForensics++ methods to include (default: all present)")
    parser.add_argument("--splits-dir", type=Path, help="FaceForensics++ folder of train/val/test.json")
    parser.add_argument("--split", nargs="+", help="process only these splits (e.g. train val)")
    parser.add_argument("--limit", type=int, help="process at most N videos (a quick trial)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _check(args: argparse.Namespace) -> None:
    for name in ("image_size", "frames", "min_face", "detect_every", "max_frames", "limit", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.margin < 1.0:
        raise InputError(f"--margin must be at least 1.0, got {args.margin}")
    if args.dataset != "ffpp" and (args.manipulations or args.splits_dir):
        raise InputError("--manipulations and --splits-dir apply to --dataset ffpp only")


def run(args: argparse.Namespace) -> int:
    from ..data.cache import CacheSettings, open_cache
    from ..data.datasets import read_dataset
    from ..data.preprocess import preprocess
    from ..models import preset_config

    _check(args)
    config = preset_config(args.preset)
    settings = CacheSettings(image_size=args.image_size or config.image_size, frames=args.frames or config.frames,
                             detector=args.detector, min_face=args.min_face, detect_every=args.detect_every,
                             margin=args.margin, max_frames=args.max_frames)
    options = {}
    if args.dataset == "ffpp":
        options = {"compression": args.compression, "manipulations": args.manipulations,
                   "splits_dir": args.splits_dir}
    entries = read_dataset(args.dataset, args.root, **options)
    if args.split:
        entries = [e for e in entries if str(e.split) in set(args.split)]
    if args.limit:
        entries = entries[:args.limit]
    if not entries:
        raise InputError(f"{args.root}: no videos to process")
    open_cache(args.out, settings)  # a mismatched or unwritable cache fails before any work
    fakes = sum(e.label for e in entries)
    print(f"{args.root}: {len(entries)} videos ({len(entries) - fakes} real, {fakes} fake) -> {args.out} "
          f"({settings.image_size} px crops, {settings.detector} detector, {args.workers} worker(s))", flush=True)
    report = preprocess(entries, args.out, settings, workers=args.workers, progress=not args.no_progress)
    print(report.summary(), flush=True)
    return 1 if report.failed else 0
