"""Where a mismatch starts: for a route that fails on numbers, the first layer whose output the artifact
computes differently (by the noise rule against a float64 probe), and the last layer that matched.

Each model holds one layer deep inside that takes another code path when traced or exported (a GELU
that turns to its tanh approximation): every route that runs the graph must name exactly that layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphmint.pipeline.cli import main

TORCH = ["tests.real_model_defs:deep_divergent", "--input", "x:float32[batch,16]", "--dim", "batch=1..8"]
KERAS = ["tests.keras_model_defs:keras_divergent"]


def _export(tmp_path: Path, args: list[str], routes: str) -> tuple[str, dict[str, dict[str, object]]]:
    code = main(["export", *args, "--routes", routes, "--out", str(tmp_path)])
    assert code == 1  # the divergent layer really changes the numbers
    report = json.loads((tmp_path / "report.json").read_text())
    [model] = report["models"]
    return model["name"], {r["route"]: r for r in model["routes"]}


def _assert_names_the_layer(
    tmp_path: Path, model: str, routes: dict[str, dict[str, object]], first: str, last: str
) -> None:
    markdown = (tmp_path / "report.md").read_text()
    for name, route in routes.items():
        assert route["status"] == "failed", (name, route["reason"])
        divergence = route["divergence"]
        assert isinstance(divergence, dict), (name, route["reason"])
        assert (divergence["first"], divergence["last_matching"]) == (first, last), name
        assert f"first diverging layer at example: {first!r}" in str(route["reason"])
        # the layers before the divergent one all matched, and the plot of every layer's error exists
        layers = [layer["layer"] for layer in divergence["layers"]]
        assert all(layer["passed"] for layer in divergence["layers"][: layers.index(first)])
        png = (tmp_path / "plots" / f"{model}.{name}.layers.png").read_bytes()
        assert png.startswith(b"\x89PNG")
        assert f"plots/{model}.{name}.layers.png" in markdown


@pytest.mark.parametrize(
    "routes", ["torchscript-trace", pytest.param("torch-export,onnx,aot-inductor", marks=pytest.mark.long)]
)
def test_the_first_diverging_torch_module_is_named(tmp_path: Path, routes: str) -> None:
    model, found = _export(tmp_path, TORCH, routes)
    assert set(found) == set(routes.split(","))
    _assert_names_the_layer(tmp_path, model, found, "blocks.1.act", "blocks.1.fc1")


@pytest.mark.parametrize(
    "routes", ["tf-function", pytest.param("saved-model,tflite,onnx", marks=pytest.mark.long)]
)
def test_the_first_diverging_keras_layer_is_named(tmp_path: Path, routes: str) -> None:
    model, found = _export(tmp_path, KERAS, routes)
    _assert_names_the_layer(tmp_path, model, found, "act_1", "fc1_1")


def test_explain_compares_every_layer_of_a_passing_route_and_publishes_nothing(tmp_path: Path) -> None:
    args = [
        "graphmint.models.torch_zoo:small_cnn",
        "--input",
        "x:float32[batch,3,32,32]",
        "--dim",
        "batch=1..4",
    ]
    assert main(["explain", *args, "--routes", "torchscript-trace", "--out", str(tmp_path)]) == 0
    [model] = json.loads((tmp_path / "report.json").read_text())["models"]
    [route] = model["routes"]
    assert route["status"] == "passed" and route["divergence"]["first"] is None
    assert len(route["divergence"]["layers"]) >= 4 and all(
        layer["passed"] for layer in route["divergence"]["layers"]
    )
    assert (tmp_path / "plots" / "small_cnn.torchscript-trace.layers.png").is_file()
    assert not (tmp_path / "small_cnn").exists()  # explain publishes nothing
