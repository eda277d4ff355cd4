"""`istvt-explain evaluate-explanations`: judge explanation methods on held-out real and pseudo-fake clips."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import InputError
from ..evaluate.explanations.settings import BASELINE_CLIPS, JudgingSettings
from ..models.presets import PRESETS
from .weights import check_weights

HELP = ("judge explanation methods (sanity, deletion, insertion, temporal, pointing, robustness) with pass/fail "
        "verdicts")
_DEFAULTS = JudgingSettings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Defaults are JudgingSettings' (docs/judging.md); the committed judging in "
                     "benchmarks/results/explain_judging_demo ran with exactly them (79 min on 2 CPU cores).")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", help="an istvt-explain checkpoint (.safetensors) to judge")
    source.add_argument("--preset", choices=PRESETS,
                        help="a preset with random weights (a smoke run; maps of an untrained model)")
    source.add_argument("--demo", action="store_true", help="the bundled demo weights (default)")
    parser.add_argument("--methods", nargs="+", metavar="METHOD",
                        help="methods to judge (default: all registered, plugins included; see docs/judging.md)")
    parser.add_argument("--no-fools", action="store_true",
                        help="leave out the three known-bad control maps (fresh noise, the centre prior, negated "
                             "relevance), which every run judges beside the methods by default")
    parser.add_argument("--clips", type=int, default=200,
                        help="clips of held-out people, real and self-blended in alternation, shared out among the "
                             "people (default 200)")
    parser.add_argument("--baseline-clips", type=int, default=None, metavar="N",
                        help="clips for the Captum baselines (default: "
                             + ", ".join(f"{m} {n}" for m, n in BASELINE_CLIPS.items()) + ", spread over the people)")
    parser.add_argument("--sanity-clips", type=int, default=_DEFAULTS.sanity_clips,
                        help=f"clips of the sanity checks (default {_DEFAULTS.sanity_clips})")
    parser.add_argument("--robustness-clips", type=int, default=_DEFAULTS.robustness_clips,
                        help=f"clips of the robustness check (default {_DEFAULTS.robustness_clips})")
    parser.add_argument("--steps", type=int, default=_DEFAULTS.steps,
                        help=f"deletion/insertion steps (default {_DEFAULTS.steps})")
    parser.add_argument("--top-k", type=int, default=_DEFAULTS.top_k,
                        help=f"frames removed in the temporal test (default {_DEFAULTS.top_k})")
    parser.add_argument("--no-sanity", action="store_true", help="skip the sanity checks (the slowest part)")
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed)
    parser.add_argument("--out", default="judging", help="output folder (CSV, Markdown, JSON, figures)")


def _load(args: argparse.Namespace):
    from ..models import CheckpointError, create_model, load_model

    try:
        if args.weights:
            if not Path(args.weights).is_file():
                raise InputError(f"{args.weights}: no such checkpoint")
            return load_model(args.weights)
        if args.preset:
            return create_model(args.preset)
        from ..models.pretrained import load_demo_model
        return load_demo_model()
    except CheckpointError as err:
        raise InputError(f"{err} (use --weights PATH or --preset NAME)") from err


def run(args: argparse.Namespace) -> int:
    if args.weights and not Path(args.weights).is_file():
        raise InputError(f"{args.weights}: no such checkpoint")
    check_weights(args.weights)  # before torch: a crafted file is refused at once
    import dataclasses

    import torch

    from ..attribution.registry import available_methods, resolve_method
    from ..evaluate.explanations.data import heldout_judging_set
    from ..evaluate.explanations.judge import judge_explanations, judging_options
    from ..evaluate.explanations.report import to_markdown, write_report

    if args.clips < 2 or args.steps < 1 or args.sanity_clips < 1 or args.robustness_clips < 1:
        raise InputError("--clips must be >= 2, --steps, --sanity-clips and --robustness-clips >= 1")
    methods = tuple(resolve_method(m) for m in args.methods) if args.methods else tuple(available_methods())
    from ..models.inference import optimize_for_inference

    model = optimize_for_inference(_load(args))  # channels-last convolutions: about 2x on these CPUs
    c = model.config
    if not 1 <= args.top_k < c.frames:
        raise InputError(f"--top-k must be in 1..{c.frames - 1} for {c.frames}-frame clips")
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    from tqdm.auto import tqdm

    with tqdm(total=args.clips, desc="held-out clips", unit="clip") as bar:
        data = heldout_judging_set(args.clips, c.frames, c.image_size, seed=args.seed,
                                   progress=lambda done, total: bar.update(done - bar.n))
    subsets = dict(BASELINE_CLIPS) if args.baseline_clips is None else dict.fromkeys(BASELINE_CLIPS, args.baseline_clips)
    settings = dataclasses.replace(_DEFAULTS, steps=args.steps, top_k=args.top_k, seed=args.seed,
                                   sanity=not args.no_sanity, sanity_clips=args.sanity_clips,
                                   robustness_clips=args.robustness_clips, method_clips=subsets)
    result = judge_explanations(model, data.clips, data.masks, methods, identities=data.identities,
                                settings=settings, include_fools=not args.no_fools,
                                progress=lambda msg: print(f"[{time.perf_counter() - started:6.0f} s] {msg}",
                                                           flush=True), bars=True)
    extra = {"model": c.to_dict(), "material": list(data.material), "people": sorted(set(data.identities)),
             "settings": {**dataclasses.asdict(settings), "clips": args.clips,
                          "method_options": judging_options(c)},
             "seconds": round(time.perf_counter() - started, 1)}
    paths = write_report(result, args.out, extra)
    print(to_markdown(result))
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0
