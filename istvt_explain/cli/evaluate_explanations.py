"""`istvt-explain evaluate-explanations`: judge explanation methods on held-out real and pseudo-fake clips."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import InputError
from ..models.presets import PRESETS

HELP = "judge explanation methods (sanity, deletion, insertion, temporal, pointing) with pass/fail verdicts"
# The Captum baselines cost tens of forward passes per clip: judged on a stated subset by default.
BASELINE_CLIPS = {"integrated-gradients": 24, "occlusion": 24, "saliency": 48, "frame-ablation": 48}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", help="an istvt-explain checkpoint (.safetensors) to judge")
    source.add_argument("--preset", choices=PRESETS,
                        help="a preset with random weights (a smoke run; maps of an untrained model)")
    source.add_argument("--demo", action="store_true", help="the bundled demo weights (default)")
    parser.add_argument("--methods", nargs="+", metavar="METHOD",
                        help="methods to judge (default: all registered, plugins included; "
                             "see `istvt-explain model-info` or docs/judging.md)")
    parser.add_argument("--clips", type=int, default=200,
                        help="clips of held-out people, real and self-blended in alternation (default 200)")
    parser.add_argument("--baseline-clips", type=int, default=None, metavar="N",
                        help="clips for the Captum baselines (default: IG and occlusion 24, saliency and "
                             "frame ablation 48, spread over the set)")
    parser.add_argument("--sanity-clips", type=int, default=8, help="clips of the randomisation checks (default 8)")
    parser.add_argument("--steps", type=int, default=4, help="deletion/insertion steps (default 4)")
    parser.add_argument("--top-k", type=int, default=1, help="frames removed in the temporal test (default 1)")
    parser.add_argument("--no-sanity", action="store_true", help="skip the model-randomisation checks")
    parser.add_argument("--seed", type=int, default=0)
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
    import torch

    from ..attribution.registry import available_methods, resolve_method
    from ..evaluate.explanations.data import heldout_judging_set
    from ..evaluate.explanations.judge import JudgingSettings, judge_explanations, judging_options
    from ..evaluate.explanations.report import to_markdown, write_report

    if args.clips < 2 or args.steps < 1 or args.sanity_clips < 1:
        raise InputError("--clips must be >= 2, --steps and --sanity-clips >= 1")
    methods = tuple(resolve_method(m) for m in args.methods) if args.methods else tuple(available_methods())
    model = _load(args)
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
    settings = JudgingSettings(steps=args.steps, top_k=args.top_k, seed=args.seed, sanity=not args.no_sanity,
                               sanity_clips=args.sanity_clips, method_clips=subsets)
    result = judge_explanations(model, data.clips, data.masks, methods, settings=settings,
                                progress=lambda msg: print(f"[{time.perf_counter() - started:6.0f} s] {msg}",
                                                           flush=True), bars=True)
    extra = {"model": c.to_dict(), "material": list(data.material),
             "settings": {"clips": args.clips, "steps": args.steps, "top_k": args.top_k, "seed": args.seed,
                          "sanity_clips": args.sanity_clips, "method_clips": subsets,
                          "method_options": judging_options(c)},
             "seconds": round(time.perf_counter() - started, 1)}
    paths = write_report(result, args.out, extra)
    print(to_markdown(result))
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0
