"""Fault injection: kills at chosen points and corrupt files of each kind cost only the broken item.

Every case of docs/faults.md has a test here.  Kept small for CI: fake worker tasks instead of face
detection, 32 px crops, a 1-layer tiny model.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from support import PRESET, tiny_model

import istvt_explain as ie
from istvt_explain.data.cache import (
    CacheSettings,
    entry_problem,
    is_cached,
    open_cache,
    store_video,
    video_dir,
)
from istvt_explain.data.datasets import CachedClipDataset, VideoEntry
from istvt_explain.data.preprocess import preprocess
from istvt_explain.models.weights import CheckpointError

SIZE, FRAMES = 32, 2
TESTS = Path(__file__).parent


# -- helpers ----------------------------------------------------------------------------------------
def entry(name: str, split: str = "test", label: int = 0) -> VideoEntry:
    return VideoEntry(path=Path(f"/videos/{name}.mp4"), label=label, video_id=name, dataset="toy",
                      manipulation="Deepfakes" if label else "original", split=split)


def fault_task(item: VideoEntry, cache_dir: Path, settings: CacheSettings) -> tuple[str, str, str]:
    """A stand-in for ``process_video`` run in the workers: its video's name says what to do.

    ``die*``: the worker kills itself (as the OOM killer would); ``slow*``: sleeps 60 s after marking
    its start; anything else: stores four random crops at once.
    """
    name = item.path.stem
    (Path(cache_dir).parent / "started").mkdir(exist_ok=True)
    (Path(cache_dir).parent / "started" / name).touch()
    if name.startswith("die"):
        time.sleep(0.3)  # let the others start
        os.kill(os.getpid(), signal.SIGKILL)
    if name.startswith("slow"):
        time.sleep(60)
    store_video(cache_dir, item, fake_clips())
    return item.key, "done", ""


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc), collected while the tree is still connected."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def fake_clips(count: int = 4, size: int = SIZE, seed: int = 0) -> SimpleNamespace:
    crops = np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    return SimpleNamespace(
        crops=crops, crop_frames=np.arange(count), boxes=np.zeros((count, 4), np.float32),
        keypoints=np.full((count, 5, 2), np.nan, np.float32), masks=None, fps=25.0, num_frames=count,
        frame_size=(size, size), face_frames=np.ones(count, bool), num_tracks=1, track_index=0)


def toy_cache(root: Path, names: list[str]) -> Path:
    """A cache of ``names`` (alternately real and fake, test split), four 32 px crops each."""
    cache = open_cache(root / "cache", CacheSettings(image_size=SIZE, frames=FRAMES))
    for i, name in enumerate(names):
        store_video(cache, entry(name, label=i % 2), fake_clips(seed=i))
    return cache


# -- preprocess: workers ----------------------------------------------------------------------------
def test_a_dying_worker_costs_only_its_video(tmp_path):
    names = ["a", "b", "die", "c", "d"]
    cache = tmp_path / "cache"
    report = preprocess([entry(n) for n in names], cache, CacheSettings(image_size=SIZE), workers=2,
                        progress=False, task=fault_task)
    assert sorted(report.done) == ["toy__a", "toy__b", "toy__c", "toy__d"]
    ((path, reason),) = report.failed
    assert path.endswith("die.mp4") and "worker process died" in reason and "SIGKILL" in reason
    failures = json.loads((cache / "failures.json").read_text())
    assert [Path(f["path"]).name for f in failures] == ["die.mp4"]


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from istvt_explain.data.cache import CacheSettings
from istvt_explain.data.preprocess import preprocess
from test_faults import entry, fault_task
try:
    preprocess([entry(n) for n in ("slow1", "slow2", "slow3")], Path({cache!r}), CacheSettings(image_size=32),
               workers=2, progress=False, task=fault_task)
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)
"""


def _start_driver(folder: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER.format(tests=str(TESTS), cache=str(folder / "cache"))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killing_preprocess_leaves_no_process_behind(tmp_path):
    """SIGKILL and SIGTERM of the main process (two runs side by side, to save time)."""
    runs = {sig: (tmp_path / sig.name, None) for sig in (signal.SIGKILL, signal.SIGTERM)}
    runs = {sig: (folder, _start_driver(folder)) for sig, (folder, _) in runs.items()}
    deadline = time.monotonic() + 60
    for folder, proc in runs.values():  # both workers of each run are busy
        while len(list((folder / "started").glob("slow*"))) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
    children = {sig: _children(proc.pid) for sig, (_, proc) in runs.items()}
    assert all(len(c) >= 2 for c in children.values())  # two workers (and the fork server) each
    for sig, (_, proc) in runs.items():
        proc.send_signal(sig)
    errors = {sig: proc.communicate(timeout=30)[1] for sig, (_, proc) in runs.items()}
    left = set().union(*children.values())
    deadline = time.monotonic() + 10
    while any(_running(p) for p in left) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in left if _running(p)]
    folder, proc = runs[signal.SIGTERM]  # handled like Ctrl-C: a clean stop, the failure list written
    assert proc.returncode == 130 and "Traceback" not in errors[signal.SIGTERM]
    assert (folder / "cache" / "failures.json").is_file()


# -- training: kills between the state and the log, half-written files, refused pickles --------------
def _train_config(**top):
    from istvt_explain.train import config_from_dict

    raw = {"name": "faults", "model": {"preset": "tiny", "overrides": {"image_size": SIZE, "frames": FRAMES,
                                                                       "depth": 1}},
           "data": {"kind": "pseudofake_pictures", "train_clips": 4, "val_clips": 2, "test_clips": 2},
           "optim": {"name": "adamw", "lr": 1e-3}, "epochs": 2, "batch_size": 2, "eval_batch_size": 2,
           "seed": 1, "device": "cpu", "threads": 1, "checkpoint_every_steps": 1}
    return config_from_dict({**raw, **top})


def _fit(out: Path, resume: bool = False, **top):
    from istvt_explain.data.synthetic import SyntheticClipDataset
    from istvt_explain.train import fit

    return fit(_train_config(**top), out, train_set=SyntheticClipDataset(4, FRAMES, SIZE),
               val_set=SyntheticClipDataset(2, FRAMES, SIZE, seed=9), progress=False, resume=resume)


class Killed(BaseException):
    """Stands for SIGKILL at a chosen point: nothing after it runs."""


def _scalar_steps(folder: Path) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_a_kill_around_the_epoch_log_never_duplicates_rows_or_values(tmp_path, monkeypatch):
    from istvt_explain.train.logs import RunLogger, read_metrics

    out = tmp_path / "run"
    epoch_log, step_log = RunLogger.epoch, RunLogger.step

    def killed_after_state(self, row):  # the state of epoch 1 is written; its log line is not
        raise Killed

    def killed_after_step_3(self, step, loss, lr):  # step 3 is logged, its state is not written
        step_log(self, step, loss, lr)
        if step == 3:
            raise Killed

    monkeypatch.setattr(RunLogger, "epoch", killed_after_state)
    with pytest.raises(Killed):
        _fit(out)
    monkeypatch.setattr(RunLogger, "epoch", epoch_log)
    monkeypatch.setattr(RunLogger, "step", killed_after_step_3)
    with pytest.raises(Killed):
        _fit(out, resume=True, checkpoint_every_steps=0)  # the state stays at the end of epoch 1
    monkeypatch.setattr(RunLogger, "step", step_log)
    result = _fit(out, resume=True)
    assert result.epochs_done == 2
    assert [int(r["epoch"]) for r in read_metrics(out / "metrics.csv")] == [1, 2]
    steps = _scalar_steps(out / "tensorboard")
    assert steps["train/loss"] == [1, 2, 3, 4] and steps["val/auc"] == [2, 4]


def test_orphaned_part_files_are_removed_at_the_next_start(tmp_path):
    out = tmp_path / "run"
    _fit(out, epochs=1)
    orphans = [out / ".last.safetensors.x1.part", out / "state" / ".last.pt.x2.part"]
    for path in orphans:
        path.write_bytes(b"half a state")
    keep = out / "notes.part"
    keep.write_text("not ours")
    _fit(out, resume=True, epochs=1)
    assert not any(p.exists() for p in orphans) and keep.exists()


@pytest.mark.parametrize("content", ["zip", "pickle"])
def test_refused_pickles_give_one_complete_sentence_and_no_warning(tmp_path, content, recwarn, pickle_exploit):
    import pickle

    from istvt_explain.models.weights import read_state_dict
    from istvt_explain.train.state import load_state

    path = tmp_path / "evil.pt"
    if content == "zip":
        torch.save({"version": 1, "x": pickle_exploit}, path)
    else:
        path.write_bytes(pickle.dumps({"x": pickle_exploit}))
    for load, what in ((load_state, "training state"), (read_state_dict, "weight file")):
        with pytest.raises(CheckpointError) as info:
            load(path)
        message = str(info.value)
        assert message.startswith(f"{path}: refused to load the {what}") and message.endswith(")")
        assert "\n" not in message and "Weights only load failed" not in message
    assert not [w for w in recwarn if "torch" in str(w.filename)]


# -- the cache: an entry is done only when it is complete ---------------------------------------------
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


CORRUPTIONS = {  # what happens to one file of a finished entry, and the reason we expect
    "no_meta": (lambda d: (d / "meta.json").unlink(), "no meta.json"),
    "garbage_meta": (lambda d: (d / "meta.json").write_bytes(os.urandom(64)), "meta.json"),
    "truncated_crops": (lambda d: _truncate(d / "crops.npy"), "crops.npy is unreadable"),
    "random_frames": (lambda d: (d / "frames.npy").write_bytes(os.urandom(300)), "frames.npy is unreadable"),
    "wrong_crop_size": (lambda d: np.save(d / "crops.npy", np.zeros((4, 16, 16, 3), np.uint8)), "crops.npy has shape"),
    "missing_keypoints": (lambda d: (d / "keypoints.npy").unlink(), "keypoints.npy is missing"),
}


def _corrupt_cache(root: Path) -> Path:
    """A cache of two good entries and one broken entry per kind of corruption."""
    names = ["good0", "good1", *CORRUPTIONS]
    cache = toy_cache(root, names)
    for name, (corrupt, _) in CORRUPTIONS.items():
        corrupt(video_dir(cache, entry(name).key))
    return cache


def test_an_incomplete_cache_entry_is_rebuilt(tmp_path):
    cache = _corrupt_cache(tmp_path)
    for name, (_, reason) in CORRUPTIONS.items():
        problem = entry_problem(video_dir(cache, entry(name).key), SIZE)
        assert problem is not None and reason in problem, (name, problem)
        assert not is_cached(cache, entry(name).key, SIZE)
    report = preprocess([entry(n) for n in ["good0", "good1", *CORRUPTIONS]], cache,
                        CacheSettings(image_size=SIZE, frames=FRAMES), progress=False, task=fault_task)
    assert sorted(report.skipped) == ["toy__good0", "toy__good1"]
    assert sorted(report.done) == sorted(entry(n).key for n in CORRUPTIONS) and not report.failed
    assert all(entry_problem(video_dir(cache, entry(n).key), SIZE) is None for n in CORRUPTIONS)


# -- evaluate on imperfect data -----------------------------------------------------------------------
def _evaluate(tmp_path: Path, cache: Path, *extra: str) -> tuple[int, dict, str]:
    from istvt_explain.cli import main

    weights = tmp_path / "w.safetensors"
    ie.save_checkpoint(tiny_model(image_size=SIZE, frames=FRAMES, depth=1), weights)
    config = tmp_path / "eval.yaml"
    config.write_text(f"name: faults\nmodel: {{preset: tiny, overrides: {{image_size: {SIZE}, frames: {FRAMES}, "
                      f"depth: 1}}}}\ndata: {{kind: cached, cache_dir: {cache}}}\ndevice: cpu\neval_batch_size: 4\n")
    out = tmp_path / "eval"
    code = main(["evaluate", "--config", str(config), "--weights", str(weights), "--out", str(out),
                 "--no-progress", *extra])
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
    return code, report, str(out)


def test_evaluate_skips_names_and_counts_every_broken_entry(tmp_path, capsys):
    cache = _corrupt_cache(tmp_path)
    code, report, _ = _evaluate(tmp_path, cache)
    assert code == 0, capsys.readouterr().err
    assert report["clip"]["n"] == 4  # the two good videos, two clips each
    reasons = {s["video"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {entry(n).key for n in CORRUPTIONS}
    for name, (_, reason) in CORRUPTIONS.items():
        assert reason in reasons[entry(name).key]
    assert "skipped 6 video(s)" in capsys.readouterr().out

    code, _, _ = _evaluate(tmp_path, cache, "--strict")
    err = capsys.readouterr().err
    assert code == 1 and "--strict: 6 video(s) skipped" in err and "Traceback" not in err


def test_a_clip_that_breaks_after_the_scan_is_skipped_by_name(tmp_path):
    from istvt_explain.evaluate.detection import report, score_dataset

    cache = toy_cache(tmp_path, ["a", "b"])
    data = CachedClipDataset(cache, frames=FRAMES)
    (video_dir(cache, entry("b").key) / "crops.npy").write_bytes(b"gone bad meanwhile")
    model = tiny_model(image_size=SIZE, frames=FRAMES, depth=1)
    with pytest.warns(UserWarning, match="toy__b"):
        table = score_dataset(model, data, batch_size=2)
    result = report(table)
    assert result["skipped_clips"] == 2 and [s["video"] for s in result["skipped"]] == ["toy__b"]
    assert len(table) == 2


# -- checkpoints and the model's output ---------------------------------------------------------------
def test_non_finite_weights_are_refused_at_load(tmp_path, capsys):
    from istvt_explain.cli import main

    model = tiny_model(image_size=SIZE, frames=FRAMES, depth=1)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")
    path = tmp_path / "nan.safetensors"
    ie.save_checkpoint(model, path)
    with pytest.raises(CheckpointError, match="hold NaN or infinite values"):
        ie.load_model(path)
    assert main(["evaluate", "--config", "demo", "--weights", str(path), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert "NaN" in err and len(err.splitlines()) == 1


def test_a_nan_score_is_an_error_never_a_verdict(tmp_path, capsys):
    """Finite weights so large that the activations overflow: the model outputs NaN at run time."""
    from e2e_support import face_video

    from istvt_explain.cli import main

    video = face_video(tmp_path / "face.mp4")
    model = tiny_model(image_size=PRESET, frames=PRESET, depth=1)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() > 1:
                weight.mul_(1e6)
    weights = tmp_path / "overflow.safetensors"
    ie.save_checkpoint(model, weights)
    report = tmp_path / "report.json"
    code = main([str(video.path), "--weights", str(weights), "--method", "rollout", "--detector", "haar",
                 "--json", str(report), "--out", str(tmp_path / "out.mp4"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "NaN or infinite score" in err and "no verdict" in err
    assert not report.exists()


# -- hostile inputs: crafted checkpoints ---------------------------------------------------------------
EMPTY_TENSOR = '{"dtype":"F32","shape":[0],"data_offsets":[0,0]}'


def _safetensors(path: Path, header: str | bytes) -> Path:
    """A safetensors file of nothing but ``header`` (JSON text), written as the format lays it out."""
    raw = header.encode() if isinstance(header, str) else header
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    return path


def _empty_tensors(path: Path, count: int) -> Path:
    """``count`` empty tensors: 58 MB of header for a million, written without building a dict of them."""
    body = ",".join(f'"t{i}":{EMPTY_TENSOR}' for i in range(count))
    return _safetensors(path, '{"__metadata__":{"format":"istvt-explain"},' + body + "}")


def _with_metadata(source: Path, path: Path, extra_tensors: int = 0, **changes: str) -> Path:
    """``source`` with metadata entries changed (and empty tensors added), its tensor bytes copied as they are."""
    data = source.read_bytes()
    length = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + length])
    header["__metadata__"].update(changes)
    header.update({f"extra.{i}": json.loads(EMPTY_TENSOR) for i in range(extra_tensors)})
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors keeps the tensor data 8-byte aligned
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + length:])
    return path


def _tamper_config(source: Path, path: Path, **fields) -> Path:
    data = source.read_bytes()
    length = struct.unpack("<Q", data[:8])[0]
    config = json.loads(json.loads(data[8:8 + length])["__metadata__"]["config"])
    return _with_metadata(source, path, config=json.dumps({**config, **fields}))


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("checkpoints") / "small.safetensors"
    ie.save_checkpoint(tiny_model(image_size=SIZE, frames=FRAMES, depth=1), path)
    return path


@pytest.fixture(scope="module")
def crafted(small_checkpoint, tmp_path_factory) -> dict[str, Path]:
    """One crafted file per hostile header: each must be refused from its header alone."""
    folder = tmp_path_factory.mktemp("crafted")
    files = {
        "a million empty tensors (58 MB header)": _empty_tensors(folder / "million.safetensors", 1_000_000),
        "20,000 empty tensors under the byte limit": _empty_tensors(folder / "many.safetensors", 20_000),
        "a header nested 100,000 deep": _safetensors(folder / "deep.safetensors", "[" * 100_000 + "]" * 100_000),
        "mlp_ratio 2000": _tamper_config(small_checkpoint, folder / "mlp.safetensors", mlp_ratio=2000),
        "depth 10 million": _tamper_config(small_checkpoint, folder / "deep_model.safetensors", depth=10**7),
        "frames as text": _tamper_config(small_checkpoint, folder / "frames.safetensors", frames="6"),
        "1.7 G parameters, each field in bounds": _tamper_config(small_checkpoint, folder / "big.safetensors",
                                                                 depth=48, embed_dim=2048),
        "its config plus 50 empty tensors": _with_metadata(small_checkpoint, folder / "extra.safetensors",
                                                           extra_tensors=50),
    }
    for value in ("1e-300", "1e300", "0.01", "50"):
        files[f"temperature {value}"] = _with_metadata(small_checkpoint, folder / f"t{value}.safetensors",
                                                       temperature=value)
    return files


@pytest.fixture()
def real_builds(monkeypatch) -> list:
    """Every ``ISTVT`` built with memory behind it (a build on torch's "meta" device allocates nothing)."""
    from istvt_explain.models.istvt import ISTVT

    built, original = [], ISTVT.__init__

    def spy(self, config, *args, **kwargs):
        if torch.empty(0).device.type != "meta":
            built.append(config)
        original(self, config, *args, **kwargs)

    monkeypatch.setattr(ISTVT, "__init__", spy)
    return built


CRAFTED = {  # case -> what the refusal says
    "a million empty tensors (58 MB header)": "header of 58,888,9",
    "20,000 empty tensors under the byte limit": "lists 20,000 tensors",
    "a header nested 100,000 deep": "header is not JSON",
    "mlp_ratio 2000": "mlp_ratio = 2000 is outside its bounds",
    "depth 10 million": "depth = 10000000 is outside its bounds",
    "frames as text": "frames must be an integer",
    "1.7 G parameters, each field in bounds": "parameters, more than the 400,000,000 allowed",
    "its config plus 50 empty tensors": "50 unexpected",
    **{f"temperature {v}": f"stored temperature '{v}' is refused" for v in ("1e-300", "1e300", "0.01", "50")},
}


@pytest.mark.parametrize("case", CRAFTED)
def test_a_crafted_checkpoint_is_refused_from_its_header(case, crafted, real_builds):
    """Before: 1e-300 loaded as T = 0 (every clip p(fake) 0.0, exit 0), 1e300 gave a traceback, a million
    empty tensors cost 102 s and 2.35 GB, mlp_ratio 2000 built 1.5 GB first."""
    path = crafted[case]
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match=re.escape(CRAFTED[case])) as info:
        ie.load_model(path)
    assert time.perf_counter() - started < 2.0, case
    assert len(str(info.value).splitlines()) == 1 and path.name in str(info.value)
    with pytest.raises(CheckpointError):  # into a model of one's own choosing: refused before it is built
        tiny_model(image_size=SIZE, frames=FRAMES, depth=1, weights=path)
    assert real_builds == []  # neither the file's model nor the preset's: refused before either


@pytest.mark.parametrize("case", CRAFTED)
def test_the_command_line_refuses_a_crafted_checkpoint_in_one_line(case, crafted, real_builds, tmp_path, capsys):
    from istvt_explain.cli import main

    video = tmp_path / "v.mp4"
    video.write_bytes(b"never read: the weights are checked first")
    started = time.perf_counter()
    code = main([str(video), "--weights", str(crafted[case]), "--out", str(tmp_path / "x.mp4")])
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("istvt-explain: error:"), err
    assert CRAFTED[case] in err and "Traceback" not in err and elapsed < 2.0 and real_builds == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


@pytest.mark.parametrize("command", [["scan", "{video}", "--out", "{out}"],
                                     ["evaluate", "--config", "demo", "--out", "{out}"],
                                     ["calibrate", "--config", "demo", "--out", "{out}/c.safetensors"],
                                     ["evaluate-explanations", "--out", "{out}"], ["model-info"],
                                     ["figures", "--out", "{out}"], ["hard-samples", "--out", "{out}"],
                                     ["sensitivity", "--out", "{out}"]], ids=lambda c: c[0])
def test_every_command_with_weights_refuses_them_in_one_line(command, crafted, real_builds, tmp_path, capsys):
    from istvt_explain.cli import main

    video = tmp_path / "v.mp4"
    video.write_bytes(b"never read")
    argv = [a.format(video=video, out=tmp_path / "out") for a in command]
    for case in ("temperature 1e300", "a million empty tensors (58 MB header)"):
        started = time.perf_counter()
        code = main([*argv, "--weights", str(crafted[case])])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, (case, err)
        assert time.perf_counter() - started < 2.0 and real_builds == []
    assert not (tmp_path / "out").exists()


def test_a_temperature_inside_its_range_loads(small_checkpoint, tmp_path):
    from istvt_explain.models import check_weight_file

    path = _with_metadata(small_checkpoint, tmp_path / "calibrated.safetensors", temperature="1.359")
    assert check_weight_file(path) is not None
    assert ie.load_model(path).get_temperature() == pytest.approx(1.359)
    for edge in ("0.05", "20"):
        assert ie.load_model(_with_metadata(small_checkpoint, tmp_path / "e.safetensors",
                                            temperature=edge)).get_temperature() == pytest.approx(float(edge))


# -- hostile inputs: a method's maps --------------------------------------------------------------------
class NaNMapsForTests(ie.Attribution):
    """A plugin whose maps hold one NaN: before, the report showed ``importance 1.0`` and exit 0."""

    name = "test-nan-maps"

    def maps(self, clips, target):
        spatial = torch.rand(clips.shape[0], clips.shape[1], self.model.config.grid, self.model.config.grid)
        spatial[-1, 0, 0, 0] = float("nan")
        return spatial, spatial.nan_to_num().flatten(2).sum(-1)


class InfiniteMapsForTests(NaNMapsForTests):
    """Infinite frame importance: before, ``null`` in the report and exit 0."""

    name = "test-inf-maps"

    def maps(self, clips, target):
        spatial = torch.rand(clips.shape[0], clips.shape[1], self.model.config.grid, self.model.config.grid)
        temporal = spatial.flatten(2).sum(-1)
        temporal[0, -1] = float("inf")
        return spatial, temporal


class WrongShapeMapsForTests(NaNMapsForTests):
    """Spatial maps without their frame axis."""

    name = "test-wrong-shape-maps"

    def maps(self, clips, target):
        g = self.model.config.grid
        return torch.rand(clips.shape[0], g, g), torch.rand(clips.shape[0], clips.shape[1])


class NaNResultForTests(NaNMapsForTests):
    """Overrides ``_attribute`` (as the built-ins do) instead of ``maps``: checked all the same."""

    name = "test-nan-result"

    def _attribute(self, clips, target):
        result = super()._attribute(clips, target)
        return result._replace(spatial=torch.full_like(result.spatial, float("nan")))


BROKEN_METHODS = {NaNMapsForTests: "NaN maps", InfiniteMapsForTests: "infinite maps",
                  WrongShapeMapsForTests: "maps of the wrong shape", NaNResultForTests: "NaN maps"}


@pytest.fixture()
def broken_methods():
    """The broken plugins registered for one test, then removed: no other test sees them."""
    from istvt_explain.attribution import registry

    for cls in BROKEN_METHODS:
        registry.register_method(cls)
    yield BROKEN_METHODS
    for cls in BROKEN_METHODS:
        registry.METHODS.pop(cls.name, None)


def test_broken_maps_of_a_plugin_are_one_clear_error(broken_methods):
    from istvt_explain.errors import MethodOutputError

    model = tiny_model(image_size=SIZE, frames=FRAMES, depth=1)
    clips = torch.rand(2, FRAMES, 3, SIZE, SIZE) * 2 - 1
    for cls, problem in broken_methods.items():
        with pytest.raises(MethodOutputError, match=f"method '{cls.name}' returned {problem}") as info:
            ie.explain(model, clips, method=cls.name)
        assert len(str(info.value).splitlines()) == 1
        with pytest.raises(MethodOutputError):
            ie.explain_batches(model, clips, cls.name, batch_size=1)


def test_broken_maps_of_a_built_in_are_one_clear_error(monkeypatch):
    from istvt_explain.attribution.registry import get_method
    from istvt_explain.errors import MethodOutputError

    rollout = get_method("rollout")
    original = rollout._attribute

    def poisoned(self, clips, target):
        result = original(self, clips, target)
        return result._replace(temporal=result.temporal / 0.0 - result.temporal / 0.0)  # NaN everywhere

    monkeypatch.setattr(rollout, "_attribute", poisoned)
    model = tiny_model(image_size=SIZE, frames=FRAMES, depth=1)
    with pytest.raises(MethodOutputError, match="method 'rollout' returned NaN maps"):
        ie.explain(model, torch.rand(1, FRAMES, 3, SIZE, SIZE), method="rollout")


@pytest.fixture(scope="module")
def demo_media(tmp_path_factory) -> tuple[Path, Path]:
    """A short demo video (data.demo_video: 6 real frames, 6 manipulated) and one-block tiny-preset weights."""
    from istvt_explain.data.demo_video import make_demo_video

    folder = tmp_path_factory.mktemp("demo")
    video = make_demo_video(folder / "demo.mp4", frames_per_half=6, size=(320, 240)).path
    weights = folder / "tiny.safetensors"
    ie.save_checkpoint(tiny_model(image_size=PRESET, frames=PRESET, depth=1), weights)
    return video, weights


def test_the_command_line_gives_no_report_for_broken_maps(broken_methods, demo_media, tmp_path, capsys):
    from istvt_explain.cli import main

    video, weights = demo_media
    for cls, problem in broken_methods.items():
        report, out = tmp_path / f"{cls.name}.json", tmp_path / f"{cls.name}.mp4"
        code = main([str(video), "--weights", str(weights), "--method", cls.name, "--detector", "haar",
                     "--json", str(report), "--out", str(out), "--quiet"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert f"{video}: explanation method '{cls.name}' returned {problem}" in err
        assert not report.exists() and not out.exists()


# -- hostile folders and interrupted scans ----------------------------------------------------------------
def _scan(folder: Path, weights: Path, out: Path, *extra: str) -> int:
    from istvt_explain.cli import main

    return main(["scan", str(folder), "--out", str(out), "--weights", str(weights), "--detector", "haar",
                 "--method", "rollout", "-q", *extra])


def _scan_rows(out: Path) -> dict[str, dict]:
    """results.csv by file name (the CSV is UTF-8 whatever the names: a non-UTF-8 one is shown escaped)."""
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        return {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(fh)}


def _fifo_opened(fifo: Path):
    """A check of whether anyone opened ``fifo`` meanwhile, without ever blocking the test.

    A thread waits to open it for writing, which returns once a reader opens it (and then closes it,
    so that the reader sees its end instead of hanging); the check releases the thread itself.
    """
    opened = threading.Event()

    def writer() -> None:
        os.close(os.open(fifo, os.O_WRONLY))
        opened.set()

    threading.Thread(target=writer, daemon=True).start()

    def check() -> bool:
        was = opened.wait(0.2)
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        return was

    return check


def test_hostile_entries_of_a_scanned_folder_are_error_rows(demo_media, tmp_path, capsys):
    """Before: a symlink loop gave a RuntimeError traceback and a non-UTF-8 name a UnicodeEncodeError
    (exit 1, no results.csv, no index.html); a FIFO would have blocked the scan for ever."""
    video, weights = demo_media
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(video, os.fsencode(folder) + b"/caf\xe9.mp4")
    (folder / "loop-a.mp4").symlink_to("loop-b.mp4")
    (folder / "loop-b.mp4").symlink_to("loop-a.mp4")
    (folder / "zero.mp4").symlink_to("/dev/zero")  # a device that never ends, if it were read
    os.mkfifo(folder / "pipe.mp4")
    fifo_opened = _fifo_opened(folder / "pipe.mp4")
    out = tmp_path / "out"
    code = _scan(folder, weights, out)
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    rows = _scan_rows(out)
    assert sorted(rows) == ["caf\\xe9.mp4", "loop-a.mp4", "loop-b.mp4", "pipe.mp4", "zero.mp4"]
    assert rows["caf\\xe9.mp4"]["error"] == "" and rows["caf\\xe9.mp4"]["verdict"] in ("real", "fake")
    assert rows["loop-a.mp4"]["error"] == rows["loop-b.mp4"]["error"] == "symlink loop"
    assert rows["pipe.mp4"]["error"] == "not a regular file (FIFO)"
    assert rows["zero.mp4"]["error"] == "not a regular file (character device)"
    assert all(row["verdict"] == "" for name, row in rows.items() if name != "caf\\xe9.mp4")
    assert "caf\\xe9.mp4" in (out / "index.html").read_text(encoding="utf-8")
    assert not fifo_opened()


class ZeroDivisionForTests(ie.Attribution):
    """A plugin with a bug, switched off by the test: before, a scan with it gave a ZeroDivisionError
    traceback, exit 1 and no results.csv or index.html."""

    name = "test-zero-division"
    broken = True

    def maps(self, clips, target):
        if type(self).broken:
            return 1 / 0
        spatial = torch.rand(clips.shape[0], clips.shape[1], self.model.config.grid, self.model.config.grid)
        return spatial, spatial.flatten(2).sum(-1)


def _live_exceptions(mentioning: str) -> int:
    """How many ZeroDivisionErrors, and exceptions whose message names ``mentioning``, are alive
    (``type(o)``: ``isinstance`` would wake torch's lazy modules)."""
    import gc

    return sum(issubclass(type(o), BaseException) and (type(o) is ZeroDivisionError or mentioning in str(o))
               for o in gc.get_objects())


def test_a_method_that_raises_costs_only_its_video(demo_media, tmp_path, monkeypatch):
    """The plugin raises on the first video and works on the last: an error row, a verdict, and no
    exception (traceback, frames) kept alive once a failed video is recorded, nor while a video whose
    file is broken waits in a batch group."""
    from istvt_explain.attribution import registry
    from istvt_explain.pipeline import PipelineOptions
    from istvt_explain.pipeline.scan import ResultsFolder, scan_videos

    video, weights = demo_media
    videos = [tmp_path / "a.mp4", tmp_path / "broken.mp4", tmp_path / "b.mp4"]
    for copy in videos:
        shutil.copyfile(video, copy)
    videos[1].write_bytes(b"not a video")
    registry.register_method(ZeroDivisionForTests)
    monkeypatch.setattr(ZeroDivisionForTests, "broken", True)
    alive = []

    def progress(path, row, skipped) -> None:
        ZeroDivisionForTests.broken = False  # the second video explains itself without the bug
        alive.append(_live_exceptions(str(tmp_path)))

    try:
        rows = scan_videos(videos, ResultsFolder(tmp_path / "out"), ie.load_model(weights),
                           PipelineOptions(method=ZeroDivisionForTests.name, detector="haar"), weights={},
                           progress=progress)
    finally:
        registry.METHODS.pop(ZeroDivisionForTests.name, None)
    assert rows[0].error == "explanation method 'test-zero-division' failed: ZeroDivisionError: division by zero"
    assert rows[1].error.startswith("not a readable video") and rows[2].verdict in ("real", "fake")
    assert rows[0].verdict == "" and rows[2].error == "" and alive == [0, 0, 0]
    assert (tmp_path / "out" / "results.csv").is_file() and (tmp_path / "out" / "index.html").is_file()


def test_the_command_line_gives_one_line_for_a_method_that_raises(demo_media, tmp_path, capsys, monkeypatch):
    """``scan``: that video's error row, exit 0; ``explain-video``: one line, exit 2; never a traceback."""
    from istvt_explain.attribution import registry
    from istvt_explain.cli import main

    video, weights = demo_media
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(video, folder / "a.mp4")
    registry.register_method(ZeroDivisionForTests)
    monkeypatch.setattr(ZeroDivisionForTests, "broken", True)
    try:
        scan_code = _scan(folder, weights, tmp_path / "out", "--method", ZeroDivisionForTests.name)
        scan_err = capsys.readouterr().err
        code = main([str(video), "--weights", str(weights), "--method", ZeroDivisionForTests.name,
                     "--detector", "haar", "--json", str(tmp_path / "r.json"), "--quiet"])
        err = capsys.readouterr().err.strip()
    finally:
        registry.METHODS.pop(ZeroDivisionForTests.name, None)
    failed = "explanation method 'test-zero-division' failed: ZeroDivisionError: division by zero"
    assert scan_code == 0 and "Traceback" not in scan_err, scan_err
    assert _scan_rows(tmp_path / "out")["a.mp4"]["error"] == failed
    assert code == 2 and err == f"istvt-explain: error: {video}: {failed}" and not (tmp_path / "r.json").exists()


def test_stale_temporaries_of_a_killed_scan_are_removed_at_the_next_start(demo_media, tmp_path, capsys):
    """Only the temporaries that the scan's own writes name (``.NAME.*.part``) go, and only those older
    than the run: other files stay, and so does one written meanwhile (another rank's, at work)."""
    from istvt_explain.pipeline.scan import ResultsFolder

    _, weights = demo_media
    out = ResultsFolder(tmp_path / "out")
    out.create()
    stale = [out.root / ".results.csv.k3j2h1g0.part", out.root / ".index.html.a1b2c3d4.part",
             out.reports / ".clip-0123456789.json.x9y8z7w6.part", out.thumbs / ".clip-0123456789.jpg.q1w2e3r4.part"]
    foreign = [out.root / "notes.part", out.reports / ".draft.txt.part", out.thumbs / "keep.jpg"]
    busy = out.thumbs / ".other-rank-0123456789.jpg.a0s9d8f7.part"
    for path in [*stale, *foreign, busy]:
        path.write_bytes(b"half written")
    os.utime(busy, (time.time() + 3600, time.time() + 3600))
    folder = tmp_path / "in"
    folder.mkdir()
    os.mkfifo(folder / "pipe.mp4")  # one cheap item: an error row, no video decoded
    assert _scan(folder, weights, out.root) == 0, capsys.readouterr().err
    assert [p for p in stale if p.exists()] == [] and all(p.exists() for p in [*foreign, busy])
    assert _scan_rows(out.root)["pipe.mp4"]["error"] == "not a regular file (FIFO)"



def test_a_full_disk_ends_the_scan_in_one_line_with_nothing_half_written(demo_media, tmp_path, capsys, monkeypatch):
    """The disk fills up while a video's report is written, after its thumbnail.  Before: an OSError
    traceback, exit 1, and that thumbnail left without its report."""
    import errno

    video, weights = demo_media
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"not a video")  # recorded (an error row) before the disk is full
    shutil.copyfile(video, folder / "b.mp4")
    write_bytes = Path.write_bytes

    def filling_up(self: Path, data: bytes) -> int:
        if re.fullmatch(r"\.b-\w+\.json\..+\.part", self.name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", filling_up)
    out = tmp_path / "out"
    code = _scan(folder, weights, out)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"istvt-explain: error: {out}: cannot write the results (No space left on device)")
    assert list(out.rglob("*.part")) == [] and list((out / "thumbs").iterdir()) == []
    assert [p.name for p in (out / "reports").iterdir()] == [next((out / "reports").glob("a-*.error.json")).name]
    monkeypatch.setattr(Path, "write_bytes", write_bytes)  # space again: the rerun goes on
    assert _scan(folder, weights, out) == 0
    rows = _scan_rows(out)
    assert rows["b.mp4"]["verdict"] in ("real", "fake") and rows["a.mp4"]["error"].startswith("not a readable video")


KILLED_SCAN_DRIVER = """
import sys, time
import istvt_explain.pipeline.scan.runner as runner
from istvt_explain.cli import main

job = runner._face_clips_job

def slowly(*args):  # 50 ms a video: a kill lands mid-scan
    time.sleep(0.05)
    return job(*args)

runner._face_clips_job = slowly
sys.exit(main(["scan", {folder!r}, "--out", {out!r}, "--weights", {weights!r}, "-q"]))
"""


def test_a_scan_killed_halfway_leaves_every_finished_record_readable(demo_media, tmp_path):
    """Each video's report and CSV row are on disk as soon as it is done, so a SIGKILL loses only the
    video in flight.  Before: ``results.csv`` was written only at the end of the run."""
    _, weights = demo_media
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(60):
        (folder / f"junk{i:02d}.mp4").write_bytes(b"not a video " * 20)  # random bytes can probe as audio
    script = KILLED_SCAN_DRIVER.format(folder=str(folder), out=str(out), weights=str(weights))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    table = out / "results.csv"
    deadline = time.monotonic() + 120
    while (not table.exists() or table.read_text().count("\n") < 11) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.kill()
    proc.communicate()
    with open(table, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert 10 <= len(rows) < 60 and table.read_text().endswith("\n")
    for row in rows:  # every row whole, and its record with it
        assert row["error"].startswith("not a readable video") and row["verdict"] == ""
        assert json.loads((out / row["report"]).read_text())["error"] == row["error"]
    assert _scan(folder, weights, out) == 0  # the rerun goes on and puts the table in order
    rows_after = list(csv.DictReader(open(table, newline="", encoding="utf-8")))
    assert [r["path"] for r in rows_after] == sorted(str(p) for p in folder.iterdir())


SCAN_DRIVER = """
import sys, time
from pathlib import Path
import istvt_explain.data._files as files
from istvt_explain.cli import main

write = files.atomic_write

def slow(path, writer):  # the first record stops mid-write, its temporary on disk, until the signal
    def slowly(tmp):
        writer(tmp)
        Path({marker!r}).touch()
        time.sleep(60)
    write(path, slowly)

files.atomic_write = slow
sys.exit(main(["scan", {folder!r}, "--out", {out!r}, "--weights", {weights!r}, "--detector", "haar",
               "--method", "rollout", "-q", *{extra!r}]))
"""


def test_sigterm_stops_a_scan_as_ctrl_c_does(demo_media, tmp_path):
    """Before: Python's default, the process gone at once (exit -15) with its ``.part`` temporary left."""
    video, weights = demo_media
    folder, out, marker = tmp_path / "in", tmp_path / "out", tmp_path / "writing"
    folder.mkdir()
    shutil.copyfile(video, folder / "a.mp4")
    proc = _start_scan_driver(folder, out, weights, marker)
    _wait_for(marker, proc)
    assert list(out.rglob("*.part")), "the scan is mid-write"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    err = _stderr(marker)
    assert proc.returncode == 130 and err.strip() == "istvt-explain: interrupted", err
    assert list(out.rglob("*.part")) == []


# -- a variable-frame-rate video ------------------------------------------------------------------------
def test_a_variable_frame_rate_video_keeps_its_timestamps(demo_media, tmp_path, capsys):
    """Before: times were index / fps, with fps the Matroska stream's guessed 25: the report's
    frames[].time and the explained video ended at 0.92 s for timestamps up to 2.6 s (the case found
    first: 1.56 s for 3.76 s).  Now both follow the stream's timestamps."""
    from e2e_support import frame_times, variable_rate_video

    from istvt_explain.cli import main
    from istvt_explain.data.clock import FrameTimes
    from istvt_explain.data.media import make_face_video
    from istvt_explain.data.video import VideoReader

    _, weights = demo_media
    shot = make_face_video(tmp_path / "shot.mp4", frames=24, size=(320, 240))
    # 16 frames 40 ms apart, then 8 frames 250 ms apart: a camera that slows down in the dark
    times_ms = [40 * k for k in range(16)] + [600 + 250 * k for k in range(1, 9)]
    video = variable_rate_video(tmp_path / "vfr.mkv", list(VideoReader(shot.path)), times_ms, last_ms=250)
    written = np.array(times_ms) / 1000

    reader = VideoReader(video)
    recorder = FrameTimes(reader.fps)
    for frame in reader.frames():
        recorder.add(frame)
    clock = recorder.clock()
    assert clock.source == "pts" and clock.variable
    np.testing.assert_allclose(clock.times, written, atol=1e-9)  # (a) decoded times are the pts written
    assert clock.duration == pytest.approx(2.85) and clock.fps == pytest.approx(24 / 2.85)

    report, out = tmp_path / "vfr.json", tmp_path / "vfr.mp4"
    code = main([str(video), "--weights", str(weights), "--method", "rollout", "--detector", "haar",
                 "--json", str(report), "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    data = json.loads(report.read_text())
    assert [f["time"] for f in data["frames"]] == pytest.approx(written.tolist(), abs=1e-4)  # (b)
    assert data["input"]["variable_frame_rate"] and data["input"]["duration"] == pytest.approx(2.85)

    input_times, input_duration, input_played = frame_times(video)
    output_times, output_duration, output_played = frame_times(out)
    one_frame = 1 / data["input"]["fps"]
    assert input_duration == pytest.approx(2.85) and input_played == pytest.approx(2.85)
    assert abs(output_duration - input_duration) <= one_frame  # (c) the output lasts as long as the input
    assert abs(output_played - input_played) <= one_frame  # and a player says so
    assert len(output_times) == len(input_times)  # every frame once: none duplicated or dropped
    np.testing.assert_allclose(output_times, input_times, atol=1e-3)


def _start_scan_driver(folder: Path, out: Path, weights: Path, marker: Path, *extra: str) -> subprocess.Popen:
    script = SCAN_DRIVER.format(marker=str(marker), folder=str(folder), out=str(out), weights=str(weights),
                                extra=list(extra))
    return _start_driver_script(script, marker)


def _start_driver_script(script: str, marker: Path) -> subprocess.Popen:
    """``script`` in a process of its own, its stderr into a file (``_stderr``): a pipe would stay open,
    and reading it block, while a worker that inherited it lives on."""
    with open(marker.with_suffix(".err"), "w") as err:
        return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=err)


def _stderr(marker: Path) -> str:
    return marker.with_suffix(".err").read_text()


def _wait_for(marker: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not marker.exists() and time.monotonic() < deadline:
        assert proc.poll() is None, _stderr(marker)
        time.sleep(0.05)
    assert marker.exists(), "the driver never reached its write"


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_scan_workers_end_with_their_parent_however_it_ends(demo_media, tmp_path):
    """SIGKILL and SIGTERM of ``scan --workers 1`` mid-run (two runs side by side, to save time).

    Before: the worker (850 MB with a real model) and the multiprocessing resource tracker lived on
    under PID 1 for minutes after either signal."""
    video, weights = demo_media
    runs = {}
    for sig in (signal.SIGKILL, signal.SIGTERM):
        base = tmp_path / sig.name
        (base / "in").mkdir(parents=True)
        for name in ("a.mp4", "b.mp4", "c.mp4"):
            shutil.copyfile(video, base / "in" / name)
        runs[sig] = base, _start_scan_driver(base / "in", base / "out", weights, base / "writing", "--workers", "1",
                                             "--batch-size", "1")  # a's record is written while b and c are cut
    for base, proc in runs.values():  # each is writing its first record, its worker alive
        _wait_for(base / "writing", proc)
    children = {sig: _children(proc.pid) for sig, (_, proc) in runs.items()}
    left = set().union(*children.values())
    try:
        for found in children.values():
            lines = [_command_line(pid) for pid in found]
            assert any("spawn_main" in line for line in lines), lines
            assert any("resource_tracker" in line for line in lines), lines
        for sig, (_, proc) in runs.items():
            proc.send_signal(sig)
        for _, proc in runs.values():
            proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while any(_running(p) for p in left) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [_command_line(p) for p in left if _running(p)] == []
    finally:  # a worker that outlived its parent must not outlive the test too
        for pid in left:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
    base, proc = runs[signal.SIGTERM]
    err = _stderr(base / "writing")
    assert proc.returncode == 130 and err.strip() == "istvt-explain: interrupted", err
    assert list((base / "out").rglob("*.part")) == []


# -- the main command: SIGTERM, and what a killed run left -------------------------------------------------
MAIN_DRIVER = """
import sys, time
from pathlib import Path
import istvt_explain.pipeline.report as report
from istvt_explain.cli import main

def slow(data, path):  # the report stops half-written, the other outputs staged, until the signal
    Path(path).write_text('{{"verdict": ')
    Path({marker!r}).touch()
    time.sleep(60)

report.write_report = slow
out = Path({out!r})
sys.exit(main([{video!r}, "--weights", {weights!r}, "--detector", "haar", "--method", "rollout", "-q",
               "--out", str(out / "heatmap.mp4"), "--json", str(out / "report.json"),
               "--maps", str(out / "maps.npz"), "--frames", str(out / "frames")]))
"""


def test_sigterm_stops_the_main_command_as_ctrl_c_does(demo_media, tmp_path):
    """Before: the process gone at once (exit -15), its four staged ``.part`` temporaries left beside
    the outputs, and no later run removed them."""
    video, weights = demo_media
    out, marker = tmp_path / "out", tmp_path / "writing"
    out.mkdir()
    script = MAIN_DRIVER.format(marker=str(marker), out=str(out), video=str(video), weights=str(weights))
    proc = _start_driver_script(script, marker)
    _wait_for(marker, proc)
    assert len([p for p in out.iterdir() if ".part" in p.name]) == 4, "every output is staged, the report half"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    err = _stderr(marker)
    assert proc.returncode == 130 and err.strip() == "istvt-explain: interrupted", err
    assert list(out.iterdir()) == []  # no temporary, and no output half-written


def _age(paths: list[Path], seconds: float) -> None:
    for path in paths:
        os.utime(path, (time.time() + seconds, time.time() + seconds))


@pytest.fixture
def other_writers():
    """Writer tags (as ``data._files.writer_tag`` names a process) of a living process, of one that has
    ended, and of a living pid with another start time (a pid reused since the writer died)."""
    from istvt_explain.data._files import process_start_time

    living = subprocess.Popen(["sleep", "60"])
    ended = subprocess.Popen(["true"])
    ended.wait()
    started = process_start_time(living.pid)
    assert started is not None, "the tag needs /proc"
    try:
        yield {"living": f"w{living.pid}-{started}", "ended": f"w{ended.pid}-{started}",
               "reused": f"w{living.pid}-{int(started) + 1}"}
    finally:
        living.kill()
        living.wait()


def test_an_older_temporary_goes_unless_the_process_that_writes_it_still_runs(other_writers, tmp_path):
    """Before: every temporary older than the run went, so a run started earlier and still writing the same
    output lost its file, and failed when it moved it into place."""
    from istvt_explain.data._files import atomic_write, remove_stale_parts, temporary_prefix

    parts = {who: tmp_path / f".report.json.{tag}.a1b2c3d4.part" for who, tag in other_writers.items()}
    parts["untagged"] = tmp_path / ".report.json.q1w2e3r4.part"  # an older version's name
    parts["this process"] = tmp_path / f"{temporary_prefix('report.json')}z9y8x7w6.part"  # left by a failed call
    for path in parts.values():
        path.write_bytes(b"half written")
    _age(list(parts.values()), -3600)
    removed = remove_stale_parts(tmp_path, [".report.json.*.part"], time.time())
    assert sorted(p.name for p in removed) == sorted(parts[w].name for w in ("ended", "reused", "untagged",
                                                                             "this process"))
    assert [p for p in parts.values() if p.exists()] == [parts["living"]]

    names = []
    atomic_write(tmp_path / "report.json", lambda tmp: names.append(Path(tmp).name) or Path(tmp).write_text("{}"))
    assert names[0].startswith(temporary_prefix("report.json")) and names[0].endswith(".part")


def test_a_forked_worker_names_itself_not_its_parent_in_its_temporaries():
    """Preprocessing workers are forked: a tag remembered by the parent would make the parent's next
    clean-up take the workers' half-built entries for its own leftovers."""
    import multiprocessing

    from istvt_explain.data._files import writer_tag

    parent = writer_tag()
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child_tag, child_pid = pool.apply(_tag_and_pid)
    assert child_tag != parent and child_tag.startswith(f"w{child_pid}-")


def _tag_and_pid() -> tuple[str, int]:
    from istvt_explain.data._files import writer_tag

    return writer_tag(), os.getpid()


def test_stale_temporaries_of_a_killed_main_command_are_removed_at_the_next_run(demo_media, tmp_path, capsys,
                                                                                 other_writers):
    """Only the temporaries named after this run's own outputs (staged file or folder, the video writer's
    own) go, and only those older than the run whose writer is gone: another run's, at work meanwhile,
    stays, even when it started before this one."""
    from istvt_explain.cli import main

    video, weights = demo_media
    out = tmp_path / "out"
    (out / ".frames.a1b2c3d4.part").mkdir(parents=True)
    (out / ".frames.a1b2c3d4.part" / "01_frame000003.png").write_bytes(b"half written")
    stale = [out / ".heatmap.mp4.abc123.part", out / ".heatmap.mp4.k3j2h1g0.part.mp4",
             out / "..heatmap.mp4.k3j2h1g0.part.mp4.x9y8z7w6.part", out / ".report.json.q1w2e3r4.part.json",
             out / f".heatmap.mp4.{other_writers['ended']}.k3j2h1g0.part.mp4"]
    foreign = [out / ".other.part", out / "heatmap.mp4.part", out / ".notes.mp4.abc123.part"]
    busy = out / ".heatmap.mp4.fresh1.part"
    earlier_run = [out / f".heatmap.mp4.{other_writers['living']}.p0o9i8u7.part.mp4",
                   out / f".report.json.{other_writers['living']}.l1k2j3h4.part.json"]
    for path in [*stale, *foreign, busy, *earlier_run]:
        path.write_bytes(b"half written")
    stale.append(out / ".frames.a1b2c3d4.part")
    _age([*stale, *foreign, *earlier_run], -3600)
    _age([busy], 3600)
    code = main([str(video), "--weights", str(weights), "--detector", "haar", "--method", "rollout", "-q",
                 "--out", str(out / "heatmap.mp4"), "--json", str(out / "report.json"), "--frames", str(out / "frames")])
    assert code == 0, capsys.readouterr().err
    assert [p for p in stale if p.exists()] == [] and all(p.exists() for p in [*foreign, busy, *earlier_run])
    assert (out / "heatmap.mp4").is_file() and (out / "report.json").is_file()


@pytest.mark.parametrize("command, argv", [
    ("explain_video", ["video.mp4", "--out", "x.mp4"]), ("scan", ["scan", "in", "--out", "results"]),
    ("train", ["train", "--config", "demo"]), ("figures", ["figures"]),
])
def test_every_long_command_takes_sigterm_as_ctrl_c(command, argv, monkeypatch, capsys):
    """SIGTERM raised inside each command's work ends it as Ctrl-C does: exit 130, one line."""
    import importlib

    from istvt_explain.cli import main

    module = importlib.import_module(f"istvt_explain.cli.{command}")

    def work(*args) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises within this
        return 0

    monkeypatch.setattr(module, "_run", work)
    caught = []  # in place of Python's default while the test runs: SIGTERM must never end pytest
    previous = signal.signal(signal.SIGTERM, lambda *_: caught.append(True))
    try:
        code = main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 130 and capsys.readouterr().err == "istvt-explain: interrupted\n" and not caught


def test_stale_temporaries_of_the_figures_cache_are_removed_at_the_next_run(tmp_path):
    """The figures' stage cache: only its own entries' temporaries older than the run go."""
    from istvt_explain.analysis.paper import FigureSettings, StageCache

    cache = tmp_path / "cache"
    cache.mkdir()
    stale = [cache / ".scores-0123456789abcdef.pt.k3j2h1g0.part", cache / "judging-0123456789abcdef.part"]
    keep = [cache / "scores-0123456789abcdef.pt", cache / ".notes.part"]
    busy = cache / ".roc-0123456789abcdef.pt.a1b2c3d4.part"
    for path in [*stale, *keep, busy]:
        path.write_bytes(b"half written")
    _age([*stale, *keep], -3600)
    _age([busy], 3600)
    StageCache(cache, tiny_model(image_size=SIZE, frames=FRAMES, depth=1), SimpleNamespace(ids=["a", "b"]),
               FigureSettings.smoke(), reuse=False, say=print)
    assert [p for p in stale if p.exists()] == [] and all(p.exists() for p in [*keep, busy])


def test_an_interrupted_figure_leaves_no_half_written_file_and_the_next_run_clears_its_temporaries(tmp_path):
    """``figures`` wrote its PNG, PDF and CSV files in place: a SIGTERM mid-write left a truncated one.
    Now each goes through a temporary, and a killed run's temporaries are named by ``OUTPUT_TEMPORARIES``."""
    from matplotlib.figure import Figure

    from istvt_explain.analysis.paper import OUTPUT_TEMPORARIES
    from istvt_explain.data._files import remove_stale_parts
    from istvt_explain.render.style import save_figure

    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    save_figure(fig, tmp_path, "roc")
    whole = (tmp_path / "roc.pdf").read_bytes()

    def interrupted(*args, **kwargs):
        Path(args[0]).write_bytes(b"%PDF-1.4 half")  # the write had begun when the signal came
        raise KeyboardInterrupt

    fig.savefig = interrupted
    with pytest.raises(KeyboardInterrupt):
        save_figure(fig, tmp_path, "roc", formats=("pdf",))
    assert (tmp_path / "roc.pdf").read_bytes() == whole and not list(tmp_path.glob("*.part"))
    stale = [tmp_path / ".roc.png.k3j2h1g0.part", tmp_path / ".scores.csv.a1b2c3d4.part",
             tmp_path / ".summary.json.q1w2e3r4.part", tmp_path / ".roc.pdf.z9x8c7v6.part"]
    keep = [tmp_path / ".notes.part", tmp_path / "roc.png.part", tmp_path / ".roc.txt.k3j2h1g0.part"]
    for path in [*stale, *keep]:
        path.write_bytes(b"half written")
    _age([*stale, *keep], -3600)
    remove_stale_parts(tmp_path, OUTPUT_TEMPORARIES, time.time())
    assert [p for p in stale if p.exists()] == [] and all(p.exists() for p in keep)
