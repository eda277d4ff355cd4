"""The layout's rules (docs/architecture.md), checked on every import statement of the package.

Layers, bottom to top; a module may import its own layer and the layers below it, never above:

    errors, _version  <  data  <  models  <  attribution  <  render  <  evaluate  <  train
                      <  pipeline  <  analysis  <  cli  <  the package's public face (__init__)

Imports inside functions and under ``TYPE_CHECKING`` count too: a late import still ties two layers.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "istvt_explain"
LAYERS = ("errors", "_version", "data", "models", "attribution", "render", "evaluate", "train", "pipeline",
          "analysis", "cli", "__init__")
RANK = {name: (0 if name in ("errors", "_version") else LAYERS.index(name) - 1) for name in LAYERS}


def _unit(module: str) -> str | None:
    """The layer of a dotted module of the package (``istvt_explain.data.video`` -> ``data``)."""
    parts = module.split(".")
    if parts[0] != "istvt_explain":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import of the package in ``path``, relative ones resolved."""
    rel = path.relative_to(root.parent).with_suffix("").parts
    package = list(rel[:-1])  # the package that holds the file (an __init__ belongs to its own package)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names] if node.module is None else [target]
            found += [(node.lineno, t) for t in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, module) for line, module in found if module.split(".")[0] == "istvt_explain"]


def _edges(root: Path = PACKAGE) -> list[tuple[str, int, str, str]]:
    """(file, line, importing layer, imported layer) for every import that crosses layers."""
    edges = []
    for path in sorted(root.rglob("*.py")):
        source = path.relative_to(root).with_suffix("").parts[0]
        for line, module in _imports(path, root):
            target = _unit(module)
            if target is not None and target != source:
                edges.append((str(path.relative_to(root.parent)), line, source, target))
    return edges


def test_the_package_root_holds_the_public_face_errors_and_the_version_only() -> None:
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "_version.py", "errors.py"]


def test_every_folder_is_a_known_layer() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(LAYERS) - {"errors", "_version", "__init__"}


def test_nothing_imports_upward() -> None:
    upward = [f"{path}:{line}: {source} imports {target}" for path, line, source, target in _edges()
              if RANK[target] > RANK[source]]
    assert upward == []


def test_no_two_folders_import_each_other() -> None:
    pairs = {(source, target) for _, _, source, target in _edges()}
    assert sorted(p for p in pairs if (p[1], p[0]) in pairs) == []


@pytest.mark.parametrize("source", ["data", "models", "attribution", "render"])
def test_the_lower_layers_never_reach_a_run_or_a_study(source: str) -> None:
    """The layers a contributor adds methods, readers and figures to stay free of the jobs built on them."""
    reached = {target for _, _, s, target in _edges() if s == source}
    assert not reached & {"pipeline", "analysis", "train", "evaluate", "cli"}


def test_the_check_sees_a_planted_upward_import(tmp_path: Path) -> None:
    """The rule can fail: a data module that imports the pipeline, in a copy of the package, is caught."""
    copy = tmp_path / "istvt_explain"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("assets", "__pycache__"))
    (copy / "data" / "planted.py").write_text("def late():\n    from ..pipeline.run import analyze_video\n")
    upward = [(s, t) for _, _, s, t in _edges(copy) if RANK[t] > RANK[s]]
    assert upward == [("data", "pipeline")]
