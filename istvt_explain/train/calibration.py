"""Calibrating a checkpoint: score a config's validation split, fit the temperature, write a calibrated copy.

The measures and the fit are ``evaluate.calibration``; this module adds what training owns: the
config's data, the checkpoint files, and ``calibration.json`` beside the output.  See docs/calibration.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..data._files import atomic_write
from ..errors import InputError
from ..evaluate.calibration import DEFAULT_BINS, CalibrationReport, calibrate_logits
from ..evaluate.detection import score_dataset
from ..models import load_model
from ..models.device import resolve_device
from ..models.weights import read_metadata, save_checkpoint
from .config import TrainConfig, load_config
from .data import build_dataset

REPORT_NAME = "calibration.json"
_OWN_METADATA = ("format", "config", "version", "temperature", "calibration")
"""Metadata that ``save_checkpoint`` writes itself; everything else of the input checkpoint is kept."""


def calibrate_checkpoint(config: TrainConfig | str | Path, weights: str | Path, out: str | Path,
                         split: str = "val", *, batch_size: int | None = None, device: str | None = None,
                         bins: int = DEFAULT_BINS, force: bool = False, progress: bool = False,
                         dataset: Dataset | None = None) -> CalibrationReport:
    """Fit the temperature of checkpoint ``weights`` on ``split`` of ``config``'s data and write the
    calibrated checkpoint to ``out`` and the report to ``calibration.json`` beside it.

    ``config``: a ``TrainConfig``, a YAML file or a preset name; ``dataset`` replaces the split it
    describes (tests, notebooks).  The model is scored with T = 1 (raw logits, whatever temperature
    ``weights`` stored), as ``evaluate`` scores it (the config's batch size, precision, workers).
    ``out`` keeps the input's other metadata (``train_config``, ``metrics``, ...) and adds
    ``temperature`` and ``calibration`` (this report).  Existing outputs, ``out == weights``
    included, are replaced only with ``force``.  Bad input raises ``InputError`` (one line).
    """
    if not isinstance(config, TrainConfig):
        config = load_config(config)
    if split not in ("train", "val", "test"):
        raise InputError(f"split must be train, val or test, got {split!r}")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    if not isinstance(bins, int) or bins < 1:
        raise InputError(f"bins must be a positive integer, got {bins!r}")
    weights, out = Path(weights), Path(out)
    report_path = out.parent / REPORT_NAME
    if not weights.is_file():
        raise InputError(f"{weights}: no such checkpoint")
    if out.suffix != ".safetensors":
        raise InputError(f"{out}: the calibrated checkpoint must be a .safetensors file")
    for path in (out, report_path):
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a file name")
    if not force:
        if out.resolve() == weights.resolve():
            raise InputError(f"{out}: is the input checkpoint (use --force to calibrate it in place)")
        for path in (out, report_path):
            if path.exists():
                raise InputError(f"{path}: already exists (use --force to overwrite)")
    dev = resolve_device(device or config.device)

    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        model = load_model(weights, device=dev)
        if model.config.num_classes != 1:
            raise InputError(f"{weights}: temperature scaling here needs a one-logit head, "
                             f"this model has {model.config.num_classes} classes")
        model.set_temperature(1.0)  # fit on the raw logits
        data = dataset if dataset is not None else build_dataset(config, model.config, split)
        table = score_dataset(model, data, batch_size=batch_size or config.eval_batch_size,
                              num_workers=config.data.num_workers, precision=config.precision,
                              progress=progress)
    finally:
        torch.set_num_threads(threads)
    if not len(table):
        raise InputError(f"no clips could be scored on the {split} split ({table.skipped} unreadable)")
    try:
        report = calibrate_logits(table.logits, table.labels, bins, split=split, weights=str(weights),
                                  output=str(out), config=config.name, skipped=table.skipped)
    except ValueError as err:  # e.g. a model that puts out NaN
        raise InputError(f"{weights}: cannot calibrate on the {split} split ({err})") from None
    model.set_temperature(report.temperature)
    kept = {k: v for k, v in read_metadata(weights).items() if k not in _OWN_METADATA}
    save_checkpoint(model, out, extra={**kept, "calibration": report.to_dict()})
    text = json.dumps(report.to_dict(), indent=2) + "\n"
    atomic_write(report_path, lambda tmp: Path(tmp).write_text(text))
    return report
