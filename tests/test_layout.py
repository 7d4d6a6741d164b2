"""The shape of the house: one installed name, imports that run one way, modules a reader can hold.

- graphmint installs one top-level name, `graphmint`: a user's own `pipeline` or `models` package
  is theirs, and graphmint still exports the model it holds.
- Imports run one way, as the data does: models (the zoo and the framework adapters) ← exporters
  (routes and the artifact they write) ← validators (runners, comparisons, verdicts) ← pipeline (the
  orchestration). Nothing imports a layer above its own.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from tests.conftest import ROOT

#: each top-level folder's layer: a module may import its own layer and those below it
LAYERS = {"models": 0, "exporters": 1, "validators": 2, "pipeline": 3}
#: longest module, in lines: past this a module holds more than one concern
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for folder in LAYERS for p in (ROOT / folder).rglob("*.py"))


def _graphmint_imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import of graphmint's own code in `path`, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = path.relative_to(ROOT).parent.parts
                base = package[: len(package) - node.level + 1]
                found.append((node.lineno, ".".join(("graphmint", *base, *filter(None, [node.module])))))
            elif node.module:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] in ("graphmint", *LAYERS)]


def test_the_distribution_installs_one_top_level_name() -> None:
    top_level = metadata.distribution("graphmint").read_text("top_level.txt") or ""
    assert top_level.split() == ["graphmint"]


def test_imports_run_one_way() -> None:
    wrong = []
    for path in _modules():
        own = path.relative_to(ROOT).parts[0]
        for line, name in _graphmint_imports(path):
            parts = name.split(".")
            if parts[0] != "graphmint":
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name!r}, not graphmint.{name}")
            elif len(parts) > 1 and LAYERS[parts[1]] > LAYERS[own]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {own} imports {name} (a layer above)")
    assert not wrong, "\n".join(wrong)


def test_no_module_is_longer_than_the_limit() -> None:
    long = {
        str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


USER_NET = """
import torch


def build():
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
"""


def test_a_user_project_with_its_own_packages_of_the_same_names_exports(tmp_path: Path) -> None:
    """The user's project holds `pipeline/` and `models/` packages, as many projects do; graphmint
    exports `models.nets:build` from it (installed top-level folders once shadowed both)."""
    for name in ("pipeline", "models"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "pipeline" / "mynet.py").write_text(USER_NET)
    (tmp_path / "models" / "nets.py").write_text("from pipeline.mynet import build\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    graphmint = Path(sys.executable).parent / "graphmint"
    ref = "models.nets:build"  # the user's models package, importing from the user's pipeline package
    args = ["export", ref, "--input", "x:float32[batch,4]", "--routes", "torchscript-trace", "--out", "out"]
    proc = subprocess.run(
        [str(graphmint), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((tmp_path / "out" / "build" / "manifest.json").read_text())
    assert [r["status"] for r in manifest["routes"]] == ["passed"]
    assert manifest["outputs"][0]["shape"] == ["batch", 3]


def _imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def test_the_tests_import_each_other_as_the_tests_package() -> None:
    """tests/ is a package: its modules import conftest and each other as `tests.<name>`, the name
    pytest gives them, so no module of it is loaded (and its fixtures defined) a second time under
    its bare file name."""
    tests = ROOT / "tests"
    bare = {p.stem for p in tests.glob("*.py")}
    for path in sorted(tests.glob("*.py")):
        for line, name in _imported(path):
            assert name.partition(".")[0] not in bare, f"{path.name}:{line} imports {name}: use tests.{name}"
    loaded: dict[str, list[str]] = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().parent == tests:
            loaded.setdefault(Path(file).stem, []).append(name)
    assert loaded["conftest"] == ["tests.conftest"]
    assert loaded["__init__"] == ["tests"]
    assert all(names == [f"tests.{stem}"] for stem, names in loaded.items() if stem != "__init__"), loaded
