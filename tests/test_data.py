"""The user's own samples (--data) beside the seeded grid, and task-level rules (top-1 agreement)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import numpy_helper

from graphmint.pipeline.cli import main
from graphmint.pipeline.publish.manifest import read_model_manifest
from graphmint.validators.compare import compare_output
from graphmint.validators.tolerance import Criterion, Rule, Tolerance

SIMPLE = ["graphmint.models.torch_zoo:simple_net", "--input", "x:float32[batch,10]", "--dim", "batch=1..64"]


def _samples(folder: Path) -> Path:
    rng = np.random.default_rng(7)
    folder.mkdir()
    np.savez(folder / "a.npz", x=rng.normal(size=(5, 10)).astype(np.float32))
    np.savez(folder / "b.npz", rng.normal(size=(1, 10)).astype(np.float32))  # arr_0: by position
    data_set = folder / "test_data_set_0"
    data_set.mkdir()
    tensor = numpy_helper.from_array(rng.normal(size=(3, 10)).astype(np.float32), "x")
    (data_set / "input_0.pb").write_bytes(tensor.SerializeToString())
    return folder


def test_user_samples_are_checked_and_published_beside_the_grid(tmp_path: Path) -> None:
    data = _samples(tmp_path / "data")
    out = tmp_path / "out"
    assert (
        main(["export", *SIMPLE, "--routes", "torchscript-trace", "--data", str(data), "--out", str(out)])
        == 0
    )
    manifest = read_model_manifest(out / "simple_net")
    labels = [g.label for g in manifest.golden]
    assert labels[-3:] == ["data:a.npz", "data:b.npz", "data:test_data_set_0"]
    check = manifest.routes[0].check
    assert check is not None
    checked = {p.label: p for p in check.points}
    assert {"data:a.npz", "data:b.npz", "data:test_data_set_0"} <= set(checked)
    assert checked["data:a.npz"].sizes == {"batch": 5} and checked["data:a.npz"].status == "passed"
    # the published golden set holds the sample itself
    golden = next(g for g in manifest.golden if g.label == "data:a.npz")
    from onnx import TensorProto

    tensor = TensorProto()
    tensor.ParseFromString((out / "simple_net" / golden.path / "input_0.pb").read_bytes())
    np.testing.assert_array_equal(numpy_helper.to_array(tensor), np.load(data / "a.npz")["x"])


@pytest.mark.parametrize(
    ("name", "arrays", "fragment"),
    [
        ("dtype", {"x": np.zeros((2, 10), np.float64)}, "'x' is float64, the input is float32"),
        ("range", {"x": np.zeros((65, 10), np.float32)}, "batch=65 is outside its range 1..64"),
        ("fixed dim", {"x": np.zeros((2, 9), np.float32)}, "a fixed dim is 10"),
        ("names", {"y": np.zeros((2, 10), np.float32)}, "holds ['y'], the model takes ['x']"),
    ],
)
def test_samples_that_do_not_fit_are_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    arrays: dict[str, np.ndarray],
    fragment: str,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / f"{name.replace(' ', '_')}.npz", **arrays)
    assert main(["export", *SIMPLE, "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "simple_net").exists()


def test_top1_agreement_judges_classifier_logits_instead_of_the_numbers() -> None:
    expected = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 4.0], [2.0, 5.0, 1.0]], np.float32)
    judge = Criterion(Rule.TOP1, Tolerance(1e-5, 1e-4), top1=0.75)
    drifted = expected + np.float32(0.3) * np.array([[1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    same_classes = compare_output("logits", drifted, expected, judge)
    assert same_classes.passed and same_classes.rule == "top1" and same_classes.top1_agreement == 1.0
    assert same_classes.within_tolerance is False  # the numbers moved; the task did not
    flipped = expected.copy()
    flipped[0, 1], flipped[1, 2] = 9.0, 9.0  # two of four rows pick another class
    result = compare_output("logits", flipped, expected, judge)
    assert not result.passed and result.top1_agreement == 0.5
    assert "top-1 agreement 0.500 is below 0.75: 2 of 4 rows" in result.message


def test_top1_is_read_from_the_config(tmp_path: Path) -> None:
    from graphmint.pipeline.spec.config import load_config

    config = tmp_path / "g.toml"
    config.write_text(
        '[[models]]\nname = "a"\nref = "m:f"\ninputs = ["x:float32[batch,4]"]\n'
        "[models.tolerance.outputs.output]\ntop1 = 0.99\n"
    )
    [spec] = load_config(config)
    criterion = spec.tolerances.criterion("onnx", "output", "float32")
    assert (criterion.rule, criterion.top1) == (Rule.TOP1, 0.99)
    assert spec.tolerances.criterion("onnx", "other", "float32").rule == Rule.NOISE


def test_a_configs_data_folder_is_relative_to_the_config(tmp_path: Path) -> None:
    from graphmint.pipeline.spec.config import load_config

    config = tmp_path / "conf" / "g.toml"
    config.parent.mkdir()
    config.write_text(
        '[[models]]\nname = "a"\nref = "m:f"\ninputs = ["x:float32[batch,4]"]\ndata = "samples"\n'
    )
    [spec] = load_config(config)
    assert spec.data == str(tmp_path / "conf" / "samples")
