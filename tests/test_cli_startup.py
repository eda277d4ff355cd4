"""Instant answers: the package, --help, --version and bad input never import torch.

Why not a timing test: on a shared machine wall times vary tenfold; what makes the command line
slow is an import of torch (or timm, Captum, OpenCV, matplotlib) where none is needed, and that is
what these tests look for, in a fresh interpreter each.  ``benchmarks/bench_cli_startup.py`` times it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "timm", "captum", "cv2", "matplotlib", "scipy")


def heavy_imports(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cli(argv: list[str]) -> str:
    """Run ``cli.main(argv)`` swallowing its output and exit status (only the imports matter here)."""
    return ("import contextlib, io\nfrom istvt_explain.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass")


def test_import_istvt_explain_does_not_import_torch() -> None:
    assert heavy_imports("import istvt_explain") == []


def test_public_names_resolve_lazily() -> None:
    """Every public name imports its module on first use; ``explain`` stays the function."""
    import istvt_explain as ie

    for name in ("explain", "create_model", "load_demo_model", "Explanation", "InputError", "ISTVT"):
        assert name in dir(ie) and getattr(ie, name) is not None
    with pytest.raises(AttributeError):
        ie.no_such_name  # noqa: B018
    assert callable(ie.models.preset_config)  # subpackages too, as with the eager imports


def test_a_subpackage_is_reachable_as_an_attribute() -> None:
    code = "import istvt_explain as ie\nassert callable(ie.models.preset_config) and ie.data.video.VideoReader"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_explain_stays_the_function_when_the_subpackage_loads_first() -> None:
    """Importing ``istvt_explain.attribution`` (as the pipeline does) sets a package attribute of that name."""
    code = ("import istvt_explain.pipeline, istvt_explain as ie, types\n"
            "assert callable(ie.explain) and not isinstance(ie.explain, types.ModuleType), ie.explain\n"
            "from istvt_explain import explain\nassert callable(explain)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("name", ["register_method", "Attribution", "judge_explanations"])
def test_names_added_by_the_lead_are_in_the_lazy_table(name: str) -> None:
    import istvt_explain as ie

    assert name in ie.__all__
    try:
        assert getattr(ie, name) is not None
    except (AttributeError, ImportError):  # not in its module yet: a normal error, not a broken package
        pytest.skip(f"{name} is not defined yet")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], [], ["x.mp4", "--help"], ["scan", "--help"],
                                  ["trian"]])
def test_help_and_version_do_not_import_torch(argv: list[str]) -> None:
    assert heavy_imports(cli(argv)) == []


def test_bad_input_is_refused_before_torch(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"never read: the checks come first")
    header = b'{"__metadata__":{"format":"istvt-explain","temperature":"1e-300"}}'  # a crafted checkpoint
    crafted = tmp_path / "crafted.safetensors"
    crafted.write_bytes(len(header).to_bytes(8, "little") + header)
    cases = [
        [str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o.mp4")],
        [str(video), "--out", str(tmp_path / "o.avi")],
        [str(video), "--out", str(tmp_path / "no" / "o.mp4")],
        [str(video), "--out", str(tmp_path / "o.mp4"), "--stride", "0"],
        [str(video), "--out", str(tmp_path / "o.mp4"), "--weights", str(tmp_path / "none.safetensors")],
        [str(video), "--out", str(tmp_path / "o.mp4"), "--weights", str(crafted)],
        ["evaluate", "--config", "demo", "--weights", str(crafted), "--out", str(tmp_path / "e")],
        ["scan", str(tmp_path / "missing"), "--out", str(tmp_path / "R")],
    ]
    for argv in cases:
        assert heavy_imports(cli(argv)) == [], argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crafted.safetensors", "v.mp4"]
