"""Runtimes with roles: a cross-check runtime (onnx.reference, ORT without optimizations) that crashes
or disagrees where the deployment runtime agrees with eager gives a warning naming the node where it
parts ways; it does not fail the route (unless --strict-runtimes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from graphmint.pipeline.run.stages import RunOptions, run_model
from graphmint.pipeline.spec.specs import make_model_spec
from graphmint.pipeline.validate import validate_path


def _folder(
    root: Path, name: str, node: onnx.NodeProto, inputs: dict[str, np.ndarray], out_rank: int
) -> Path:
    """model.onnx holding one node, and one golden set computed by ONNX Runtime."""
    folder = root / name
    (folder / "test_data_set_0").mkdir(parents=True)
    graph_inputs = [
        helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
        for k, v in inputs.items()
    ]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * out_rank)
    graph = helper.make_graph([node], name, graph_inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(folder / "model.onnx"))
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    [expected] = session.run(None, inputs)
    for index, (key, value) in enumerate(inputs.items()):
        tensor = numpy_helper.from_array(value, key)
        (folder / "test_data_set_0" / f"input_{index}.pb").write_bytes(tensor.SerializeToString())
    tensor = numpy_helper.from_array(expected, "y")
    (folder / "test_data_set_0" / "output_0.pb").write_bytes(tensor.SerializeToString())
    return folder


def test_reference_evaluator_defects_are_warnings_naming_the_operator(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x3 = rng.normal(size=(2, 3, 80)).astype(np.float32)
    folders = {
        "GatherElements": _folder(
            tmp_path,
            "gather",
            helper.make_node("GatherElements", ["x", "i"], ["y"], axis=2, name="gather"),
            {"x": x3, "i": rng.integers(0, 80, size=(2, 3, 80)).astype(np.int64)},
            3,
        ),
        "AveragePool": _folder(
            tmp_path,
            "pool",
            helper.make_node(
                "AveragePool", ["x"], ["y"], kernel_shape=[9, 9], strides=[8, 8], ceil_mode=1, name="pool"
            ),
            {"x": rng.normal(size=(1, 2, 12, 12)).astype(np.float32)},
            4,
        ),
        "GlobalMaxPool": _folder(
            tmp_path, "gmp", helper.make_node("GlobalMaxPool", ["x"], ["y"], name="gmp"), {"x": x3}, 3
        ),
    }
    for op, folder in folders.items():
        result = validate_path(folder)
        [route] = result.routes
        assert route.status == "passed", (op, route.reason)
        assert route.warnings and all(w.startswith("onnx-reference (cross-check)") for w in route.warnings)
        assert f"({op})" in route.warnings[0], route.warnings


def test_a_cross_check_that_disagrees_names_the_node_and_module_it_parts_at(tmp_path: Path) -> None:
    """A torch model whose pooling head onnx.reference computes wrongly: the ONNX route passes on ONNX
    Runtime, and the warning names the AveragePool node, the module it was exported from and the last
    node that agreed."""
    spec = make_model_spec(
        name="CeilPool",
        ref="tests.real_model_defs:ceil_pool_net",
        inputs=["x:float32[batch,3,12,12]"],
        dims=["batch=1..4"],
    )
    result = run_model(spec, RunOptions(out=tmp_path, routes=("onnx",)))
    [route] = result.routes
    assert route.status == "passed" and result.published, route.reason
    [warning] = route.warnings
    assert warning.startswith("onnx-reference (cross-check) failed where onnxruntime passed")
    assert "first diverges at node" in warning and "(AveragePool; module head.pool, AvgPool2d)" in warning
    assert "the last that agreed: node" in warning and "(Relu" in warning


def test_a_cross_check_failed_over_the_grid_alone_keeps_its_reason() -> None:
    """A reduced route's budget is judged over the whole grid: a cross-check can miss it with every
    point holding (OpenVINO on KerasTransformer's int8 ONNX file). There is no point to localize at,
    so its reason stays as it is; this once ended the whole run with a StopIteration."""
    from graphmint.exporters.base import Artifact
    from graphmint.validators.check import Case, localize_cross_checks
    from graphmint.validators.results import ArtifactCheck, PointCheck, Stage, Status

    point = PointCheck(label="example", sizes={"batch": 1}, status=Status.PASSED)
    reason = "output 'output' over the grid: max abs error 0.252 x max|eager| is over 0.15 (budget)"
    deploy = ArtifactCheck(runner="onnxruntime", runtime="ort", status=Status.PASSED, stage=Stage.NONE)
    cross = ArtifactCheck(runner="openvino-onnx", runtime="ov", status=Status.FAILED, stage=Stage.COMPARE)
    checks = [deploy.model_copy(update={"points": [point]}), cross.model_copy(update={"points": [point]})]
    checks[1].reason = reason
    artifact = Artifact("onnx-int8-static", "", "onnxruntime", None, ("x",), ("output",))
    case = Case("example", {"batch": 1}, None, {"x": np.zeros((1, 4), np.float32)}, {})
    localize_cross_checks(artifact, checks, [case], timeout_s=10)
    assert checks[1].reason == reason and checks[1].status == Status.FAILED
