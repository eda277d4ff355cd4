"""Run logs on rank 0: one CSV row per epoch (appended on resume) and TensorBoard scalars.

A killed run never leaves a duplicate: on resume, ``RunLogger.resume`` drops the CSV rows and
TensorBoard values logged after the state the run goes on from (TensorBoard's ``purge_step``), and
the epoch row is written only after the state that records the epoch as done.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from ..data._files import atomic_write

EPOCH_FIELDS = ("epoch", "step", "train_loss", "lr", "clips_per_s", "skipped", "train_seconds",
                "val_loss", "val_acc", "val_auc", "val_ap", "val_eer", "val_skipped")


class RunLogger:
    """CSV + TensorBoard.  Created only on rank 0; other ranks log nothing."""

    def __init__(self, out_dir: str | Path, tensorboard: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.csv_path = self.out_dir / "metrics.csv"
        self.tensorboard = tensorboard
        self.writer = None
        self._purge_step: int | None = None

    def _tb(self):
        """The TensorBoard writer, opened on first use (after ``resume`` has set what to purge)."""
        if self.writer is None and self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=self._purge_step)
        return self.writer

    def resume(self, epoch: int, step: int, last_row: dict[str, Any] | None = None) -> None:
        """Go on from a state at ``epoch`` epochs and ``step`` steps done.

        Rows of later epochs and TensorBoard values of later steps are the killed run's work that
        will be redone: they go.  ``last_row`` (the state's copy of its last epoch row) is written
        when the kill came between the state and the log.
        """
        self._purge_step = step + 1
        rows = read_metrics(self.csv_path) if self.csv_path.is_file() else []
        kept = [r for r in rows if _int(r.get("epoch")) <= epoch]
        if len(kept) != len(rows):
            _write_rows(self.csv_path, kept)
        if last_row is not None and int(last_row.get("epoch", -1)) == epoch > 0 \
                and not any(_int(r.get("epoch")) == epoch for r in kept):
            self.epoch(last_row)

    def step(self, step: int, loss: float, lr: float) -> None:
        writer = self._tb()
        if writer is not None:
            writer.add_scalar("train/loss", loss, step)
            writer.add_scalar("train/lr", lr, step)

    def epoch(self, row: dict[str, Any]) -> None:
        """Append the CSV row first, then the TensorBoard values: a kill between loses a value, never doubles one."""
        new = not self.csv_path.is_file()
        with open(self.csv_path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=EPOCH_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k)) for k in EPOCH_FIELDS})
        tb = self._tb()
        if tb is not None:
            step = int(row["step"])
            for key, value in row.items():
                if key not in ("epoch", "step") and isinstance(value, (int, float)) and math.isfinite(value):
                    group = "val" if key.startswith("val_") else "epoch"
                    tb.add_scalar(f"{group}/{key.removeprefix('val_')}", value, step)
            tb.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def _int(value: Any) -> int:
    """An epoch number from the CSV; a damaged cell counts as after every state (it is dropped)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1 << 62


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Rewrite the CSV with ``rows``, atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=EPOCH_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text.getvalue()))


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
