"""Validation ROC AUC of a checkpoint per kind of fake (self-blend, alpha swap, Poisson swap) against all reals.

Why: ``istvt-explain train`` logs one validation AUC per epoch, over every kind of fake together; this says
which kind a checkpoint finds.  The clips are the config's validation split, drawn exactly as training
draws them (seeded), so two checkpoints are compared on the very same clips; ``--split train`` scores the
training people's clips the same way, which shows how much of what a checkpoint finds is its own people.

    python benchmarks/validation_by_fake.py --config demo_swap --weights istvt_explain/assets/demo_tiny.safetensors
    python benchmarks/validation_by_fake.py --config demo_swap --weights runs/demo_swap/calibrated.safetensors
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from istvt_explain.evaluate.detection import detection_metrics, score_dataset
from istvt_explain.models import load_model
from istvt_explain.train import load_config
from istvt_explain.train.data import build_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="demo_swap")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--split", default="val", choices=("train", "val", "test"),
                        help="train: the training people's clips, drawn as training draws them (how far it fits them)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.weights).eval()
    table = score_dataset(model, build_dataset(load_config(args.config), model.config, args.split), batch_size=16,
                          progress=True)
    labels, scores = np.asarray(table.labels), np.asarray(table.scores)
    kinds = np.asarray(table.manipulations)
    real = labels < 0.5
    print(f"{args.weights} on the {args.split} split of {args.config}: ROC AUC {detection_metrics(labels, scores)['auc']:.3f}, "
          f"real clips >= 0.5: {np.mean(scores[real] >= 0.5):.2f}")
    for kind in sorted(set(kinds[~real])):
        keep = real | (kinds == kind)
        print(f"  {kind}: {int((kinds == kind).sum())} clips, ROC AUC {detection_metrics(labels[keep], scores[keep])['auc']:.3f}, "
              f">= 0.5: {np.mean(scores[kinds == kind] >= 0.5):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
