"""Independent runtimes for every ONNX artifact: ORT with and without graph optimizations, the
ONNX reference evaluator, and CUDA where there is a device (skipped with a reason where not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphmint.exporters import get_route
from graphmint.pipeline.run.results import ModelResult
from graphmint.pipeline.validate import validate_path
from graphmint.validators import get_runner, runtimes_for
from graphmint.validators.check import combine_checks, diagnosis_of
from graphmint.validators.results import ArtifactCheck, Diagnosis, Stage

#: the runtimes every ONNX file is checked on, its route's runner first
ONNX_RUNTIMES = runtimes_for(get_route("torch", "onnx").runner)
#: those that need a CUDA device (skipped, saying so, where there is none)
CUDA_RUNTIMES = {
    r for r in ONNX_RUNTIMES if "CUDAExecutionProvider" in getattr(get_runner(r), "providers", ())
}


def test_zoo_onnx_checked_on_every_runtime(torch_zoo: tuple[Path, dict[str, ModelResult]]) -> None:
    _, results = torch_zoo
    assert CUDA_RUNTIMES and set(ONNX_RUNTIMES) > CUDA_RUNTIMES
    for name, result in results.items():
        route = next(r for r in result.routes if r.route == "onnx")
        checks = {c.runner: c for c in route.checks}
        assert tuple(checks) == ONNX_RUNTIMES, name
        for runner in (r for r in ONNX_RUNTIMES if r not in CUDA_RUNTIMES):
            assert checks[runner].status == "passed", (name, runner, checks[runner].reason)
            assert checks[runner].max_abs_error is not None
            assert checks[runner].deterministic is not None
        assert "ORT_DISABLE_ALL" in checks["onnxruntime-noopt"].runtime
        assert "ORT_ENABLE_ALL" in checks["onnxruntime"].runtime
        for runner in CUDA_RUNTIMES:
            if checks[runner].status == "skipped":
                assert "CUDAExecutionProvider" in checks[runner].reason


def test_torch_files_have_a_cuda_check_or_its_reason(torch_zoo: tuple[Path, dict[str, ModelResult]]) -> None:
    import torch

    _, results = torch_zoo
    route = next(r for r in results["SimpleNet"].routes if r.route == "torchscript-trace")
    cuda = next(c for c in route.checks if c.runner == "torchscript-cuda")
    if torch.cuda.is_available():
        assert cuda.status == "passed"
    else:
        assert cuda.status == "skipped" and "no CUDA device" in cuda.reason


def _check(runner: str, status: str, reason: str = "") -> ArtifactCheck:
    return ArtifactCheck(runner=runner, runtime="", status=status, stage=Stage.COMPARE, reason=reason)


def test_optimization_only_mismatch_is_named() -> None:
    status, _, reason = combine_checks(
        [
            _check("onnxruntime", "failed", "output 'y': 3 elements off"),
            _check("onnxruntime-noopt", "passed"),
            _check("onnx-reference", "passed"),
            _check("onnxruntime-cuda", "skipped", "no CUDA"),
        ]
    )
    assert status == "failed"
    assert "only with ONNX Runtime graph optimizations on" in reason
    fused = [_check("onnxruntime", "failed", "off"), _check("onnxruntime-noopt", "passed")]
    assert diagnosis_of(fused) == Diagnosis.RUNTIME_FUSION  # typed, for the report's advice
    both = [_check("onnxruntime", "failed", "off"), _check("onnxruntime-noopt", "failed", "off")]
    status, _, reason = combine_checks(both)
    assert status == "failed" and "only with" not in reason
    assert diagnosis_of(both) == Diagnosis.NUMBERS
    assert (
        combine_checks([_check("onnxruntime", "passed"), _check("onnxruntime-cuda", "skipped", "x")])[0]
        == "passed"
    )


def test_reference_evaluator_skips_an_op_it_lacks(tmp_path: Path) -> None:
    """A contrib op ORT has but the reference evaluator does not: ORT checks it, the other says why not."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    node = helper.make_node("FusedMatMul", ["a", "b"], ["y"], domain="com.microsoft", alpha=2.0)
    model = helper.make_model(
        helper.make_graph([node], "g", [a, b], [y]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
    )
    onnx.save(model, str(tmp_path / "model.onnx"))
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    data = tmp_path / "test_data_set_0"
    data.mkdir()
    for file, array, name in (("input_0", xa, "a"), ("input_1", xb, "b"), ("output_0", 2 * xa @ xb, "y")):
        (data / f"{file}.pb").write_bytes(numpy_helper.from_array(array, name=name).SerializeToString())
    [route] = validate_path(tmp_path).routes
    checks = {c.runner: c for c in route.checks}
    assert route.status == "passed", route.reason
    assert checks["onnxruntime"].status == checks["onnxruntime-noopt"].status == "passed"
    assert checks["onnx-reference"].status == "skipped"
    assert "FusedMatMul" in checks["onnx-reference"].reason


@pytest.mark.parametrize("runner", ["onnxruntime-cuda", "torchscript-cuda", "torch-export-cuda"])
def test_cuda_runners_are_registered(runner: str) -> None:
    from graphmint.validators import RUNNERS, get_runner

    assert runner in RUNNERS and get_runner(runner).name == runner
