"""One help: the top-level --help shows the main job's usage and key options and every subcommand.

The command line keeps copies of a few things so that parsing costs no torch import (the one-line
helps, the method names, some defaults); these tests keep the copies equal to the originals.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import subprocess
import sys

import pytest

from istvt_explain.cli import SUBCOMMANDS, main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_top_level_help_shows_the_main_job_and_every_command() -> None:
    code, out, err = run("--help")
    assert code == 0 and err == ""
    for text in ("VIDEO --out", "--demo", "--json", "--frames", "--weights", "--method", "--face", "--device"):
        assert text in out, text
    lines = out.splitlines()
    for name, (_, help_text) in SUBCOMMANDS.items():
        assert sum(line.split()[:1] == [name] for line in lines) == 1, name  # one line each
        assert any(line.strip().startswith(name) and help_text in line for line in lines), name


def test_no_arguments_prints_the_usage_and_exits_2() -> None:
    code, out, err = run()
    assert code == 2 and "VIDEO --out" in err and out == ""


def test_version() -> None:
    import istvt_explain as ie

    assert run("--version")[:2] == (0, f"istvt-explain {ie.__version__}\n")


def test_a_misspelt_command_is_named() -> None:
    code, _, err = run("trian")
    assert code == 2 and err.strip() == "istvt-explain: error: 'trian' is neither a command nor a file " \
                                        "(did you mean train?)"


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_one_line_helps_match_the_modules(name: str) -> None:
    module_path, help_text = SUBCOMMANDS[name]
    assert importlib.import_module(module_path).HELP.splitlines()[0] == help_text


def test_copies_match_the_library() -> None:
    from istvt_explain import segments
    from istvt_explain.cli import explain_video
    from istvt_explain.explain import METHODS, available_methods
    from istvt_explain.pipeline import PipelineOptions

    built_in = [m for m in available_methods() if METHODS[m].__module__.startswith("istvt_explain.")]
    assert sorted(explain_video.METHODS) == sorted(built_in)  # other tests may have registered their own
    assert explain_video.DEFAULT_DETECT_EVERY == PipelineOptions().detect_every == 3
    assert (explain_video.DEFAULT_MIN_CLIPS, explain_video.DEFAULT_MAX_GAP) == (segments.DEFAULT_MIN_CLIPS,
                                                                                segments.DEFAULT_MAX_GAP)


def test_choice_copies_match_the_library() -> None:
    from istvt_explain.analysis.perturbations import available_perturbations
    from istvt_explain.cli import choices
    from istvt_explain.data import faces
    from istvt_explain.data.datasets import READERS
    from istvt_explain.data.datasets.ffpp import COMPRESSIONS, MANIPULATIONS
    from istvt_explain.models import available_presets
    from istvt_explain.precision import PRECISIONS
    assert choices.PRECISIONS == PRECISIONS
    assert list(choices.PRESETS) == available_presets()
    assert list(choices.DATASETS) == sorted(READERS)
    assert choices.FFPP_COMPRESSIONS == tuple(COMPRESSIONS) and choices.FFPP_MANIPULATIONS == tuple(MANIPULATIONS)
    assert list(choices.PERTURBATIONS) == list(available_perturbations())
    assert choices.CROP_MARGIN == faces.CROP_MARGIN


@pytest.mark.parametrize("command", ["model-info", "preprocess", "evaluate-explanations", "sensitivity", "train",
                                     "evaluate", "calibrate", "figures", "hard-samples", "scan"])
def test_every_command_help_imports_no_torch(command: str) -> None:
    code = (f"import sys\nfrom istvt_explain.cli import main\ntry:\n    main([{command!r}, '--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False", f"{command} --help imported torch"
