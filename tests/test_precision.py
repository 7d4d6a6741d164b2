"""Reduced precision: every fp16 and int8 route on a zoo model of each framework, judged by its
accuracy budget, and the layer diagnosis and retry on models that int8 and fp16 break."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from graphmint.exporters import ROUTE_MODULES, get_route
from graphmint.exporters.base import Precision
from graphmint.exporters.openvino import cannot_compute
from graphmint.pipeline.publish.manifest import read_model_manifest
from graphmint.pipeline.run.results import ModelResult
from graphmint.pipeline.spec.config import load_config
from graphmint.pipeline.spec.specs import ModelSpec
from graphmint.validators.budget import DEFAULT_BUDGETS
from graphmint.validators.results import RouteResult
from tests.conftest import zoo_specs

#: the model of each framework that takes every reduced-precision route in make test: a zoo model and
#: a two-input Keras model below (the whole zoo takes them in `make artifacts`)
MODEL = {"torch": "SimpleNet", "tensorflow": "TwoEmbeddings"}
TF_REDUCED = [
    "tflite-fp16", "tflite-int8-dynamic", "tflite-int8", "onnx-fp16", "onnx-int8-dynamic", "onnx-int8-static",
    "openvino-bf16",
]  # fmt: skip

USER_MODELS = """
[[models]]
name = "OutlierChannel"
ref = "tests.precision_model_defs:outlier_channel"
inputs = ["x:float32[batch,16]"]
dims = ["batch=1..32"]
routes = ["onnx-int8-dynamic", "onnx-int8-static"]

[[models]]
name = "BeyondFp16"
ref = "tests.precision_model_defs:beyond_fp16"
inputs = ["x:float32[batch,8]"]
dims = ["batch=1..32"]
routes = ["onnx-fp16"]

[[models]]
name = "TwoEmbeddings"
ref = "tests.precision_keras_defs:two_embeddings"
inputs = ["token_ids:int32[batch,8]", "segment_ids:int32[batch,8]"]
dims = ["batch=1..8"]
ranges = ["token_ids=0..99", "segment_ids=0..1"]
routes = [
    "tflite-fp16", "tflite-int8-dynamic", "tflite-int8", "onnx-fp16", "onnx-int8-dynamic", "onnx-int8-static",
    "openvino-bf16",
]

[models.budget.routes.tflite-int8]
max_abs = 0.3  # calibrated on one batch: a budget as data, for this model and route

[[models]]
name = "TinyDense"
ref = "tests.precision_keras_defs:tiny_dense"
inputs = ["x:float32[batch,8]"]
dims = ["batch=1..4"]
routes = ["tflite-int8-dynamic"]
"""

Run = tuple[Path, dict[str, ModelResult]]


def _reduced(framework: str, name: str) -> list[str]:
    """The reduced-precision routes a zoo model's config entry lists."""
    spec = next(s for s in zoo_specs(framework, reduced=True) if s.name == name)
    return [r for r in spec.routes or () if get_route(framework, r).precision != Precision.FP32]


def _simple_net() -> ModelSpec:
    spec = next(s for s in zoo_specs("torch", reduced=True) if s.name == MODEL["torch"])
    return dataclasses.replace(spec, routes=_reduced("torch", spec.name))


CASES = [("torch", r) for r in _simple_net().routes or ()] + [("tensorflow", r) for r in TF_REDUCED]


@pytest.fixture(scope="module")
def precision_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The two zoo models through their reduced routes, and the user models above, in one run."""
    from graphmint.pipeline.run.executors import available_cores, run_models
    from graphmint.pipeline.run.stages import RunOptions

    out = tmp_path_factory.mktemp("precision")
    config = out.parent / "precision.toml"
    config.write_text(USER_MODELS)
    specs = [*load_config(config), _simple_net()]
    results = run_models(specs, RunOptions(out=out, jobs=available_cores()))
    return out, {r.name: r for r in results}


def _route(out: Path, model: str, route: str) -> RouteResult:
    return read_model_manifest(out / model).route(route)


def test_every_zoo_model_takes_every_reduced_route_of_its_framework() -> None:
    for framework in ("torch", "tensorflow"):
        every = {name for fw, name in ROUTE_MODULES if fw == framework}
        every = {r for r in every if get_route(framework, r).precision != Precision.FP32}
        for spec in zoo_specs(framework, reduced=True):
            assert set(_reduced(framework, spec.name)) == every, spec.name
    reduced_tf = {r for fw, r in ROUTE_MODULES if fw == "tensorflow" and get_route(fw, r).precision != "fp32"}
    assert set(TF_REDUCED) == reduced_tf


@pytest.mark.parametrize(("framework", "route"), CASES, ids=[f"{fw}-{r}" for fw, r in CASES])
def test_reduced_route_meets_its_budget(precision_run: Run, framework: str, route: str) -> None:
    out, results = precision_run
    model = MODEL[framework]
    result = next(r for r in results[model].routes if r.route == route)
    if route == "openvino-bf16" and (why := cannot_compute("bf16")):
        assert result.status == "skipped" and result.reason == why  # never passed as if bf16 ran
        pytest.skip(why)
    assert result.status == "passed", f"{model} × {route}: {result.reason}"
    entry = _route(out, model, route)
    precision = get_route(framework, route).precision
    assert entry.precision == precision and entry.budgets is not None
    [reached] = entry.budgets.values()
    budget = reached.dump()
    # judged by the precision's budget over the whole grid, never by float32's noise
    assert budget["passed"] and budget["budget"]["snr_db"] == DEFAULT_BUDGETS[precision].snr_db
    assert budget["snr_db"] >= budget["budget"]["snr_db"] and budget["cosine"] >= budget["budget"]["cosine"]
    assert budget["max_abs"] <= budget["budget"]["max_abs"]
    assert entry.check is not None and {o.rule for o in entry.check.outputs} == {"budget"}
    # and not vacuously: a reduced file is not the float32 one, and holds reduced tensors
    assert budget["max_abs"] > 0 and budget["snr_db"] < 120
    assert entry.artifact is not None and (out / model / entry.artifact).exists()  # an IR is a folder
    held = entry.details.reduced_tensors
    # a .pt2 is not counted; a bf16 IR is float32 on disk, the runtime computes in bf16
    if route in ("pt2e-int8", "openvino-bf16"):
        assert held is None and (route == "pt2e-int8" or entry.details.inference_precision == "bf16")
    else:
        assert held is not None and held > 0


def test_a_reduced_file_with_nothing_reduced_is_not_passed(precision_run: Run) -> None:
    """Every weight of TinyDense is under TFLite's 1024-element minimum: its tflite-int8-dynamic file
    is the float32 one, so the route is unsupported, saying why, and publishes nothing."""
    out, results = precision_run
    [route] = results["TinyDense"].routes
    assert route.status == "unsupported" and route.details.reduced_tensors == 0
    assert "the file holds no int8 tensor" in route.reason and "fewer than 1024 elements" in route.reason
    assert not (out / "TinyDense" / "tflite-int8-dynamic").exists()


@pytest.mark.parametrize("route", ["onnx-int8-dynamic", "onnx-int8-static"])
def test_outlier_channel_misses_int8_then_passes_with_its_worst_layer_kept_float(
    precision_run: Run, route: str
) -> None:
    out, _ = precision_run
    entry = _route(out, "OutlierChannel", route)
    assert entry.status == "passed"
    # the plain quantization missed the budget against eager, and was rejected for it
    (first,) = entry.rejected
    assert "+keep-float" not in first.exporter and first.stage == "compare"
    assert "below 20 dB" in first.reason and "(budget)" in first.reason
    assert entry.details.reduced_precision is not None
    found = entry.details.reduced_precision.dump()
    assert found["snr_db"][0]["output"] < 20 <= found["snr_db"][-1]["output"]
    # the worst layer is fc2, the one that reads the outlier channel (node_linear_1 in the file)
    worst = found["kept_float"][0]
    assert worst["layer"].endswith("linear_1") or "linear_1" in worst["keep"][-1], found
    assert "worst layer" in found["why"] and worst["layer"] in found["why"]
    assert any(k.endswith("linear_1") for k in found["kept"])
    assert not any(k.endswith("linear_2") for k in found["kept"]), "fc3 stays int8"
    assert entry.budgets is not None
    assert entry.budgets["output"].passed and (entry.budgets["output"].snr_db or 0) >= 20


@pytest.mark.parametrize("model", ["OutlierChannel", "TwoEmbeddings"])
def test_validate_replays_reduced_artifacts_by_their_budgets(precision_run: Run, model: str) -> None:
    from graphmint.pipeline.validate import validate_path

    out, _ = precision_run
    validation = validate_path(out / model)
    assert validation.ok and {r.status for r in validation.routes} == {"passed"}
    # the runtimes that decide (a cross-check that disagrees is a warning, as in the run: excused)
    judged = {
        o.rule
        for r in validation.routes
        for c in r.checks
        if c.runner not in r.excused
        for p in c.points
        for o in p.outputs
    }
    assert judged == {"budget"}
    assert all(r.checks[0].budgets["output"].passed for r in validation.routes)


def test_tflite_int8_calibrates_each_input_by_its_name(precision_run: Run) -> None:
    out, results = precision_run
    route = next(r for r in results["TwoEmbeddings"].routes if r.route == "tflite-int8")
    assert route.status == "passed", route.reason  # not "gather index out of bounds"
    budgets = _route(out, "TwoEmbeddings", "tflite-int8").budgets
    assert budgets is not None
    budget = budgets["output"].dump()
    assert budget["passed"] and budget["budget"] == {
        "cosine": 0.99,
        "snr_db": 20.0,
        "max_abs": 0.3,
        "topk": 1,
    }


def test_fp16_keeps_the_layers_beyond_its_range_in_float32(precision_run: Run) -> None:
    out, _ = precision_run
    entry = _route(out, "BeyondFp16", "onnx-fp16")
    assert entry.status == "passed", entry.reason
    assert entry.details.reduced_precision is not None and entry.budgets is not None
    found = entry.details.reduced_precision.dump()
    assert found["max_activation"]["max_abs"] > 65504
    assert found["overflow"] and set(found["overflow"]) <= set(found["kept"]), found
    assert (entry.budgets["output"].snr_db or 0) >= 40


def test_top_k_agreement_gates_a_classifier_output_only_where_set() -> None:
    """Over a grid of two points: eager's class is the artifact's top-1 in 3 of 4 rows and within
    its top 2 in all; SNR and cosine stay high, so only a top-k budget can catch the swap."""
    import numpy as np

    from graphmint.validators.budget import Budget, pooled_budget_values

    eager = [np.array([[5.0, 4.9, 0.0], [0.0, 5.0, 1.0]]), np.array([[3.0, 0.0, 0.0], [0.0, 0.0, 2.0]])]
    artifact = [e.copy() for e in eager]
    artifact[0][0] = [4.9, 5.0, 0.0]  # row 0: classes 0 and 1 swap places
    pairs = list(zip(artifact, eager, strict=True))
    top1, top2 = pooled_budget_values(pairs, topk=1), pooled_budget_values(pairs, topk=2)
    assert top1.topk_agreement == 0.75 and top2.topk_agreement == 1.0
    assert top1.snr_db is not None and top1.snr_db > 20 and top1.cosine is not None and top1.cosine > 0.99
    loose = Budget(cosine=0.99, snr_db=20.0, max_abs=0.15)
    assert top1.misses(loose) == []  # not gated where no topk_agreement is set
    strict = Budget(cosine=0.99, snr_db=20.0, max_abs=0.15, topk=1, topk_agreement=0.9)
    assert top1.misses(strict) == ["top-1 agreement 0.750 is below 0.9"]
    assert top2.misses(Budget(cosine=0.99, snr_db=20.0, max_abs=0.15, topk=2, topk_agreement=0.9)) == []
