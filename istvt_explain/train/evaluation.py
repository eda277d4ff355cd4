"""Evaluate a checkpoint on a config's split: each process scores its shard, rank 0 reports.

Writes ``report.json`` (clip and video level ACC, AUC, AP, EER, per manipulation), ``roc.png`` and
``scores.csv`` (one row per clip) to the output folder.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import torch

from ..evaluate.detection import ScoreTable, report, score_dataset
from ..models import load_model
from . import distributed
from .config import TrainConfig
from .data import build_dataset


def evaluate_checkpoint(config: TrainConfig, weights: str | Path, out_dir: str | Path, *, split: str = "test",
                        batch_size: int | None = None, progress: bool = True, dataset=None) -> dict[str, Any] | None:
    """Score ``weights`` on ``split`` of ``config``'s data; the report on rank 0, None on other ranks."""
    ctx = distributed.setup(config.device)
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        model = load_model(weights, device=ctx.device)
        data = dataset if dataset is not None else build_dataset(config, model.config, split)
        table = score_dataset(model, data, batch_size=batch_size or config.eval_batch_size, rank=ctx.rank,
                              world_size=ctx.world_size, num_workers=config.data.num_workers,
                              precision=config.precision,
                              progress=progress and ctx.is_main)
        tables = distributed.gather_objects(ctx, table)
        if not ctx.is_main:
            return None
        merged = ScoreTable.merge(tables)
        result = report(merged)
        result.update({"weights": str(weights), "config": config.name, "split": split,
                       "preset": model.config.name, "processes": ctx.world_size})
        write_outputs(merged, result, Path(out_dir))
        return result
    finally:
        torch.set_num_threads(threads)
        distributed.cleanup(ctx)


def write_outputs(table: ScoreTable, result: dict[str, Any], out_dir: Path) -> None:
    from ..render.figures import roc_figure
    from ..render.style import save_figure

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(_json_safe(result), indent=2) + "\n")
    with open(out_dir / "scores.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video_id", "manipulation", "label", "score"])
        for row in zip(table.video_ids, table.manipulations, table.labels, table.scores, strict=True):
            writer.writerow([row[0], row[1], int(row[2]), f"{row[3]:.6f}"])
    video = table.video_level()
    curves = {name: (labels, scores) for name, labels, scores in (("clips", table.labels, table.scores),
                                                                  ("videos", video.labels, video.scores))
              if len({float(y) >= 0.5 for y in labels}) == 2}  # a split of one class has no ROC
    title = f"ROC: {result.get('config', '')} {result.get('split', '')}"
    save_figure(roc_figure(curves, title=title), out_dir, "roc", formats=("png",))


def _json_safe(value: Any) -> Any:
    """NaN (a metric undefined for one class) becomes null, which every JSON reader accepts."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
