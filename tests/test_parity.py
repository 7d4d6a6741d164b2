"""Twins that are twins: the weight bridge makes every zoo pair compute alike eagerly; `graphmint
parity` checks a pair eagerly, as two ONNX files and over training steps, and names the layer where a
pair that is not a twin parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graphmint.pipeline.cli import main
from graphmint.pipeline.spec.config import load_config, twin_tables
from graphmint.pipeline.spec.inputs import GridPoint, make_inputs
from graphmint.pipeline.spec.loader import build_model
from graphmint.pipeline.spec.specs import make_model_spec
from graphmint.pipeline.train.parity import FORWARD_ATOL, keras_inputs
from graphmint.pipeline.train.twins import bridge

CONFIG = Path(__file__).resolve().parents[1] / "graphmint.toml"
SPECS = {s.name: s for s in load_config(CONFIG)}
TWINS = twin_tables(CONFIG)


@pytest.mark.parametrize("twin", TWINS, ids=[t["torch"] for t in TWINS])
def test_every_zoo_pair_computes_alike_with_bridged_weights(twin: dict[str, object]) -> None:
    import torch

    spec = SPECS[str(twin["torch"])]
    if twin["ranges"]:
        dims = [f"{d}={r.min}..{r.max}@{r.example}" for d, r in spec.dims.items()]
        spec = make_model_spec(
            name=spec.name, ref=spec.ref, inputs=spec.inputs, dims=dims, ranges=twin["ranges"]
        )
    _, torch_model = build_model(spec.ref, 0)
    _, keras_model = build_model(SPECS[str(twin["keras"])].ref, 0)
    feeds = make_inputs(spec, GridPoint("example", {d: r.example for d, r in spec.dims.items()}), 0)
    with torch.inference_mode():
        mine = torch_model(*[torch.from_numpy(a) for a in feeds.values()]).numpy()
    _, arrays = keras_inputs(keras_model, feeds)  # NCHW images as NHWC, ids as the twin's dtype
    before = np.asarray(keras_model(arrays[0], training=False))
    assert np.max(np.abs(mine - before)) > 1e-2  # seeded apart: the bridge is what makes them agree
    mappings = bridge(torch_model, keras_model)
    assert len(mappings) >= 2
    theirs = np.asarray(keras_model(arrays[0], training=False))
    assert np.max(np.abs(mine - theirs)) <= FORWARD_ATOL


NOT_A_TWIN = """
import keras


def relu_first():  # SimpleNet's layers, but tanh where SimpleNet has ReLU
    return keras.Sequential(
        [keras.Input((10,), name="x"), keras.layers.Dense(20, activation="tanh", name="hidden"),
         keras.layers.Dense(2, name="out")]
    )
"""


def test_parity_checks_a_pair_and_names_the_layer_of_one_that_is_not_a_twin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["parity", str(CONFIG), "--pairs", "SimpleNet", "--report-dir", str(tmp_path / "ok")]) == 0
    [pair] = json.loads((tmp_path / "ok" / "parity.json").read_text())["pairs"]
    assert pair["ok"] and pair["eager_error"] <= FORWARD_ATOL and pair["onnx_error"] <= FORWARD_ATOL
    assert len(pair["loss_error"]) == 20 and max(pair["weight_ratio"]) <= 1.0

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "not_twin.py").write_text(NOT_A_TWIN)
    config = CONFIG.read_text().split("[[twins]]")[0]
    config = config.replace('"graphmint.models.keras_zoo:keras_simple_net"', '"not_twin:relu_first"')
    config += '[[twins]]\ntorch = "SimpleNet"\nkeras = "KerasSimpleNet"\n'
    (tmp_path / "graphmint.toml").write_text(config)
    assert main(["parity", "graphmint.toml", "--steps", "3", "--report-dir", "bad"]) == 1
    [pair] = json.loads((tmp_path / "bad" / "parity.json").read_text())["pairs"]
    assert not pair["ok"]
    assert "fc1 ↔ hidden" in pair["problems"][0], pair["problems"]
