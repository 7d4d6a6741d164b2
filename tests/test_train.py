"""Training steps in static form (graphmint train-check) and twins that are twins (graphmint parity).

The seed's own snippets run as written first (tests/seed_snippets.py: the PyTorch SimpleNet step, the
ModelWithCustom definition, the Keras Sequential and its tf.function train_step), then the same models
go through `graphmint export` and `graphmint train-check`. A torch model that takes another branch
under torch.compile and a Keras layer that behaves differently inside tf.function both fail, naming
the first diverging step and parameter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graphmint.pipeline.cli import main
from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.train.command import TrainOptions, plan_train_check

CONFIG = Path(__file__).resolve().parents[1] / "graphmint.toml"

BRANCHES = '''
import keras
import tensorflow as tf
import torch


class CompiledOnly(torch.nn.Module):
    """Scales its hidden layer only while torch.compile traces it."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(10, 20)
        self.fc2 = torch.nn.Linear(20, 2)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        if torch.compiler.is_compiling():
            h = h * 1.5
        return self.fc2(h)


class GraphOnly(keras.layers.Layer):
    """Passes its input through eagerly, scales it inside a tf.function."""

    def call(self, x):
        return x if tf.executing_eagerly() else x * 1.5


def compiled_only():
    return CompiledOnly()


def graph_only():
    return keras.Sequential(
        [keras.Input((10,), name="x"), keras.layers.Dense(20, activation="relu"), GraphOnly(),
         keras.layers.Dense(2, name="head")]
    )
'''

TRAIN = ["--input", "x:float32[8,10]", "--target", "y:int64[8]", "--range", "y=0..1", "--steps", "5"]


def test_train_check_is_planned_from_its_options_without_a_command_line() -> None:
    """TrainOptions is what pipeline.train reads (the CLI builds it from its flags): one model given as
    module:callable, its target's range apart from the inputs'; a config given flags of one model is
    refused, naming them."""
    options = TrainOptions(
        config="tests.seed_snippets:keras_model",
        inputs=("x:float32[8,10]",),
        target="y:int64[8]",
        ranges=("y=0..1",),
        steps=5,
        seed=3,
    )
    [(spec, recipe)] = plan_train_check(options)
    assert (spec.name, spec.ref, spec.seed, [str(i) for i in spec.inputs]) == (
        "keras_model",
        "tests.seed_snippets:keras_model",
        3,
        ["x:float32[8,10]"],
    )
    assert spec.ranges == {} and (recipe.target_range, recipe.steps, recipe.loss) == (
        (0, 1),
        5,
        "cross-entropy",
    )
    with pytest.raises(UsageError, match="--input, --target describe one model"):
        plan_train_check(TrainOptions(config=str(CONFIG), inputs=("x:float32[8,10]",), target="y:int64[8]"))


def _report(folder: Path) -> dict[str, dict[str, dict[str, object]]]:
    data = json.loads((folder / "train.json").read_text())
    return {m["name"]: {f["form"]: f for f in m["forms"]} for m in data["models"]}


def test_the_seed_snippets_run_as_written_then_export_and_train_check(tmp_path: Path) -> None:
    from tests import seed_snippets

    torch_losses = seed_snippets.torch_training(steps=20)
    assert len(torch_losses) == 20 and torch_losses[-1] < torch_losses[0]
    keras_losses = seed_snippets.keras_training(steps=20)
    assert len(keras_losses) == 20 and keras_losses[-1] < keras_losses[0]
    out = seed_snippets.ModelWithCustom()(seed_snippets.torch.randn(3, 5))
    assert tuple(out.shape) == (3, 2)

    export = ["--out", str(tmp_path / "artifacts"), "--routes", "onnx", "--no-cache"]
    assert main(["export", "tests.seed_snippets:SimpleNet", "--input", "x:float32[batch,10]", *export]) == 0
    assert (
        main(["export", "tests.seed_snippets:ModelWithCustom", "--input", "x:float32[batch,5]", *export]) == 0
    )
    assert (
        main(
            [
                "export",
                "tests.seed_snippets:keras_model",
                "--out",
                str(tmp_path / "artifacts"),
                "--routes",
                "onnx",
                "--no-cache",
            ]
        )
        == 0
    )

    reports = tmp_path / "train"
    assert main(["train-check", "tests.seed_snippets:keras_model", *TRAIN, "--report-dir", str(reports)]) == 0
    forms = _report(reports)["keras_model"]
    assert {name: f["status"] for name, f in forms.items()} == {
        "tf-function": "passed",
        "tf-function-xla": "passed",
    }
    assert all(len(f["steps"]) == 5 for f in forms.values())
    assert (reports / "train.md").is_file() and (reports / "train-junit.xml").is_file()
    assert (reports / "plots" / "keras_model.train.png").stat().st_size > 0


@pytest.mark.long  # the seed snippets' test runs train-check end to end in `make test`
def test_a_zoo_model_trains_alike_eagerly_and_compiled(tmp_path: Path) -> None:
    """SimpleNet's recipe from graphmint.toml: the seed's Adam, lr 0.01, cross-entropy over 2 classes."""
    reports = tmp_path / "reports"
    assert main(["train-check", str(CONFIG), "--models", "SimpleNet", "--report-dir", str(reports)]) == 0
    [model] = json.loads((reports / "train.json").read_text())["models"]
    assert model["recipe"]["optimizer"] == "adam" and model["recipe"]["lr"] == 0.01
    assert model["reference"] == "float64"
    [compiled] = model["forms"]
    assert compiled["form"] == "torch-compile" and compiled["status"] == "passed"
    assert len(compiled["steps"]) == 20
    ratios = [s["ratio"] for s in compiled["steps"]]
    assert max(ratios) <= 1.0 and min(ratios) >= 0.0
    losses = model["losses"]
    assert np.allclose(losses["eager"], losses["torch-compile"], rtol=1e-4)  # the same training


@pytest.mark.parametrize(
    ("ref", "forms", "parameters"),
    [
        ("branches:compiled_only", {"torch-compile"}, ("fc1.", "fc2.")),
        ("branches:graph_only", {"tf-function", "tf-function-xla"}, ("sequential/dense", "sequential/head")),
    ],
    ids=["torch-compile", "tf-function"],
)
def test_a_step_that_differs_when_compiled_names_its_first_step_and_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ref: str, forms: set[str], parameters: tuple[str, ...]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "branches.py").write_text(BRANCHES)
    assert main(["train-check", ref, *TRAIN, "--report-dir", str(tmp_path / "r")]) == 1
    [model] = _report(tmp_path / "r").values()
    assert set(model) == forms
    for form in model.values():
        assert form["status"] == "failed"
        divergence = form["divergence"]
        assert divergence["step"] == 1
        assert divergence["parameter"].startswith(parameters), divergence
        assert divergence["error"] > divergence["bound"]
        assert f"step 1 in {divergence['quantity']}" in form["reason"]
