"""`istvt-explain scan INPUT... --out RESULTS/`: triage a folder of suspect videos, or a data set.

Every video of the given folders (recursive) and files gets a JSON report and a thumbnail; the
table ``results.csv`` and the page ``index.html`` sum them up, most suspicious first.  A file that
cannot be read gets an error row and the scan goes on.  Rerunning the same command skips the
videos already done, so an interrupted scan resumes.  The loop itself is ``istvt_explain.pipeline.scan``.

Under ``torchrun --nproc_per_node=N --no-python istvt-explain scan ...`` each process (rank) takes
every N-th video on its own device (``cuda:LOCAL_RANK`` when there are GPUs), and rank 0 writes the
table and the index once all are done: the same path for several GPUs or several machines.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from .errors import UserError
from .explain_video import (
    add_face_arguments,
    add_model_arguments,
    add_verdict_arguments,
    check_model_and_options,
    load_weights,
)

HELP = "explain every video of folders and files: one JSON each, results.csv, index.html; resumable"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "istvt-explain scan INPUT [INPUT ...] --out RESULTS/ [options]"
    parser.epilog = ("Several processes, GPUs or machines: torchrun --nproc_per_node=N --no-python istvt-explain "
                     "scan ... (each rank takes every N-th video; rank 0 writes the table). See docs/cli.md.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, and folders searched recursively")
    parser.add_argument("-o", "--out", required=True, metavar="RESULTS",
                        help="the results folder (created; a rerun into it skips the videos already done)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="worker processes that decode the next videos and find their faces while the "
                             "model runs (default 0: all in this process); worth it where cores are free, e.g. "
                             "with the model on a GPU")
    parser.add_argument("--retry-errors", action="store_true",
                        help="try again the videos that failed in an earlier run (default: keep their error)")
    add_model_arguments(parser)
    add_face_arguments(parser, face_all=False)
    add_verdict_arguments(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, notice or summary")


def run(args: argparse.Namespace) -> int:
    """The scan; SIGTERM stops it as Ctrl-C does (temporaries removed, one line, exit 130)."""
    from ..data._files import sigterm_as_interrupt

    begun = time.time()  # before any other rank can write: older temporaries are an earlier run's
    with sigterm_as_interrupt():
        return _run(args, begun)


def _run(args: argparse.Namespace, begun: float) -> int:
    from ..pipeline.scan import ResultsFolder, find_videos

    options = check_model_and_options(args)
    if args.workers < 0:
        raise UserError(f"--workers must be >= 0, got {args.workers}")
    folder = ResultsFolder(args.out)
    folder.check()
    videos = find_videos(args.inputs)  # a missing input: exit 2 here, before the model loads
    if not videos:
        raise UserError(f"no video found in {', '.join(args.inputs)}")
    rank, world, local_rank = (int(os.environ.get(k, d)) for k, d in (("RANK", 0), ("WORLD_SIZE", 1),
                                                                        ("LOCAL_RANK", 0)))
    mine = videos[rank::world]
    todo = sum(not folder.done(v, args.retry_errors) for v in mine)

    from ..pipeline.scan import scan_videos  # heavy from here on: torch, the model

    started = time.perf_counter()
    barrier = _join_ranks() if world > 1 else None
    args.quiet = args.quiet or rank != 0  # one notice, progress bar and summary: rank 0's
    model = None
    weights: dict = {}
    if todo:  # nothing left to analyse: the table and index are rebuilt without torch
        model, weights = load_weights(args, _device(args.device, local_rank, world))
    bar = _progress_bar(len(mine), enabled=not args.quiet and sys.stderr.isatty())
    counts = {"fake": 0, "real": 0, "error": 0, "skipped": 0}

    def progress(video: Path, row, skipped: bool) -> None:
        counts["skipped" if skipped else "error" if row.error else row.verdict] += 1
        if bar is not None:
            bar.set_postfix_str(f"{counts['fake']} fake, {counts['error']} errors", refresh=False)
            bar.update(1)

    try:
        rows = scan_videos(videos, folder, model, options, weights=weights, retry_errors=args.retry_errors,
                           progress=progress, workers=args.workers, shard=(rank, world), barrier=barrier,
                           started=begun)
    finally:
        if bar is not None:
            bar.close()
        if barrier is not None:
            import torch.distributed as dist

            dist.destroy_process_group()
    if not args.quiet:
        fake = sum(r.verdict == "fake" for r in rows)
        errors = sum(bool(r.error) for r in rows)
        elapsed = time.perf_counter() - started
        print(f"istvt-explain scan: {len(rows)} video(s): {fake} fake, {len(rows) - fake - errors} real, "
              f"{errors} could not be analysed; {todo} analysed now in {elapsed:.1f}s"
              + (f" by this process (rank 0 of {world})" if world > 1 else f", {len(rows) - todo} done before"))
        print(f"  table  {folder.root / 'results.csv'}")
        print(f"  index  {folder.root / 'index.html'}")
    return 0


def _join_ranks():
    """The process group torchrun describes, used only to wait for every rank (gloo: any device).

    Why a long timeout: ranks finish their shards at different times, and the default (30 min)
    would end a long scan; a rank that crashes ends the others through torchrun anyway.
    """
    import torch.distributed as dist

    dist.init_process_group("gloo", timeout=timedelta(days=7))
    return dist.barrier


def _device(name: str, local_rank: int, world: int):
    """``--device``; under torchrun, each process on its own GPU (``cuda:LOCAL_RANK``) when there are GPUs."""
    from ..models.device import resolve_device

    device = resolve_device(name)
    if world > 1 and device.type == "cuda":
        import torch

        device = torch.device(f"cuda:{local_rank % torch.cuda.device_count()}")
        torch.cuda.set_device(device)
    return device


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="scanning", unit="video", file=sys.stderr, dynamic_ncols=True)
