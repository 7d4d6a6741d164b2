"""The shape of the house: one installed name, imports that run one way, modules a reader can hold.

- graphmint installs one top-level name, `graphmint`: a user's own `pipeline` or `models` package
  is theirs, and graphmint still exports the model it holds.
- Imports run one way, as the data does: models (the zoo and the framework adapters) ← exporters
  (routes and the artifact they write) ← validators (runners, comparisons, verdicts) ← pipeline (the
  orchestration). Nothing imports a layer above its own.
- Inside pipeline/ too, its subpackages and modules are layers (PIPELINE_LAYERS, lowest first):
  errors, interrupts ← spec ← publish ← run ← validate ← reports ← bench, serving, train ← values
  ← model_flags ← arguments ← cli ← the package's __init__ and __main__. A module may import its own
  subpackage and the layers below; never a peer of its layer, nor a layer above, not even inside a
  function.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path, PurePosixPath

from graphmint.pipeline.publish.manifest import read_model_manifest
from tests.conftest import ROOT

#: each top-level folder's layer: a module may import its own layer and those below it
LAYERS = {"models": 0, "exporters": 1, "validators": 2, "pipeline": 3}
#: pipeline/'s subpackages and top-level modules, lowest layer first: a module imports its own name
#: and those of the layers before its own, never a peer in its layer (bench, serving and train are
#: three uses of what is below them, and none of them of another)
PIPELINE_LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "interrupts"),  # what every part raises; the process's signal state and time limits
    ("spec",),  # config and input specs, the model's factory
    ("publish",),  # what a run leaves on disk: staging, manifest, golden data, signatures
    ("run",),  # the stage sequence, the cache, the executors
    ("validate",),  # published folders checked again from disk
    ("reports",),  # formatters over the results
    ("bench", "serving", "train"),
    ("values",),  # the command line's value types
    ("model_flags",),  # export's and explain's flags: the model, its source, how it is checked
    ("arguments",),  # the command line's parser
    ("cli",),
    ("__init__", "__main__"),  # the public surface (graphmint.pipeline), `python -m`
)
PIPELINE_LEVEL = {name: level for level, names in enumerate(PIPELINE_LAYERS) for name in names}
#: longest module, in lines: past this a module holds more than one concern
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for folder in LAYERS for p in (ROOT / folder).rglob("*.py"))


def _graphmint_imports(path: Path, where: PurePosixPath | None = None) -> list[tuple[int, str]]:
    """(line, imported module) for every import of graphmint's own code in `path` (module level or inside
    a function: ast.walk visits every node), relative ones resolved from `where` (the module's place
    under the root; default: its own). `from graphmint.pipeline import x` imports `graphmint.pipeline.x`."""
    where = where or PurePosixPath(path.relative_to(ROOT).as_posix())
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = where.parent.parts
                base = package[: len(package) - node.level + 1]
                module = ".".join(("graphmint", *base, *filter(None, [node.module])))
            elif node.module:
                module = node.module
            else:
                continue
            if module == "graphmint.pipeline":  # a submodule, or a name of the package's __init__
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
    return [(line, name) for line, name in found if name.split(".")[0] in ("graphmint", *LAYERS)]


def _pipeline_part(parts: tuple[str, ...]) -> str:
    """The pipeline layer name of `graphmint.pipeline.<parts>` (a module path's parts under pipeline/):
    its subpackage or top-level module; a name that is neither comes from the package's __init__."""
    if not parts:
        return "__init__"
    head = parts[0].removesuffix(".py")
    return (
        head
        if (ROOT / "pipeline" / head).is_dir() or (ROOT / "pipeline" / f"{head}.py").is_file()
        else "__init__"
    )


def _pipeline_layer_violations(path: Path, where: PurePosixPath | None = None) -> list[str]:
    """Each import in a pipeline module (at `where` under the root) of a peer or a higher pipeline layer."""
    where = where or PurePosixPath(path.relative_to(ROOT).as_posix())
    own = _pipeline_part(where.parts[1:])
    wrong = []
    for line, name in _graphmint_imports(path, where):
        parts = name.split(".")
        if parts[:2] != ["graphmint", "pipeline"]:
            continue
        target = _pipeline_part(tuple(parts[2:]))
        if target == own:
            continue
        if PIPELINE_LEVEL[target] >= PIPELINE_LEVEL[own]:
            what = "a peer" if PIPELINE_LEVEL[target] == PIPELINE_LEVEL[own] else "a layer above"
            wrong.append(f"{where}:{line}: pipeline.{own} imports {name} ({what})")
    return wrong


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


def test_every_pipeline_part_has_a_layer() -> None:
    """A new subpackage or module of pipeline/ must be given its place in PIPELINE_LAYERS."""
    folder = ROOT / "pipeline"
    parts = {p.parent.name for p in folder.glob("*/__init__.py")} | {p.stem for p in folder.glob("*.py")}
    assert sorted(parts - set(PIPELINE_LEVEL)) == []
    assert sorted(set(PIPELINE_LEVEL) - parts) == []


def test_pipeline_imports_run_down_its_layers() -> None:
    wrong = [
        w for path in sorted((ROOT / "pipeline").rglob("*.py")) for w in _pipeline_layer_violations(path)
    ]
    assert not wrong, "\n".join(wrong)


UPWARD = """
from graphmint.pipeline.errors import UsageError
from .inputs import shape_grid


def late():
    from graphmint.pipeline.run.cache import cache_root
    from graphmint.pipeline import interrupts, run_model

    return cache_root, interrupts, run_model
"""


def test_the_layer_check_sees_an_upward_import_inside_a_function(tmp_path: Path) -> None:
    """A spec module that imports run's cache, and the package's own __init__, inside a function fails
    the check; its imports of errors and of its own subpackage do not."""
    module = tmp_path / "late.py"
    module.write_text(UPWARD)
    wrong = _pipeline_layer_violations(module, PurePosixPath("pipeline/spec/late.py"))
    assert wrong == [
        "pipeline/spec/late.py:7: pipeline.spec imports graphmint.pipeline.run.cache (a layer above)",
        "pipeline/spec/late.py:8: pipeline.spec imports graphmint.pipeline.run_model (a layer above)",
    ]
    peer = _pipeline_layer_violations(module, PurePosixPath("pipeline/interrupts.py"))
    assert "pipeline/interrupts.py:2: pipeline.interrupts imports graphmint.pipeline.errors (a peer)" in peer


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
    manifest = read_model_manifest(tmp_path / "out" / "build")
    assert [r.status for r in manifest.routes] == ["passed"]
    assert manifest.outputs[0].shape == ["batch", 3]


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
