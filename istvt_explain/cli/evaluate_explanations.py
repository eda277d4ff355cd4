"""`istvt-explain evaluate-explanations`: judge every explanation method on pseudo-fakes with masks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError

HELP = "judge explanation methods (faithfulness, localisation, sanity) on pseudo-fake clips; CSV + figure"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..explain import available_methods
    from ..models import available_presets

    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", help="an istvt-explain checkpoint (.safetensors) to judge")
    source.add_argument("--preset", choices=available_presets(),
                        help="a preset with random weights (a smoke run; maps of an untrained model)")
    source.add_argument("--demo", action="store_true", help="the bundled demo weights (default)")
    parser.add_argument("--methods", nargs="+", choices=available_methods(), metavar="METHOD",
                        help=f"methods to judge (default: all): {', '.join(available_methods())}")
    parser.add_argument("--clips", type=int, default=6, help="number of pseudo-fake clips (default 6)")
    parser.add_argument("--steps", type=int, default=8, help="deletion/insertion steps (default 8)")
    parser.add_argument("--top-k", type=int, default=2, help="frames dropped in the temporal test (default 2)")
    parser.add_argument("--no-sanity", action="store_true", help="skip the weight-randomisation check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="judging", help="output folder (CSV, Markdown, figure, JSON)")


def _load(args: argparse.Namespace):
    from ..models import CheckpointError, create_model, load_model

    try:
        if args.weights:
            if not Path(args.weights).is_file():
                raise InputError(f"{args.weights}: no such checkpoint")
            return load_model(args.weights)
        if args.preset:
            return create_model(args.preset)
        from ..demo import load_demo_model
        return load_demo_model()
    except CheckpointError as err:
        raise InputError(f"{err} (use --weights PATH or --preset NAME)") from err


def run(args: argparse.Namespace) -> int:
    import torch

    from ..evaluate.explanation_data import pseudofake_judging_set
    from ..evaluate.judging import JudgingSettings, judge_explanations, judging_options
    from ..evaluate.judging_report import plot_table, to_markdown, write_csv

    if args.clips < 1 or args.steps < 1:
        raise InputError("--clips and --steps must be positive")
    model = _load(args)
    c = model.config
    if not 1 <= args.top_k < c.frames:
        raise InputError(f"--top-k must be in 1..{c.frames - 1} for {c.frames}-frame clips")
    torch.manual_seed(args.seed)
    data = pseudofake_judging_set(args.clips, c.frames, c.image_size, seed=args.seed)
    settings = JudgingSettings(methods=tuple(args.methods or ()), steps=args.steps, top_k=args.top_k,
                               seed=args.seed, sanity=not args.no_sanity)
    table = judge_explanations(model, data.clips, data.masks, settings,
                               progress=lambda name: print(f"judging {name} ...", flush=True))
    out = Path(args.out)
    csv_path = write_csv(table, out / "explanation_judging.csv")
    md = to_markdown(table)
    (out / "explanation_judging.md").write_text(md + "\n")
    (out / "explanation_judging.json").write_text(json.dumps(
        {"model": c.to_dict(), "settings": {"clips": args.clips, "steps": args.steps, "top_k": args.top_k,
                                             "seed": args.seed,
                                             "method_options": judging_options(c)},
         "rows": table.rows}, indent=2, default=str))
    fig_path = plot_table(table, out / "explanation_judging.png")
    print(md)
    print(f"wrote {csv_path} and {fig_path}")
    return 0
