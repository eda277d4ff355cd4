"""The training loop: one code path for one process and for ``torchrun`` (DDP + a distributed sampler).

Per step: the config's precision (``models.precision``: bf16 autocast on a GPU that has it), BCE-with-logits on the fake logit, gradient clipping, optimizer and
scheduler step.  Per epoch: a validation pass, the last (and, when it improved, the best) checkpoint
in safetensors with the config, a CSV row and TensorBoard scalars, and the resumable state.
Training works on raw logits: the model's calibration temperature is reset to 1 when the run starts
(a calibrated ``init_weights`` checkpoint included), and the checkpoints it writes store 1.0.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from ..errors import InputError
from ..evaluate.detection import ScoreTable, SkipBadItems, collate_clips, detection_metrics, score_dataset
from ..models import ISTVT, CheckpointError, create_model, save_checkpoint
from ..models.precision import autocast, resolve_precision
from . import distributed
from .config import TrainConfig
from .data import build_dataset
from .logs import RunLogger
from .mask_head import MaskHead
from .state import (
    ResumableSampler,
    capture_rng,
    load_state,
    remove_orphaned_parts,
    restore_rng,
    save_state,
    seed_everything,
)

STATE_FILE = Path("state") / "last.pt"


@dataclass
class FitResult:
    """What a run left behind; ``history`` holds one dict per epoch (rank 0 only)."""

    out_dir: Path
    global_step: int
    epochs_done: int
    stopped_early: bool = False
    best_score: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    model: ISTVT | None = None


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float):
    """LR factor: linear warm-up to 1 over ``warmup_steps``, then cosine down to ``min_ratio``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


def build_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    o = config.optim
    if o.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)


def fit(config: TrainConfig, out_dir: str | Path, *, train_set: Dataset | None = None,
        val_set: Dataset | None = None, resume: bool = False, stop_after_steps: int | None = None,
        progress: bool = True, tensorboard: bool = True) -> FitResult:
    """Train as ``config`` says, writing checkpoints and logs to ``out_dir``.

    ``train_set``/``val_set`` replace the data sets the config describes (tests, notebooks).
    ``stop_after_steps`` ends the run after that many optimizer steps, with the state written, as a
    kill would (the resume test uses it).
    """
    ctx = distributed.setup(config.device)
    threads = torch.get_num_threads()
    try:
        return _Trainer(config, Path(out_dir), ctx, train_set, val_set, progress, tensorboard).run(
            resume, stop_after_steps)
    finally:
        torch.set_num_threads(threads)  # the caller's setting, not the run's
        distributed.cleanup(ctx)


class _Trainer:
    def __init__(self, config: TrainConfig, out_dir: Path, ctx: distributed.DistContext,
                 train_set: Dataset | None, val_set: Dataset | None, progress: bool, tensorboard: bool) -> None:
        self.config, self.out_dir, self.ctx = config, out_dir, ctx
        self.show_progress = progress and ctx.is_main
        if config.threads:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed)  # the same initial weights on every rank
        m = config.model
        self.model = create_model(m.preset, backbone_weights=m.backbone_weights, weights=m.init_weights,
                                  **m.overrides).to(ctx.device).train()
        # Training fits the raw logits: a calibration temperature from init_weights is dropped (T = 1),
        # so the checkpoints it writes are uncalibrated until `istvt-explain calibrate` fits a new one.
        self.model.set_temperature(1.0)
        mc = self.model.config
        self.train_set = SkipBadItems(train_set if train_set is not None else build_dataset(config, mc, "train"))
        self.val_set = val_set if val_set is not None else build_dataset(config, mc, "val")
        self.sampler = ResumableSampler(self.train_set, ctx.world_size, ctx.rank, seed=config.seed)
        self.steps_per_epoch = self.sampler.num_samples // config.batch_size
        if self.steps_per_epoch < 1:
            raise InputError(f"{len(self.train_set)} training clips over {ctx.world_size} process(es) do not "
                             f"fill one batch of {config.batch_size}")
        self.total_steps = self.steps_per_epoch * config.epochs
        self.optimizer = build_optimizer(config, self.model)
        self.mask_head = None
        if config.mask_loss_weight > 0:
            self.mask_head = MaskHead(self.model).to(ctx.device)
            self.optimizer.add_param_group({"params": list(self.mask_head.parameters())})
        warmup = round(config.optim.warmup_epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(warmup, self.total_steps, config.optim.min_lr_ratio))
        self.precision = resolve_precision(config.precision, ctx.device)  # refused here, not mid-epoch
        self.progress: dict[str, Any] = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best": None}
        self.accum = torch.zeros(4, dtype=torch.float64)  # loss sum, loss count, skipped, clips (this rank)
        self.logger = RunLogger(out_dir, tensorboard) if ctx.is_main else None
        self.history: list[dict[str, Any]] = []

    # -- state ------------------------------------------------------------------------------------
    def _state_path(self) -> Path:
        return self.out_dir / STATE_FILE

    def _write_state(self) -> None:
        mine = {"rng": capture_rng(), "accum": self.accum.clone()}
        every = distributed.gather_objects(self.ctx, mine)
        if self.ctx.is_main:
            progress = dict(self.progress)
            if self.mask_head is not None:  # training-only weights: kept in the state, never in checkpoints
                progress["mask_head"] = {k: v.detach().cpu() for k, v in self.mask_head.state_dict().items()}
            save_state(self._state_path(), model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                       progress=progress, rng=every, config=self.config.to_dict())
        distributed.barrier(self.ctx)

    def _resume(self) -> bool:
        path = self._state_path()
        if not path.is_file():
            if self.ctx.is_main:
                warnings.warn(f"{path}: no state to resume from; starting a fresh run", stacklevel=3)
            return False
        state = load_state(path)
        if state["config"].get("model") != self.config.to_dict()["model"]:
            raise CheckpointError(f"{path}: the run was started with model {state['config'].get('model')}, "
                                  f"not {self.config.to_dict()['model']}; resume it with its own config")
        for key in ("batch_size", "seed"):  # they decide which clips come next: the run would not go on
            if state["config"].get(key) != getattr(self.config, key):
                raise CheckpointError(f"{path}: the run was started with {key} {state['config'].get(key)}, "
                                      f"not {getattr(self.config, key)}; resume it with its own config")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.progress = dict(state["progress"])
        if self.logger is not None:  # drop what the killed run logged after this state
            self.logger.resume(self.progress["epoch"], self.progress["global_step"], self.progress.get("last_row"))
        head = self.progress.pop("mask_head", None)
        if self.mask_head is not None and head is not None:
            self.mask_head.load_state_dict(head)
        ranks = state["rng"]
        mine = ranks[self.ctx.rank] if len(ranks) == self.ctx.world_size else None
        if mine is not None:
            restore_rng(mine["rng"])
            self.accum = mine["accum"].clone()
        elif self.ctx.is_main:
            warnings.warn(f"{path}: saved by {len(ranks)} process(es), resumed by {self.ctx.world_size}: "
                          "random states start afresh", stacklevel=3)
        return True

    # -- one step ---------------------------------------------------------------------------------
    def _step(self, net: torch.nn.Module, batch: dict) -> float | None:
        self.accum[2] += batch["skipped"]
        have = "clip" in batch
        if self.ctx.distributed:
            (anyone,) = distributed.all_sum(self.ctx, [float(len(batch["video_id"]))])
            if anyone == 0:
                return None
        elif not have:
            return None
        if have:
            clips = batch["clip"].to(self.ctx.device, non_blocking=True)
            labels = batch["label"].to(self.ctx.device, non_blocking=True)
            weight = 1.0
        else:  # this rank's whole batch was unreadable; join the all-reduce with a zero-weight clip
            c = self.model.config
            clips = torch.zeros(1, c.frames, 3, c.image_size, c.image_size, device=self.ctx.device)
            labels, weight = torch.zeros(1, device=self.ctx.device), 0.0
        with autocast(self.precision, self.ctx.device):
            logits = net(clips)
        loss = F.binary_cross_entropy_with_logits(logits.float(), labels) * weight
        total = loss
        if self.mask_head is not None:
            mask_loss = self.mask_head.loss(batch["mask"]) if have and "mask" in batch else None
            if mask_loss is not None:
                total = loss + self.config.mask_loss_weight * mask_loss * weight
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.mask_head is not None and self.ctx.distributed:
            for p in self.mask_head.parameters():  # outside DDP: average its gradients by hand
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                torch.distributed.all_reduce(p.grad)
                p.grad /= self.ctx.world_size
        if self.config.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if have:
            self.accum[0] += loss.item() * len(labels)
            self.accum[1] += len(labels)
            self.accum[3] += len(labels)
        return loss.item()

    # -- validation -------------------------------------------------------------------------------
    def _sync_buffers(self) -> None:
        """BatchNorm running statistics drift apart per rank; validate and save rank 0's."""
        if self.ctx.distributed:
            for buf in self.model.buffers():
                dist.broadcast(buf, src=0)

    def _validate(self) -> dict[str, Any]:
        self._sync_buffers()
        table = score_dataset(self.model, self.val_set, batch_size=self.config.eval_batch_size,
                              rank=self.ctx.rank, world_size=self.ctx.world_size,
                              num_workers=self.config.data.num_workers, precision=self.precision)
        tables = distributed.gather_objects(self.ctx, table)
        if not self.ctx.is_main:
            return {}
        merged = ScoreTable.merge(tables)
        metrics = detection_metrics(merged.labels, merged.scores)
        return {"val_loss": _bce(merged), "val_acc": metrics["acc"], "val_auc": metrics["auc"],
                "val_ap": metrics["ap"], "val_eer": metrics["eer"], "val_skipped": merged.skipped}

    def _score(self, row: dict[str, Any]) -> float:
        key = self.config.best_metric
        if key == "loss" or not math.isfinite(row.get(f"val_{key}", math.nan)):
            return -row["val_loss"]
        return row[f"val_{key}"]

    # -- the run ----------------------------------------------------------------------------------
    def _clean_start(self) -> None:
        """Remove what a killed run left half-written, and say which training data is broken."""
        if not self.ctx.is_main:
            return
        remove_orphaned_parts(self.out_dir, ("last.safetensors", "best.safetensors"))
        remove_orphaned_parts(self.out_dir / STATE_FILE.parent, (STATE_FILE.name,))
        for name, data in (("training", self.train_set), ("validation", self.val_set)):
            skipped = getattr(data, "skipped", None) or []
            if skipped:
                first = skipped[0]
                warnings.warn(f"{len(skipped)} broken cache entr{'y' if len(skipped) == 1 else 'ies'} left out of "
                              f"the {name} data (first: {first['video']}: {first['reason']})", stacklevel=3)

    def run(self, resume: bool, stop_after_steps: int | None) -> FitResult:
        self._clean_start()
        if resume:
            self._resume()
        net = self.model
        if self.ctx.distributed:
            ids = [self.ctx.device] if self.ctx.device.type == "cuda" else None
            net = DistributedDataParallel(self.model, device_ids=ids)
        cfg = self.config
        stopped = False
        try:
            while self.progress["epoch"] < cfg.epochs and not stopped:
                stopped = self._train_epoch(net, stop_after_steps)
                if not stopped:
                    self._end_epoch()
        finally:
            if self.logger is not None:
                self.logger.close()
            if self.mask_head is not None:
                self.mask_head.remove()  # the returned model carries no training hook
        return FitResult(self.out_dir, self.progress["global_step"], self.progress["epoch"], stopped,
                         self.progress["best"], self.history, self.model)

    def _train_epoch(self, net: torch.nn.Module, stop_after_steps: int | None) -> bool:
        cfg, p = self.config, self.progress
        epoch = p["epoch"]
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(p["step_in_epoch"] * cfg.batch_size)
        self.train_set.set_epoch(epoch)
        loader = DataLoader(self.train_set, batch_size=cfg.batch_size, sampler=self.sampler, drop_last=True,
                            collate_fn=collate_clips, num_workers=cfg.data.num_workers,
                            pin_memory=self.ctx.device.type == "cuda")
        bar = None
        if self.show_progress:
            from tqdm import tqdm
            bar = tqdm(total=self.steps_per_epoch, initial=p["step_in_epoch"], unit="step", dynamic_ncols=True,
                       desc=f"epoch {epoch + 1}/{cfg.epochs}")
        start, clips = time.perf_counter(), 0
        try:
            for batch in loader:
                loss = self._step(net, batch)
                p["step_in_epoch"] += 1
                clips += len(batch["video_id"]) * self.ctx.world_size
                if loss is not None:
                    p["global_step"] += 1
                    if self.logger is not None:
                        self.logger.step(p["global_step"], loss, self.scheduler.get_last_lr()[0])
                rate = clips / max(time.perf_counter() - start, 1e-9)
                if bar is not None:
                    bar.set_postfix(loss=f"{loss:.4f}" if loss is not None else "-", clips_s=f"{rate:.2f}")
                    bar.update(1)
                if cfg.checkpoint_every_steps and p["global_step"] % cfg.checkpoint_every_steps == 0:
                    self._write_state()
                if stop_after_steps is not None and p["global_step"] >= stop_after_steps:
                    self._write_state()
                    return True
        finally:
            if bar is not None:
                bar.close()
        self.train_seconds = time.perf_counter() - start
        self.epoch_clips = clips
        return False

    def _end_epoch(self) -> None:
        cfg, p = self.config, self.progress
        loss_sum, loss_count, skipped, _ = distributed.all_sum(self.ctx, self.accum.tolist())
        row: dict[str, Any] = {
            "epoch": p["epoch"] + 1, "step": p["global_step"],
            "train_loss": loss_sum / loss_count if loss_count else math.nan,
            "lr": self.scheduler.get_last_lr()[0], "skipped": int(skipped),
            "clips_per_s": self.epoch_clips / max(self.train_seconds, 1e-9),
            "train_seconds": self.train_seconds,
        }
        row.update(self._validate())
        p["epoch"] += 1
        p["step_in_epoch"] = 0
        self.accum.zero_()
        if self.ctx.is_main:
            score = self._score(row)
            improved = p["best"] is None or score > p["best"]
            extra = {"epoch": p["epoch"], "step": p["global_step"], "metrics": _finite(row),
                     "train_config": self.config.to_dict()}
            save_checkpoint(self.model, self.out_dir / "last.safetensors", extra=extra)
            if improved:
                p["best"] = score
                save_checkpoint(self.model, self.out_dir / "best.safetensors", extra=extra)
            p["last_row"] = dict(row)  # the state keeps the row: a kill before the log below loses nothing
        self._write_state()  # first the state, then the log: a resumed run never logs an epoch twice
        if self.ctx.is_main:
            self.logger.epoch(row)
            self.history.append(row)
            print(_summary(row, cfg.epochs), flush=True)


def _bce(table: ScoreTable) -> float:
    if not len(table):
        return math.nan
    p = np.clip(np.asarray(table.scores, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(table.labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not (isinstance(v, float) and not math.isfinite(v))}


def _summary(row: dict[str, Any], epochs: int) -> str:
    return (f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f}, {row['clips_per_s']:.2f} clips/s, "
            f"{row['skipped']} skipped | val loss {row['val_loss']:.4f}, acc {row['val_acc']:.3f}, "
            f"auc {row['val_auc']:.3f}, {row['val_skipped']} skipped")
