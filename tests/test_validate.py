"""`graphmint validate`: golden data in the ONNX model-zoo layout, re-run from disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from graphmint.pipeline.cli import main
from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.golden import read_golden_sets
from graphmint.pipeline.publish.staging import hash_files
from graphmint.pipeline.run.results import ModelResult
from graphmint.pipeline.validate import TrustOptions, validate_path

BACKEND_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
BACKEND_FOLDERS = sorted(
    p
    for kind in ("pytorch-converted", "pytorch-operator", "simple")
    for p in (BACKEND_DATA / kind).iterdir()
    if (p / "model.onnx").is_file()
)


def _alter_first_output(folder: Path) -> None:
    """Add 1 to one element of test_data_set_0/output_0.pb."""
    path = folder / "test_data_set_0" / "output_0.pb"
    tensor = onnx.TensorProto()
    tensor.ParseFromString(path.read_bytes())
    array = numpy_helper.to_array(tensor).copy()
    array.flat[0] += 1
    path.write_bytes(numpy_helper.from_array(array, name=tensor.name).SerializeToString())


def _rehash_golden(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    for golden in manifest["golden"]:
        golden["files"] = [f.dump() for f in hash_files(folder, folder / golden["path"])]
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_published_models_carry_golden_data(torch_zoo: tuple[Path, dict[str, ModelResult]]) -> None:
    out, results = torch_zoo
    spec_inputs = {name: [i.name for i in r.inputs] for name, r in results.items()}
    for name, result in results.items():
        sets = read_golden_sets(out / name)
        assert len(sets) == len(result.golden) >= 2
        assert list(sets[0].inputs) == spec_inputs[name]
        assert list(sets[0].outputs) == [o.name for o in result.outputs]


def test_validate_published_folders(torch_zoo: tuple[Path, dict[str, ModelResult]], tmp_path: Path) -> None:
    out, results = torch_zoo
    for name in results:
        validation = validate_path(out / name, trust=TrustOptions(trust=True))
        assert validation.ok, [(r.route, r.status, r.reason) for r in validation.routes]
        on_disk = {r.route for r in validation.routes if r.status == "passed"}
        assert "onnx" in on_disk and "torchscript-trace" in on_disk
    copy = tmp_path / "SmallCNN"
    shutil.copytree(out / "SmallCNN", copy)
    _alter_first_output(copy)
    with pytest.raises(
        UsageError, match=r"golden data changed since publishing \(test_data_set_0/output_0.pb"
    ):
        validate_path(copy)
    _rehash_golden(copy)  # changed and re-hashed: the numbers are compared, and disagree
    altered = validate_path(copy)
    assert not altered.ok
    assert all(r.status == "failed" for r in altered.routes if r.route == "onnx")
    assert "test_data_set_0" in next(r.reason for r in altered.routes if r.route == "onnx")


def test_validate_catches_a_changed_artifact(
    torch_zoo: tuple[Path, dict[str, ModelResult]], tmp_path: Path
) -> None:
    out, _ = torch_zoo
    copy = tmp_path / "SimpleNet"
    shutil.copytree(out / "SimpleNet", copy)
    with (copy / "onnx" / "model.onnx").open("ab") as f:
        f.write(b"\0")
    onnx_route = next(r for r in validate_path(copy).routes if r.route == "onnx")
    assert onnx_route.status == "error" and "changed" in onnx_route.reason


@pytest.mark.corpus
def test_all_onnx_backend_folders() -> None:
    results = [validate_path(p) for p in BACKEND_FOLDERS]
    passed = [r.path.name for r in results if r.ok]
    assert len(passed) >= 0.95 * len(results), [r.path.name for r in results if not r.ok]
    assert all(route.reason for r in results if not r.ok for route in r.routes)


def test_onnx_backend_folders() -> None:
    results = [validate_path(p) for p in BACKEND_FOLDERS[::12]]  # every folder: test_all_... (corpus)
    passed = [r.path.name for r in results if r.ok]
    assert len(passed) >= 0.9 * len(results), passed
    for r in results:
        if not r.ok:
            assert all(route.reason for route in r.routes), f"{r.path} did not say why"


@pytest.mark.parametrize(
    ("folder", "fragment"),
    [
        ("simple/test_strnorm_model_monday_casesensintive_lower", "string tensor"),
        ("simple/test_gradient_of_add", "training operators"),
    ],
)
def test_folders_it_cannot_run_get_a_reason(folder: str, fragment: str) -> None:
    result = validate_path(BACKEND_DATA / folder)
    assert not result.ok
    assert fragment in result.routes[0].reason


def test_sequence_inputs_get_a_reason(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    seq = helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, None)
    out = helper.make_tensor_value_info("first", TensorProto.FLOAT, None)
    zero = helper.make_tensor("zero", TensorProto.INT64, [], [0])
    graph = helper.make_graph(
        [helper.make_node("SequenceAt", ["seq", "zero"], ["first"])], "g", [seq], [out], [zero]
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "model.onnx"))
    data = tmp_path / "test_data_set_0"
    data.mkdir()
    values = [np.ones(2, dtype=np.float32)]
    (data / "input_0.pb").write_bytes(numpy_helper.from_list(values, name="seq").SerializeToString())
    (data / "output_0.pb").write_bytes(numpy_helper.from_array(values[0], name="first").SerializeToString())
    result = validate_path(tmp_path)
    assert not result.ok
    assert "'seq' is a sequence" in result.routes[0].reason


def test_validate_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = BACKEND_DATA / "pytorch-converted" / "test_ConvTranspose2d"
    assert main(["validate", str(source)]) == 0
    copy = tmp_path / "conv"
    shutil.copytree(source, copy)
    _alter_first_output(copy)
    assert main(["validate", str(copy)]) == 1
    assert "failed" in capsys.readouterr().out
    assert main(["validate", str(copy), "--atol", "2"]) == 0  # the altered element is within 2
    assert main(["validate", str(tmp_path / "nothing")]) == 2


def test_golden_round_trip(tmp_path: Path) -> None:
    from graphmint.pipeline.publish.golden import write_golden_set

    arrays = {"ids": np.arange(6, dtype=np.int64).reshape(2, 3), "mask": np.array([True, False])}
    write_golden_set(tmp_path, 0, arrays, {"y": np.ones((2, 2), dtype=np.float32)})
    [golden] = read_golden_sets(tmp_path)
    assert golden.inputs.keys() == arrays.keys()
    assert all(
        np.array_equal(golden.inputs[k], v) and golden.inputs[k].dtype == v.dtype for k, v in arrays.items()
    )
