"""``benchmarks/bench_gpu.py`` on the CPU: the smoke run reaches every section and writes sane numbers.

Why a subprocess: the script is run as a command on the GPU machine, so the test runs it the same
way (its own interpreter, its exit status, its stderr).  What it measures on a CPU means nothing;
that every code path runs and every number is finite and positive is what a later GPU run needs.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"
SECTIONS = ("forward", "profile", "explain", "e2e", "single_pass", "scan", "train", "ddp")
METHODS = ("attention", "rollout", "relevance", "lrp", "spatial-only", "temporal-only", "lrp-attnlrp")
STAGES = ("decode", "detect", "crops", "model", "method", "explain", "render", "encode")
# no compiled cell ran on the CPU; the scan had no error and no worker processes
MAY_BE_ZERO = {"compile_seconds_spent", "videos_failed", "workers"}
KINDS = {"convolution", "matmul/linear/attention", "normalisation", "elementwise/activation", "copies/casts", "other"}


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def numbers(value, path: str = "") -> list[tuple[str, float]]:
    """Every number in a JSON value, with its path (booleans are flags, not numbers)."""
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in numbers(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in numbers(v, f"{path}[{i}]")]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(path, value)]
    return []


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("gpu_smoke")
    return run("--smoke", "--device", "cpu", "--out", str(out)), out


def test_smoke_run_exits_0_and_writes_both_files(smoke) -> None:
    proc, out = smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (out / "gpu.md").read_text()
    for heading in ("Forward pass", "Profile", "Explanation methods", "end to end", "Decode passes",
                    "scan` throughput", "Training", "DDP"):
        assert heading in text
    assert "--smoke --device cpu" in text  # the command is recorded


def test_every_section_has_finite_positive_numbers(smoke) -> None:
    _, out = smoke
    results = json.loads((out / "gpu.json").read_text())
    assert set(SECTIONS) <= set(results)
    measured = numbers({name: results[name] for name in SECTIONS})
    assert measured
    for path, value in measured:
        assert math.isfinite(value), f"{path} = {value}"
        if ".agreement." in path and not path.endswith(".clips"):  # a correlation
            assert -1 <= value <= 1, f"{path} = {value}"
            continue
        if ".kind_shares." in path:  # a kind the model does not use has no share
            assert 0 <= value <= 1, f"{path} = {value}"
            continue
        assert value > 0 or path.rsplit(".", 1)[-1] in MAY_BE_ZERO, f"{path} = {value}"
    meta = results["meta"]
    assert meta["device_type"] == "cpu" and meta["smoke"] is True and meta["complete"] is True
    assert not list(out.glob("*.partial"))


def test_forward_measures_every_eager_cell(smoke) -> None:
    _, out = smoke
    cells = json.loads((out / "gpu.json").read_text())["forward"]["cells"]
    eager = {(c["precision"], c["attention"], c["batch"], c["layout"]): c for c in cells if not c["compiled"]}
    assert set(eager) == ({(p, a, b, "contiguous") for p in ("fp32", "bf16") for a in ("fused", "explicit")
                           for b in (1, 2)} | {("bf16", "fused", b, "channels_last") for b in (1, 2)})
    for cell in eager.values():
        assert cell["status"] == "ok", cell
        assert cell["clips_per_s"] > 0 and cell["peak_mib"] > 0
    compiled = [c for c in cells if c["compiled"]]
    assert len(compiled) == len(eager) - 2  # channels-last is measured eager only
    assert all(c["status"].startswith("skipped:") for c in compiled)  # no torch.compile on the CPU by default


def test_explain_e2e_train_and_ddp_sections(smoke) -> None:
    _, out = smoke
    results = json.loads((out / "gpu.json").read_text())
    # a section that raised holds only {"status": "failed: ..."}
    for name in ("explain", "e2e", "train", "profile", "single_pass", "scan"):
        assert "status" not in results[name], results[name]
    for key in ("methods", "methods_bf16"):
        methods = results["explain"][key]
        assert tuple(methods) == METHODS
        assert all(m["status"] == "ok" and m["ratio"] > 0 for m in methods.values()), methods
    for method in results["explain"]["methods_bf16"].values():  # bf16 maps against fp32, and the nudge for scale
        for agreement in method["agreement"].values():
            assert {"spatial", "temporal", "nudged_fp32_spatial", "nudged_fp32_temporal"} <= set(agreement)
    relevance = results["explain"]["methods_bf16"]["relevance"]["agreement"]["demo_weights"]
    assert relevance["spatial"] > 0.99 and relevance["nudged_fp32_spatial"] > 0.99
    e2e = results["e2e"]
    assert set(e2e["stage_frames_per_s"]) == set(STAGES)
    assert e2e["frames_per_s"] > 0 and e2e["video"]["frames"] == 60 and e2e["real_time_goal_fps"] == 30
    assert e2e["batch_size"] == 4 and e2e["explain_overhead"] > 0  # the CPU's default batch
    train = results["train"]
    assert train["steps_per_s"] > 0 and train["precision"] == "bf16"
    assert train["fraction_of_peak"] == "n/a"  # no peak FLOP/s for a CPU
    assert results["ddp"]["status"].startswith("skipped:")


def test_profile_summary(smoke) -> None:
    """Shares that add up, the top operators in order, launches and a FLOP/s figure, at the forward's best batch."""
    _, out = smoke
    results = json.loads((out / "gpu.json").read_text())
    profile = results["profile"]
    assert "status" not in profile, profile
    assert profile["precision"] == "fp32" and profile["self_time"] == "CPU"  # fp32 on the CPU
    best = max((c for c in results["forward"]["cells"] if c["status"] == "ok" and c["precision"] == "fp32"
                and c["attention"] == "fused" and c["layout"] == "contiguous"), key=lambda c: c["clips_per_s"])
    assert profile["batch"] == best["batch"]
    assert set(profile["kind_shares"]) == KINDS
    assert math.isclose(sum(profile["kind_shares"].values()), 1.0, abs_tol=1e-6)
    top = profile["top_operators"]
    assert 5 <= len(top) <= 15 and all(op["kind"] in KINDS for op in top)
    assert [op["share"] for op in top] == sorted((op["share"] for op in top), reverse=True)
    assert 0 < sum(op["share"] for op in top) <= 1 + 1e-9
    assert profile["kind_shares"]["convolution"] > 0 and profile["kind_shares"]["matmul/linear/attention"] > 0
    assert profile["launches_per_forward"] >= 10 and profile["achieved_flops"] > 0
    assert profile["fraction_of_peak"] == "n/a" and not (out / "profile_trace.json").exists()  # no --trace


def test_single_pass_and_scan(smoke) -> None:
    """Decode passes of the command (3 before the single-pass pipeline, exactly 1 now), and the scan's
    throughput over the three smoke videos, all analysed (the face pass decodes once; the thumbnail
    seeks to its frame)."""
    _, out = smoke
    results = json.loads((out / "gpu.json").read_text())
    single = results["single_pass"]
    assert "status" not in single, single
    assert single["source"] == "the e2e run" and single["video_frames"] == 60
    assert single["decoded_frames"] == 60 and single["decode_passes"] == 1.0, single
    assert single["decode_bound_frames_per_s"] > 0 and single["job_frames_per_s"] > 0
    assert results["e2e"]["decode"]["decoded_frames"] == single["decoded_frames"]
    scan = results["scan"]
    assert "status" not in scan, scan
    assert scan["videos"] == 3 and scan["videos_failed"] == 0 and scan["video"]["frames"] == 60
    assert scan["videos_per_hour"] > 0 and scan["frames_per_s"] > 0 and scan["goal_videos_per_hour"] == 800
    assert math.isclose(scan["frames_per_s"], scan["videos_per_hour"] / 3600 * 60, rel_tol=1e-9)
    assert scan["decode"]["decode_passes"] == 1.0 and scan["decode"]["video_frames"] == 180, scan["decode"]
    text = (out / "gpu.md").read_text()
    assert "decode passes" in text and "videos/hour" in text


def test_profile_and_scan_wait_for_the_time_limit(tmp_path) -> None:
    """A section that cannot end within ``--time-limit`` is skipped at once, and the run still succeeds."""
    proc = run("--smoke", "--device", "cpu", "--only", "profile", "scan", "--time-limit", "1", "--out",
               str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "gpu.json").read_text())
    for name in ("profile", "scan"):
        assert results[name]["status"].startswith("skipped: the run's time limit"), results[name]


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("asked", [("--smoke", "--device", "cuda"), ()], ids=["smoke-device-cuda", "full-run"])
def test_cuda_without_cuda_fails_in_one_line(tmp_path, asked) -> None:
    """Asked for by name, or by the full run's default: refused at once, nothing half-written."""
    proc = run(*asked, "--out", str(tmp_path / "out"), timeout=120)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cuda" in lines[0].lower(), proc.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_smoke_without_a_device_falls_back_to_the_cpu_in_one_line(tmp_path) -> None:
    """``--smoke`` alone runs everywhere: on a machine without CUDA it says so once and measures the CPU.
    Only the DDP section (skipped at once on a CPU) keeps the check short."""
    proc = run("--smoke", "--only", "ddp", "--out", str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    notes = [line for line in proc.stderr.splitlines() if "falls back to the CPU" in line]
    assert len(notes) == 1 and "no CUDA device" in notes[0], proc.stderr
    results = json.loads((tmp_path / "gpu.json").read_text())
    assert results["meta"]["device_type"] == "cpu" and results["meta"]["smoke"] is True
    assert results["ddp"]["status"].startswith("skipped:")


@pytest.mark.slow
def test_ddp_code_path_runs_with_two_gloo_processes(tmp_path) -> None:
    """The NCCL path cannot run here; the same worker with gloo on the CPU checks spawn, setup and steps."""
    proc = run("--smoke", "--device", "cpu", "--only", "train", "ddp", "--ddp-gloo", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "gpu.json").read_text())["ddp"]
    assert ddp["status"] == "ok" and ddp["processes"] == 2 and ddp["backend"] == "gloo", ddp
    assert math.isfinite(ddp["steps_per_s"]) and ddp["steps_per_s"] > 0
    assert math.isfinite(ddp["scaling_efficiency"]) and ddp["scaling_efficiency"] > 0
