"""One help: the top-level --help shows the main job's usage and key options and every subcommand.

The command line reads method names, choices and defaults from torch-free library modules (the method
catalogue, the presets, the pipeline's options), so parsing costs no torch import; it keeps one copy,
the one-line helps of the commands, which these tests hold equal to the modules'.
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


def test_version_prints_the_package_version() -> None:
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


def test_every_catalogued_method_is_a_class_that_carries_its_facts() -> None:
    """The command line reads method names from the torch-free catalogue; each name must be a real class."""
    from istvt_explain.attribution.catalogue import BUILT_IN
    from istvt_explain.attribution.registry import get_method

    for name, facts in BUILT_IN.items():
        cls = get_method(name)
        assert cls.facts is facts and cls.name == name and cls.label == facts.label and cls.signed == facts.signed
        assert cls.__module__.startswith("istvt_explain.attribution.")
        for alias in facts.aliases:
            assert get_method(alias) is cls


def test_the_main_help_lists_the_catalogued_methods_and_library_defaults(capsys) -> None:
    from istvt_explain.attribution.catalogue import BUILT_IN
    from istvt_explain.pipeline.options import PipelineOptions

    with pytest.raises(SystemExit):
        main(["x.mp4", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in BUILT_IN:
        assert name in text, name
    assert f"(default {PipelineOptions().detect_every};" in text and f"(default {PipelineOptions().min_face})" in text


@pytest.mark.parametrize("command", ["model-info", "preprocess", "evaluate-explanations", "sensitivity", "train",
                                     "evaluate", "calibrate", "figures", "hard-samples", "scan"])
def test_every_command_help_imports_no_torch(command: str) -> None:
    code = (f"import sys\nfrom istvt_explain.cli import main\ntry:\n    main([{command!r}, '--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False", f"{command} --help imported torch"
