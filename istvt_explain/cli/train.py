"""`istvt-explain train`: train a model from a YAML config (a file or a shipped preset).

Runs as one process or under `torchrun --no-python istvt-explain train ...` (DDP, one process per GPU).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from ..errors import InputError

HELP = "train a detector from a YAML config or a preset (demo, ffpp_c23_paper, pseudofake); resumable, torchrun-ready"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="a YAML file or a preset name: demo, ffpp_c23_paper, pseudofake")
    parser.add_argument("--out", help="run folder for checkpoints and logs (default runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="go on from the last state saved in --out")
    parser.add_argument("--force", action="store_true",
                        help="start a fresh run in an --out that holds one (its state and checkpoints are replaced)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set optim.lr=0.01 (repeatable; values are YAML)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs and summaries only)")
    parser.add_argument("--no-calibrate", action="store_true",
                        help="skip fitting the temperature of best.safetensors on the validation split at the end")


def parse_overrides(items: list[str]) -> dict:
    """``["optim.lr=0.01"]`` -> ``{"optim.lr": 0.01}`` (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set needs KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run(args: argparse.Namespace) -> int:
    """Training; SIGTERM (a job scheduler, torchrun stopping the other ranks) stops it as Ctrl-C does:
    the state or checkpoint being written removes its temporary, one line, exit 130."""
    from ..data._files import sigterm_as_interrupt

    with sigterm_as_interrupt():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ..train import fit, load_config

    config = load_config(args.config, **parse_overrides(args.set))
    out = Path(args.out or Path("runs") / config.name)
    _check_fresh_start(out, args.resume, args.force)
    result = fit(config, out, resume=args.resume, progress=not args.no_progress)
    if result.history:
        print(f"done: {result.epochs_done} epoch(s), {result.global_step} steps; checkpoints in {out} "
              "(last.safetensors, best.safetensors)")
    best = out / "best.safetensors"
    if not args.no_calibrate and best.is_file() and _is_main_process() and not result.stopped_early:
        from ..train.calibration import calibrate_checkpoint

        # Probabilities shown to users come from a temperature fitted on held-out validation clips.
        report = calibrate_checkpoint(config, best, out / "calibrated.safetensors", split="val", force=True,
                                      progress=not args.no_progress)
        print(report.summary())
    return 0


def _is_main_process() -> bool:
    """Rank 0 under torchrun (its process group is gone by now), or a plain single process."""
    import os

    return os.environ.get("RANK", "0") == "0"


def _check_fresh_start(out: Path, resume: bool, force: bool) -> None:
    """Refuse to start a fresh run over a folder that holds one, unless told (``--resume``, ``--force``).

    Why: a forgotten ``--resume`` would otherwise overwrite hours of training state at the end of the
    new run's first epoch, without a word.
    """
    from ..train.loop import STATE_FILE

    if resume or force or not (out / STATE_FILE).is_file():
        return
    raise InputError(f"{out}: holds a training run ({STATE_FILE.as_posix()}); give --resume to go on from it, "
                     "or --force to start a fresh run over it")
