"""`graphmint validate` on ONNX files older than ONNX Runtime's kernels: checked on an upgraded copy."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphmint.pipeline.cli import main
from graphmint.pipeline.validate import validate_path
from graphmint.validators.onnx_upgrade import ORT_MIN_OPSET, UPGRADE_OPSET

BACKEND_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"


def _listing(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its sha256: what validating must leave as it was."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _refused_by_ort(model_path: Path) -> str:
    """ONNX Runtime's load error for `model_path`; a model that loads has nothing to upgrade."""
    try:
        ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        return str(exc)
    pytest.fail(f"ONNX Runtime {ort.__version__} loads {model_path} as it is: pick an older model")


@pytest.mark.parametrize(
    "folder",
    [
        "pytorch-converted/test_BatchNorm2d_eval",  # BatchNormalization-6: inference mode is an attribute
        "pytorch-operator/test_operator_addmm",  # Gemm-6 and Add-6 with legacy broadcast attributes
    ],
)
def test_old_opset_is_validated_on_an_upgraded_copy(
    folder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / Path(folder).name
    shutil.copytree(BACKEND_DATA / folder, copy)
    assert "NOT_IMPLEMENTED" in _refused_by_ort(copy / "model.onnx")
    from_opset = onnx.load(str(copy / "model.onnx")).opset_import[0].version
    assert from_opset < ORT_MIN_OPSET
    before = _listing(copy)

    result = validate_path(copy)

    assert result.ok, [(r.status, r.reason) for r in result.routes]
    [route] = result.routes
    assert route.status == "passed"
    assert route.details.opset_upgrade.from_opset == from_opset
    assert route.details.opset_upgrade.to_opset == UPGRADE_OPSET
    assert "NOT_IMPLEMENTED" in route.details.opset_upgrade.original_load_error
    assert f"upgraded from opset {from_opset} to opset {UPGRADE_OPSET}" in route.reason
    # the upgraded copy ran and compared on ONNX Runtime itself, not only on the reference evaluator
    ran = {c.runner: c for c in route.checks}
    assert ran["onnxruntime"].status == "passed" and ran["onnxruntime"].points
    assert ran["onnx-reference"].status == "passed"
    assert route.dump()["opset_upgrade"]["to_opset"] == UPGRADE_OPSET
    assert _listing(copy) == before, "validate changed the user's folder"

    assert main(["validate", str(copy)]) == 0
    assert f"upgraded from opset {from_opset} to opset {UPGRADE_OPSET}" in capsys.readouterr().out


def test_old_opset_that_ort_loads_is_left_as_it_is() -> None:
    folder = BACKEND_DATA / "pytorch-converted" / "test_ConstantPad2d"
    assert onnx.load(str(folder / "model.onnx")).opset_import[0].version < ORT_MIN_OPSET
    [route] = validate_path(folder).routes
    assert route.status == "passed" and "opset_upgrade" not in route.details and not route.reason


def _dynamic_batch_gemm_6(folder: Path) -> None:
    """A Linear layer as an opset-6 exporter wrote it, with a dynamic batch dim, and one data set.

    ONNX Runtime has no Gemm-6 kernel, and onnx.version_converter's Gemm 6->7 adapter needs every dim
    as a number, so the upgrade cannot help.
    """
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], broadcast=1, transB=1)],
        "linear",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)], ir_version=3)
    onnx.checker.check_model(model, full_check=True)
    folder.mkdir()
    onnx.save(model, str(folder / "model.onnx"))
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 4), (3, 4), (3,)))
    data = folder / "test_data_set_0"
    data.mkdir()
    for i, (name, value) in enumerate((("x", x), ("w", w), ("b", b))):
        (data / f"input_{i}.pb").write_bytes(numpy_helper.from_array(value, name).SerializeToString())
    (data / "output_0.pb").write_bytes(numpy_helper.from_array(x @ w.T + b, "y").SerializeToString())


def test_failed_upgrade_is_an_error_naming_both_failures(tmp_path: Path) -> None:
    folder = tmp_path / "linear_opset6"
    _dynamic_batch_gemm_6(folder)
    assert "NOT_IMPLEMENTED" in _refused_by_ort(folder / "model.onnx")
    before = _listing(folder)

    result = validate_path(folder)

    assert not result.ok
    [route] = result.routes
    assert (route.status, route.stage) == ("error", "load")
    assert "\n" not in route.reason
    assert "ONNX Runtime could not load opset 6" in route.reason
    assert "Could not find an implementation for Gemm(6)" in route.reason  # ONNX Runtime's own error
    assert f"upgrading to opset {UPGRADE_OPSET} with onnx.version_converter failed" in route.reason
    assert "is a param instead of an int" in route.reason  # the converter's own error
    assert "opset_upgrade" not in route.details
    assert _listing(folder) == before
