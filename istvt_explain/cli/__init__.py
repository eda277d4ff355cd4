"""Command line: a thin layer that parses arguments and calls the library.

``istvt-explain VIDEO --out heatmap.mp4`` is the default command; the others
are subcommands (``istvt-explain train ...``).  Each lives in its own module
exposing ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Anything the user got wrong raises ``InputError`` (or its ``UserError``): one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import InputError

# subcommand name -> module (imported lazily, so `--help` stays fast)
SUBCOMMANDS: dict[str, str] = {
    "model-info": "istvt_explain.cli.model_info",
    "evaluate-explanations": "istvt_explain.cli.evaluate_explanations",
    "preprocess": "istvt_explain.cli.preprocess",
    "train": "istvt_explain.cli.train",
    "evaluate": "istvt_explain.cli.evaluate",
    "calibrate": "istvt_explain.cli.calibrate",
    "figures": "istvt_explain.cli.figures",
    "hard-samples": "istvt_explain.cli.hard_samples",
    "sensitivity": "istvt_explain.cli.sensitivity",
}
DEFAULT_COMMAND = "istvt_explain.cli.explain_video"


def _build_parser(name: str, module_path: str, prog: str) -> tuple[argparse.ArgumentParser, object]:
    module = importlib.import_module(module_path)
    parser = argparse.ArgumentParser(prog=prog, description=module.HELP)
    module.add_arguments(parser)
    return parser, module


def _usage() -> str:
    lines = ["usage: istvt-explain VIDEO --out heatmap.mp4 [options]", "       istvt-explain COMMAND [options]",
             "", "commands:"]
    for name, path in SUBCOMMANDS.items():
        try:
            help_text = importlib.import_module(path).HELP.splitlines()[0]
        except Exception:  # a broken subcommand must not hide the others
            help_text = "(unavailable)"
        lines.append(f"  {name:24s}{help_text}")
    lines.append("\n`istvt-explain COMMAND --help` for the options of one command.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from .. import __version__
        print(f"istvt-explain {__version__}")
        return 0
    if argv[0] in SUBCOMMANDS:
        name, rest = argv[0], argv[1:]
        parser, module = _build_parser(name, SUBCOMMANDS[name], f"istvt-explain {name}")
    else:
        try:
            parser, module = _build_parser("explain", DEFAULT_COMMAND, "istvt-explain")
        except ModuleNotFoundError:
            print(f"istvt-explain: error: unknown command {argv[0]!r}\n\n{_usage()}", file=sys.stderr)
            return 2
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
