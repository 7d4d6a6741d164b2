"""Every stage is bounded and every verdict follows its cause: a compile past its budget, a TFLite file
that needs Select TF ops, an output of the wrong shape, a per-layer probe that cannot reproduce a
failure, NaN outputs, an empty model file."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from graphmint.pipeline.cli import main
from graphmint.pipeline.publish.manifest import read_model_manifest
from graphmint.pipeline.publish.staging import Staging
from graphmint.pipeline.run.executors import run_models
from graphmint.pipeline.run.progress import SilentProgress
from graphmint.pipeline.run.stages import Prepared, RunOptions, finish_model, prepare_model
from graphmint.pipeline.spec.specs import make_model_spec
from graphmint.pipeline.validate import validate_path
from graphmint.validators.results import Diagnosis, Status
from tests.conftest import zoo_specs

KERAS_MODELS = textwrap.dedent(
    """
    import keras
    import numpy as np


    def masked_gru():
        tokens = keras.Input((None,), dtype="int32", name="tokens")
        x = keras.layers.Embedding(50, 8, mask_zero=True)(tokens)
        x = keras.layers.Bidirectional(keras.layers.GRU(8))(x)
        return keras.Model(tokens, keras.layers.Dense(3)(x))


    def nan_out():
        x = keras.Input((4,), name="x")
        y = keras.layers.Dense(3)(x)
        return keras.Model(x, keras.layers.Lambda(lambda t: t * np.float32("nan"))(y))
    """
)


TORCH_MODELS = textwrap.dedent(
    """
    import time

    import torch


    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            if x.mean() > 0:
                return self.fc(x)
            return -self.fc(x)


    def branchy():
        return Branchy()


    class Sleepy(torch.nn.Module):
        def forward(self, x):
            time.sleep(0.3)  # a graph break: compiled, every call still sleeps
            return x * 2


    def sleepy():
        return Sleepy()
    """
)


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("causes_user")
    (folder / "kmodels.py").write_text(KERAS_MODELS)
    (folder / "tmodels.py").write_text(TORCH_MODELS)
    return folder


def test_a_branch_on_a_tensor_value_is_diagnosed_with_its_source_line(
    user_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`if x.mean() > 0` in forward: the trace keeps one branch (it fails where inputs take the other)
    and torch.export cannot guard on it; both name the cause and the line, not a wrapper's error."""
    monkeypatch.chdir(user_dir)
    spec = make_model_spec(
        name="branchy", ref="tmodels:branchy", inputs=["x:float32[batch,4]"], dims=["batch=1..8"]
    )
    options = RunOptions(
        out=user_dir / "out-branchy", routes=("torchscript-trace", "torch-export"), cache=False
    )
    [result] = run_models([spec], options)
    routes = {r.route: r for r in result.routes}
    for name in ("torchscript-trace", "torch-export"):
        route = routes[name]
        assert route.status in (Status.FAILED, Status.ERROR) and route.diagnosis == Diagnosis.DATA_DEPENDENT
        assert route.reason.startswith(
            "data-dependent control flow: the forward branches on a tensor's value at tmodels.py:13 "
            "(`if x.mean() > 0:`)"
        ), route.reason
    assert "NameError" not in routes["torch-export"].reason  # a lookup torch made on the way is no cause
    assert "GuardOnDataDependentSymNode" in routes["torch-export"].reason


def test_a_compile_past_its_budget_is_unsupported_and_the_model_still_publishes(tmp_path: Path) -> None:
    """torch.compile of a zoo model in its child, stopped by a 1 s export budget: a default route is
    `unsupported` with the stage and the time, and the model publishes with its other route."""
    spec = replace(next(s for s in zoo_specs("torch") if s.name == "SimpleNet"), routes=None)
    options = RunOptions(out=tmp_path / "out", cache=False)
    prepared = prepare_model(spec, options, SilentProgress())
    assert isinstance(prepared, Prepared)
    cells = {c.route: c for c in prepared.cells}
    assert not cells["torch-compile"].required  # a default route: the user named none
    with Staging(options.out, spec.name) as staged:
        assert staged.path is not None
        compiled = cells["torch-compile"].run(staged.path, replace(options, export_timeout_s=1.0))
        traced = cells["torchscript-trace"].run(staged.path, options)
        prepared.result.routes.extend([compiled, traced])
        result = finish_model(prepared, staged, options, SilentProgress())
    assert compiled.status == Status.UNSUPPORTED and compiled.diagnosis == Diagnosis.TIMEOUT
    assert "did not finish compiling within 1s (stage: export)" in compiled.reason, compiled.reason
    assert compiled.seconds < 60
    assert traced.status == Status.PASSED
    assert result.published is not None
    statuses = {r.route: r.status for r in read_model_manifest(Path(result.published)).routes}
    assert statuses == {"torch-compile": "unsupported", "torchscript-trace": "passed"}


def test_a_call_past_its_budget_is_an_overrun_not_a_wrong_answer(
    user_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.compile'd in time, but each call takes 0.3 s against a --timeout of 0.1 s: the route did
    not finish its run, which for a default route is `unsupported` with the stage, not `failed`."""
    monkeypatch.chdir(user_dir)
    spec = make_model_spec(
        name="sleepy", ref="tmodels:sleepy", inputs=["x:float32[batch,4]"], dims=["batch=1..2"]
    )
    options = RunOptions(out=user_dir / "out-sleepy", cache=False)
    prepared = prepare_model(spec, options, SilentProgress())
    assert isinstance(prepared, Prepared)
    with Staging(options.out, spec.name) as staged:
        assert staged.path is not None
        cell = next(c for c in prepared.cells if c.route == "torch-compile")
        result = cell.run(staged.path, replace(options, timeout_s=0.1))
    assert result.status == Status.UNSUPPORTED and result.diagnosis == Diagnosis.TIMEOUT, result.reason
    assert "(stage: run)" in result.reason and "within 0.1s" in result.reason


def test_a_tflite_file_that_needs_select_tf_ops_is_judged_by_its_content(
    user_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A masked bidirectional GRU converts only with Select TF ops: the file's Flex ops decide, the
    same way through `export` (reached through the `edge` group, judged as a default route is) and
    through `run` (a named route): unsupported, naming the ops and the upstream cause, never where an
    interpreter happened to fail."""
    monkeypatch.chdir(user_dir)
    model = ["--input", "tokens:int32[batch,seq]", "--dim", "batch=1..2", "--dim", "seq=2..6@4"]
    model += ["--range", "tokens=0..49", "--routes", "edge"]  # for a Keras model: tflite
    code = main(["export", "kmodels:masked_gru", *model, "--out", "out"])
    capsys.readouterr()
    assert code == 0
    [exported] = json.loads((user_dir / "out" / "report.json").read_text())["models"]
    tflite = next(r for r in exported["routes"] if r["route"] == "tflite")
    assert tflite["status"] == "unsupported", tflite["reason"]
    assert "Select TF op(s) (the Flex delegate)" in tflite["reason"]
    assert "LiteRT#6458" in tflite["upstream"]
    assert (user_dir / "out" / "masked_gru" / "manifest.json").is_file()

    (user_dir / "flex.toml").write_text(
        '[[models]]\nname = "gru"\nref = "kmodels:masked_gru"\ninputs = ["tokens:int32[batch,seq]"]\n'
        'dims = ["batch=1..2", "seq=2..6@4"]\nranges = ["tokens=0..49"]\n'
    )
    code = main(["run", "flex.toml", "--routes", "tflite", "--out", "out-run"])
    capsys.readouterr()
    [ran] = json.loads((user_dir / "out-run" / "report.json").read_text())["models"]
    [named] = ran["routes"]
    assert named["status"] == "unsupported" and named["stage"] == "load", named["reason"]
    assert named["diagnosis"] == tflite["diagnosis"] == "unrunnable-content"
    assert "TensorList" in named["reason"] and "Select TF op(s)" in named["reason"], named["reason"]
    assert named["upstream"] == tflite["upstream"]
    # unsupported with its cause, as a default route's would be: the run is not failed for it
    assert code == 0


def test_a_wrong_output_shape_is_named_and_a_probe_that_cannot_reproduce_says_so(tmp_path: Path) -> None:
    """Keras's TimeDistributed over an unknown time axis returns 2 frames of 3 inside tf.function (an
    upstream bug): the diagnosis names the output, the axis and the dim; the per-layer probe, whose
    graph computes the right shape, says it does not reproduce the failure."""
    spec = make_model_spec(
        name="TimeDistributed",
        ref="graphmint.models.corpus_keras:time_distributed_net",
        inputs=["frames:float32[batch,time,8,8,3]"],
        dims=["batch=1..2", "time=1..3@3"],
    )
    [result] = run_models([spec], RunOptions(out=tmp_path, routes=("tf-function",), cache=False))
    [route] = result.routes
    assert route.status == Status.FAILED and route.diagnosis == Diagnosis.SHAPE
    assert "output 'output' has 2 where eager has 3 on axis 1 (dim 'time' is 3" in route.reason, route.reason
    assert "does not reproduce the failure" in route.reason
    assert "every one of" not in route.reason
    assert route.details.divergence.reproduced is False


def test_nan_outputs_are_named_by_route(user_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Keras model whose output is NaN: the SavedModel route fails, saying so, with no exception."""
    monkeypatch.chdir(user_dir)
    spec = make_model_spec(
        name="nan", ref="kmodels:nan_out", inputs=["x:float32[batch,4]"], dims=["batch=1..2"]
    )
    [result] = run_models([spec], RunOptions(out=user_dir / "out-nan", routes=("saved-model",), cache=False))
    [route] = result.routes
    assert route.status == Status.FAILED
    assert "NaN" in route.reason and "'lambda'" in route.reason, route.reason


def test_an_empty_model_file_is_named(tmp_path: Path) -> None:
    """An ONNX folder whose model.onnx is zero bytes: the file is named as empty, not its test data."""
    from onnx import numpy_helper

    folder = tmp_path / "model"
    (folder / "test_data_set_0").mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"")
    ones = np.ones((1, 2), np.float32)
    for name, kind in (("x", "input"), ("y", "output")):
        tensor = numpy_helper.from_array(ones, name).SerializeToString()
        (folder / "test_data_set_0" / f"{kind}_0.pb").write_bytes(tensor)
    [route] = validate_path(folder).routes
    assert route.status == Status.ERROR
    assert route.reason.startswith("model.onnx is empty (0 bytes)"), route.reason
