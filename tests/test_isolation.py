"""Crash isolation: a runtime that crashes or hangs on an artifact becomes that route's error, and the
run goes on with the other routes (real child processes, real signals)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphmint import validators
from graphmint.pipeline.run.results import ModelResult
from graphmint.pipeline.validate import TrustOptions, validate_path
from graphmint.validators.base import Runner


class SegfaultsOnLoad(Runner):
    """A native runtime that dies while loading the artifact."""

    name = "segfaults-on-load"

    def activate_impl(self) -> None:
        os.kill(os.getpid(), signal.SIGSEGV)

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        raise AssertionError("never loaded")


class AbortsOnRun(Runner):
    """A native runtime that aborts on the first input it is given."""

    name = "aborts-on-run"

    def activate_impl(self) -> None:
        self.runtime = "aborts on run"

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        os.abort()


class HangsOnRun(Runner):
    name = "hangs-on-run"

    def activate_impl(self) -> None:
        self.runtime = "hangs on run"

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        time.sleep(600)
        return []


@pytest.fixture
def broken_runners(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (SegfaultsOnLoad, AbortsOnRun, HangsOnRun):
        monkeypatch.setitem(validators.RUNNERS, cls.name, f"{__name__}:{cls.__name__}")


def _with_runners(source: Path, target: Path, runners: Mapping[str, str]) -> Path:
    """A copy of a published model whose manifest names other runners for some routes."""
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    for entry in manifest["routes"]:
        entry["runner"] = runners.get(entry["route"], entry["runner"])
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


@pytest.mark.usefixtures("broken_runners")
def test_crashing_and_hanging_runtimes_become_errors(
    torch_zoo: tuple[Path, dict[str, ModelResult]], tmp_path: Path
) -> None:
    out, _ = torch_zoo
    folder = _with_runners(
        out / "SmallCNN",
        tmp_path / "SmallCNN",
        {"onnx": "segfaults-on-load", "torch-export": "aborts-on-run", "torchscript-script": "hangs-on-run"},
    )
    start = time.perf_counter()
    result = validate_path(folder, timeout_s=2, trust=TrustOptions(trust=True))
    routes = {r.route: r for r in result.routes}
    assert time.perf_counter() - start < 120
    assert routes["onnx"].status == "error" and routes["onnx"].stage == "load"
    assert "SIGSEGV" in routes["onnx"].reason and "during activate" in routes["onnx"].reason
    assert routes["torch-export"].status == "error"
    assert "SIGABRT" in routes["torch-export"].reason and "during infer" in routes["torch-export"].reason
    assert routes["torchscript-script"].status == "error"
    assert "did not answer infer within 2s" in routes["torchscript-script"].reason
    # a bound it overran, at the run stage, not wrong numbers (the example never answered)
    assert routes["torchscript-script"].diagnosis == "timeout"
    assert "did not finish at test_data_set_0 (stage: run)" in routes["torchscript-script"].reason
    # the run went on: the untouched route still loads and passes after all that
    assert routes["torchscript-trace"].status == "passed"
    assert not result.ok


def test_the_frameworks_a_model_module_names_are_read_without_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forkserver starts preloading a model's framework while graphmint imports the model's module:
    the framework is read off the module's source, which does not run (it would exit here)."""
    import sys

    from graphmint.pipeline.spec.sources.factory import frameworks_named_in

    (tmp_path / "keras_user.py").write_text("import sys\nfrom keras import layers\nsys.exit(3)\n")
    (tmp_path / "plain.py").write_text("import json\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert frameworks_named_in(["keras_user:build"]) == {"tensorflow"}
    assert "keras_user" not in sys.modules
    assert frameworks_named_in(["plain:build", "missing_module:build"]) == set()
    zoo = frameworks_named_in(
        ["graphmint.models.torch_zoo:simple_net", "graphmint.models.keras_zoo:keras_cnn"]
    )
    assert zoo == {"torch", "tensorflow"}
