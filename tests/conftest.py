"""Shared fixtures: the zoo is run once per session and every test reads from that run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

# the tests run models again on purpose (and change runners between runs): the cache of published
# models is off for them, but for the tests of the cache itself (test_cache.py), which turn it on
os.environ["GRAPHMINT_CACHE"] = "off"

from graphmint.pipeline.run.results import ModelResult, RouteResult
from graphmint.pipeline.spec.config import load_config
from graphmint.pipeline.spec.specs import ModelSpec
from graphmint.validators.results import Status

#: the environment the session started with, for the processes tests start: importing a framework
#: here changes this process's own (TensorFlow imports JAX, which sets TF_CPP_MIN_LOG_LEVEL=1), and a
#: child that inherited that would not log as a user's run does
START_ENV = dict(os.environ)

ROOT = Path(__file__).resolve().parent.parent
ZOO_CONFIG = ROOT / "graphmint.toml"


#: third-party models as tests build their specs: make_model_spec(name=..., **THIRD_PARTY[name], ...)
THIRD_PARTY: dict[str, dict[str, Any]] = {
    "Bert": {
        "ref": "graphmint.models.corpus_torch:bert",
        "inputs": ["input_ids:int64[batch,seq]", "attention_mask:int64[batch,seq]"],
        "dims": ["batch=1..4", "seq=1..16@8"],
        "ranges": ["input_ids=0..99"],
        "generator": "graphmint.models.corpus_torch:text_inputs",
    },
    "ViT": {
        "ref": "graphmint.models.corpus_torch:vit",
        "inputs": ["pixel_values:float32[batch,3,32,32]"],
        "dims": ["batch=1..4"],
    },
    "BertBackbone": {
        "ref": "graphmint.models.corpus_keras:bert_backbone",
        "inputs": [],
        "dims": ["batch=1..3", "dim1=2..16@8"],
        "ranges": ["token_ids=0..99", "segment_ids=0..1", "padding_mask=1..1"],
    },
}


#: the opt-in deployment targets, each run by the zoo fixtures only on the models named here: the
#: others have a test module of their own that runs them on the zoo models the issue of each names
#: (tests/test_executorch.py, test_litert.py, test_openvino.py); `make artifacts` runs them all
TARGET_MODELS: dict[str, tuple[str, ...]] = {
    "executorch": (),
    "litert-torch": (),
    "openvino": (),
    "keras-torch": ("KerasSimpleNet",),
}


def zoo_specs(framework: str, reduced: bool = False, targets: bool = False) -> list[ModelSpec]:
    """Zoo models of one framework, told apart by their factory module (no framework is imported).

    Without `reduced`, their reduced-precision routes are left out: tests/test_precision.py runs
    those on one model of each framework (`make artifacts` on all). Without `targets`, the deployment
    targets are left out but where TARGET_MODELS keeps them."""
    from graphmint.exporters import get_route
    from graphmint.exporters.base import Precision

    module = {"torch": "graphmint.models.torch_zoo", "tensorflow": "graphmint.models.keras_zoo"}[framework]
    specs = [s for s in load_config(ZOO_CONFIG) if s.ref.partition(":")[0] == module]
    if reduced:
        return specs

    def kept(spec: ModelSpec, route: str) -> bool:
        if not targets and spec.name not in TARGET_MODELS.get(route, (spec.name,)):
            return False
        return get_route(framework, route).precision == Precision.FP32

    return [replace(s, routes=[r for r in s.routes if kept(s, r)]) if s.routes else s for s in specs]


def assert_as_declared(spec: ModelSpec, result: RouteResult) -> None:
    """A zoo route passes, or it is a known limitation its model's config entry declares
    (`[models.known_failures]`), reported as skipped with that reason. Any other skip or
    `unsupported` (a route that stopped applying, a runtime gone missing) fails, and so does a
    declared route that passes: its declaration is stale."""
    where = f"{spec.name} × {result.route}: {result.status}: {result.reason}"
    why = spec.known_failures.get(result.route)
    if why is None:
        assert result.status == Status.PASSED, f"{where} (not a declared known limitation)"
    else:
        assert result.status == Status.SKIPPED, f"{where} (declared in known_failures)"
        assert result.reason.startswith(f"known limitation: {why} (observed "), where


@pytest.fixture(scope="session", autouse=True)
def warm_children() -> None:
    """Import both zoos before the first child process starts, so the forkserver preloads both
    frameworks and no test's children pay for importing one (this is what `run_models` does too)."""
    from graphmint.pipeline.run.isolation import preload
    from graphmint.pipeline.spec.loader import resolve_callable

    specs = load_config(ZOO_CONFIG)
    preload(spec.ref for spec in specs)
    for spec in specs:
        resolve_callable(spec.ref)
    preload()


@pytest.fixture(scope="session")
def torch_zoo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, ModelResult]]:
    """Every PyTorch zoo model through every route its config entry names, published once."""
    from graphmint.pipeline.run.executors import available_cores, run_models
    from graphmint.pipeline.run.stages import RunOptions

    out = tmp_path_factory.mktemp("torch-zoo")
    results = run_models(zoo_specs("torch"), RunOptions(out=out, jobs=available_cores()))
    return out, {r.name: r for r in results}


@pytest.fixture(scope="session")
def keras_zoo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, ModelResult]]:
    """Every Keras zoo model through every TensorFlow route, published once."""
    from graphmint.pipeline.run.executors import available_cores, run_models
    from graphmint.pipeline.run.stages import RunOptions

    out = tmp_path_factory.mktemp("keras-zoo")
    results = run_models(zoo_specs("tensorflow"), RunOptions(out=out, jobs=available_cores()))
    return out, {r.name: r for r in results}


@pytest.fixture
def graphmint_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python -m graphmint.pipeline ARGS` in a subprocess, in `cwd` (default: a fresh temporary
    folder)."""

    def run(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**START_ENV, "PYTHONPATH": os.pathsep.join([str(ROOT), START_ENV.get("PYTHONPATH", "")])}
        return subprocess.run(
            [sys.executable, "-m", "graphmint.pipeline", *args],
            cwd=cwd or tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
