"""A method of one's own: registered from a plugin file, it works in ie.explain, in the command line's
--method and in evaluate-explanations, exactly as the built-ins do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support import tiny_model

import istvt_explain as ie
from istvt_explain.attribution import registry
from istvt_explain.errors import InputError

PLUGIN = '''
import torch
import istvt_explain as ie


@ie.register_method
class CentreBias(ie.Attribution):
    """Evidence grows towards the middle of the crop; every frame alike."""

    name = "centre-bias"
    label = "Centre bias (plugin)"

    def maps(self, clips, target):
        b, t = clips.shape[:2]
        g = self.model.config.grid
        axis = 1.0 - (torch.arange(g, dtype=torch.float32) - (g - 1) / 2).abs() / g
        spatial = (axis[:, None] * axis[None, :]).expand(b, t, g, g).clone()
        return spatial, spatial.flatten(2).sum(-1)
'''


@pytest.fixture()
def plugin(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "my_method.py"
    path.write_text(PLUGIN)
    monkeypatch.setenv(registry.PLUGIN_VARIABLE, str(path))
    yield path
    registry.METHODS.pop("centre-bias", None)
    registry._loaded.discard(str(path))


def _cli(*args: str, env_plugin: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, registry.PLUGIN_VARIABLE: str(env_plugin)}
    return subprocess.run([sys.executable, "-c", "import sys; from istvt_explain.cli import main; sys.exit(main())", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def test_a_plugin_method_is_listed_and_explains(plugin):
    assert "centre-bias" in ie.available_methods()
    model = tiny_model(depth=1)
    exp = ie.explain(model, torch.rand(2, 3, 3, 64, 64), method="centre-bias")
    assert exp.spatial.shape == (2, 3, 4, 4) and exp.method == "centre-bias"
    assert exp.settings["label"] == "Centre bias (plugin)"
    assert exp.fake_probability.shape == (2,)


def test_maps_with_wrong_shapes_are_refused(plugin):
    class Broken(ie.Attribution):
        name = "broken-shapes"

        def maps(self, clips, target):
            return torch.zeros(clips.shape[0], 4, 4), torch.zeros(clips.shape[0])

    model = tiny_model(depth=1)
    with pytest.raises(ValueError, match="returned maps of the wrong shape: spatial maps"):
        Broken(model).attribute(torch.rand(1, 3, 3, 64, 64))


def test_a_broken_plugin_is_one_clear_error(tmp_path: Path, monkeypatch):
    bad = tmp_path / "bad_plugin.py"
    bad.write_text("raise RuntimeError('boom')\n")
    monkeypatch.setenv(registry.PLUGIN_VARIABLE, str(bad))
    try:
        with pytest.raises(InputError, match="could not be imported: RuntimeError: boom"):
            registry.load_plugins()
    finally:
        registry._loaded.discard(str(bad))


def test_the_command_line_takes_a_plugin_method(plugin, face_video, tmp_path: Path):
    from e2e_support import tiny_weights

    weights = tiny_weights(tmp_path / "w.safetensors")
    report = tmp_path / "r.json"
    done = _cli(str(face_video.path), "--weights", str(weights), "--method", "centre-bias", "--json", str(report),
                env_plugin=plugin)
    assert done.returncode == 0, done.stderr
    assert json.loads(report.read_text())["method"]["name"] == "centre-bias"
    wrong = _cli(str(face_video.path), "--weights", str(weights), "--method", "no-such-method", "--json",
                 str(report), env_plugin=plugin)
    assert wrong.returncode == 2 and "unknown explanation method 'no-such-method'" in wrong.stderr


def test_evaluate_explanations_judges_a_plugin_method(plugin, tmp_path: Path):
    model = tiny_model(depth=1)
    ie.save_checkpoint(model, tmp_path / "small.safetensors")
    done = _cli("evaluate-explanations", "--weights", str(tmp_path / "small.safetensors"), "--methods",
                "centre-bias", "--clips", "2", "--steps", "2", "--no-sanity", "--out", str(tmp_path / "j"),
                env_plugin=plugin)
    assert done.returncode == 0, done.stderr
    payload = json.loads((tmp_path / "j" / "explanation_judging.json").read_text())
    assert set(payload["verdicts"]["centre-bias"]) == {"sanity", "deletion", "insertion", "temporal", "pointing",
                                                       "robustness"}
