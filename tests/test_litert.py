"""LiteRT: the litert-torch route on the torch zoo, LiteRT's CompiledModel as the TFLite cross-check, and
Keras's own ONNX exporter where it writes an op ONNX does not have."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from graphmint.exporters import get_route
from graphmint.exporters.base import ExportContext, ExportState
from graphmint.exporters.tflite_file import input_shape_signatures
from graphmint.exporters.upstream import upstream_reference
from graphmint.pipeline.run.executors import run_models
from graphmint.pipeline.run.stages import RunOptions
from graphmint.pipeline.spec.specs import make_model_spec
from graphmint.validators.results import Status
from tests.conftest import zoo_specs

# looked up, not imported: the runs below import litert-torch's converter in their own processes
if importlib.util.find_spec("litert_torch") is None:
    pytest.skip("litert-torch is not installed (the litert extra)", allow_module_level=True)


#: per zoo model, the upstream issue that keeps litert-torch from keeping its dynamic dims
LOST_DIMS = {"SimpleNet": "litert-torch#685", "SmallCNN": "litert-torch#870", "TransformerBlock": "#870"}


@pytest.mark.parametrize(
    "model",
    ["SimpleNet", *(pytest.param(m, marks=pytest.mark.long) for m in ("SmallCNN", "TransformerBlock"))],
)
def test_zoo_models_whose_dims_litert_torch_cannot_keep_are_unsupported_with_the_upstream_issue(
    tmp_path: Path, model: str
) -> None:
    """SimpleNet's Linear meets its dynamic batch as INT64_MIN (#685); SmallCNN's flatten and
    TransformerBlock's LayerNorm need concrete shapes in litert-torch's JAX lowering (#870). The route is
    unsupported with the issue, never an error, and never a file passed with the dims fixed."""
    # without graphmint.toml's declarations of these limits, which would make each a known-failure skip
    [spec] = [replace(s, known_failures={}) for s in zoo_specs("torch", targets=True) if s.name == model]
    [result] = run_models([spec], RunOptions(out=tmp_path, routes=("litert-torch",), cache=False))
    [route] = result.routes
    assert route.status == Status.UNSUPPORTED, (result.name, route.reason)
    assert "litert-torch cannot keep dynamic dim(s) 'batch'" in route.reason, route.reason
    assert route.details.upstream is not None and LOST_DIMS[model] in route.details.upstream


def test_a_model_whose_dims_litert_torch_keeps_passes_on_both_litert_runtimes(tmp_path: Path) -> None:
    """A conv and a ReLU convert with the batch dynamic (-1 in the file's shape signature); the
    interpreter and CompiledModel each compare every grid point against the eager model."""
    spec = make_model_spec(
        name="ConvReLU",
        ref="tests.real_model_defs:conv_relu",
        inputs=["x:float32[batch,3,8,8]"],
        dims=["batch=1..6"],
    )
    [result] = run_models([spec], RunOptions(out=tmp_path, routes=("litert-torch",), cache=False))
    [route] = result.routes
    assert route.status == Status.PASSED, route.reason
    assert route.artifact is not None and result.published is not None
    assert input_shape_signatures(Path(result.published) / route.artifact)["x"][0] == -1
    checks = {c.runner: c for c in route.checks}
    assert list(checks) == ["tflite", "litert-compiled"]
    assert "ai_edge_litert" in checks["tflite"].runtime, checks["tflite"].runtime
    compiled = checks["litert-compiled"]
    assert compiled.status == Status.PASSED, compiled.reason
    assert "CompiledModel" in compiled.runtime
    assert {p.sizes["batch"] for p in compiled.points} >= {1, 6}
    assert all(o.max_abs_error is not None for p in compiled.points for o in p.outputs)


def test_positions_over_a_dynamic_sequence_are_unsupported_with_the_upstream_issue(tmp_path: Path) -> None:
    """BERT's failure in litert-torch, in eight lines: learned positions are `arange` over the sequence,
    and litert-torch's int64-to-int32 pass compares arange's end with ints, which a dynamic sequence has
    made a graph node. The route names the pass's TypeError and its upstream issue."""
    spec = make_model_spec(
        name="LearnedPositions",
        ref="tests.real_model_defs:learned_positions",
        inputs=["x:float32[batch,sequence]"],
        dims=["batch=1..4", "sequence=1..32"],
    )
    [result] = run_models([spec], RunOptions(out=tmp_path, routes=("litert-torch",), cache=False))
    [route] = result.routes
    assert route.status == Status.UNSUPPORTED, route.reason
    assert "'<=' not supported between instances of 'int' and 'Node'" in route.reason, route.reason
    assert route.details.upstream is not None and "litert-torch#870" in route.details.upstream
    assert "_convert_i64_to_i32" in route.details.upstream


def test_keras_onnx_export_of_a_gelu_model_is_unsupported_not_passed(tmp_path: Path) -> None:
    """keras.Model.export(format='onnx') reports success for exact GELU but leaves TensorFlow's Erfc in
    the graph, which ONNX has no operator for: the strategy says unsupported with tf2onnx's cause."""
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="gelu")])
    label, strategy = get_route("tensorflow", "onnx").strategies[-1]
    assert label == "keras-export"
    ctx = ExportContext(
        model=model,
        framework="tensorflow",
        workdir=tmp_path,
        input_names=("x",),
        output_names=("output_0",),
        example_inputs={"x": np.ones((2, 8), np.float32)},
        dynamic_axes={"x": {0: ("batch", 1, 4)}},
        dtypes={"x": "float32"},
        route="onnx",
    )
    result = strategy(ctx)
    assert result.state == ExportState.UNSUPPORTED, result.reason
    assert "Erfc" in result.reason
    assert "tensorflow-onnx#2463" in (upstream_reference(result.reason) or "")
