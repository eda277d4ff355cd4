"""Run logs on rank 0: one CSV row per epoch (appended on resume) and TensorBoard scalars."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

EPOCH_FIELDS = ("epoch", "step", "train_loss", "lr", "clips_per_s", "skipped", "train_seconds",
                "val_loss", "val_acc", "val_auc", "val_ap", "val_eer", "val_skipped")


class RunLogger:
    """CSV + TensorBoard.  Created only on rank 0; other ranks log nothing."""

    def __init__(self, out_dir: str | Path, tensorboard: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.csv_path = self.out_dir / "metrics.csv"
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"))

    def step(self, step: int, loss: float, lr: float) -> None:
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, step)
            self.writer.add_scalar("train/lr", lr, step)

    def epoch(self, row: dict[str, Any]) -> None:
        new = not self.csv_path.is_file()
        with open(self.csv_path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=EPOCH_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k)) for k in EPOCH_FIELDS})
        if self.writer is not None:
            step = int(row["step"])
            for key, value in row.items():
                if key not in ("epoch", "step") and isinstance(value, (int, float)) and math.isfinite(value):
                    group = "val" if key.startswith("val_") else "epoch"
                    self.writer.add_scalar(f"{group}/{key.removeprefix('val_')}", value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
