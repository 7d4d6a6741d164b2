"""Every PyTorch zoo model × every route, from the registry, checked on the published files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from graphmint.exporters import ROUTE_MODULES, default_routes, get_route
from graphmint.pipeline.run.results import ModelResult
from tests.conftest import TARGET_MODELS, assert_as_declared, zoo_specs
from tests.test_precision import CASES as PRECISION_CASES

SPECS = zoo_specs("torch")
CASES = [(s.name, r) for s in SPECS for r in (s.routes or default_routes("torch"))]


def test_every_registered_torch_route_runs_on_some_zoo_model() -> None:
    registered = {name for fw, name in ROUTE_MODULES if fw == "torch"}
    covered = {route for _, route in CASES} | {r for fw, r in PRECISION_CASES if fw == "torch"}
    covered |= set(TARGET_MODELS)  # each in its own test module
    assert registered <= covered, f"routes without a zoo test: {sorted(registered - covered)}"


def test_zoo_has_the_issue_models() -> None:
    assert {"SimpleNet", "ModelWithCustom", "SmallCNN", "SeqClassifier", "TransformerBlock"} <= {
        s.name for s in SPECS
    }


@pytest.mark.parametrize(("model", "route"), CASES, ids=[f"{m}-{r}" for m, r in CASES])
def test_zoo_route(torch_zoo: tuple[Path, dict[str, ModelResult]], model: str, route: str) -> None:
    out, results = torch_zoo
    result = next(r for r in results[model].routes if r.route == route)
    assert_as_declared(next(s for s in SPECS if s.name == model), result)
    manifest = json.loads((out / model / "manifest.json").read_text())
    entry = next(e for e in manifest["routes"] if e["route"] == route)
    assert entry["status"] == result.status
    if result.status == "skipped":
        assert entry["reason"], "a skip must say why"
        assert not (out / model / route).exists()
        return
    assert entry["max_abs_error"] is not None and entry["max_abs_error"] <= entry["atol"] + 1e-3
    points = entry["checks"][0]["points"]
    assert {p["label"] for p in points} >= {"example"}
    assert all(p["status"] == "passed" for p in points)
    if not get_route("torch", route).in_process:  # checked on the object it made, not a file
        assert entry["files"], f"{route} published no file"
    for f in entry["files"]:
        data = (out / model / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
        assert len(data) == f["bytes"]


@pytest.mark.parametrize("model", [s.name for s in SPECS])
def test_manifest_shape(torch_zoo: tuple[Path, dict[str, ModelResult]], model: str) -> None:
    out, _ = torch_zoo
    manifest = json.loads((out / model / "manifest.json").read_text())
    assert manifest["name"] == model
    assert manifest["framework"] == "torch"
    assert {"torch", "onnx", "onnxruntime", "numpy", "graphmint"} <= set(manifest["versions"])
    spec = next(s for s in SPECS if s.name == model)
    assert manifest["inputs"] == [i.to_json() for i in spec.inputs]
    for output in manifest["outputs"]:
        assert set(output) == {"name", "dtype", "shape"}
    # a dynamic batch dim flows through to every output
    assert all(o["shape"][0] == "batch" for o in manifest["outputs"])
    for entry in manifest["routes"]:
        assert {
            "route",
            "status",
            "exporter",
            "files",
            "max_abs_error",
            "max_rel_error",
            "atol",
            "rtol",
            "reason",
        } <= set(entry)
    # judged by the noise rule against a float64 copy, both verdicts recorded; no zoo model is vacuous
    assert manifest["rule"] == "noise" and manifest["float64_reference"] == "ok"
    assert set(manifest["noise"]) == {o["name"] for o in manifest["outputs"] if o["dtype"] == "float32"}
    assert manifest["vacuous"] == {}
    for entry in (e for e in manifest["routes"] if e["status"] == "passed"):
        assert entry["rule"] == "noise" and entry["within_tolerance"] is not None
        assert entry["float64_error"] is not None and entry["eager_float64_error"] is not None


def test_dynamic_dims_checked_at_other_sizes(torch_zoo: tuple[Path, dict[str, ModelResult]]) -> None:
    """Every dynamic dim is exercised away from its example size (min, max, 1 and a prime)."""
    _, results = torch_zoo
    check = next(r for r in results["TransformerBlock"].routes if r.route == "onnx").check
    assert check is not None
    labels = {p.label for p in check.points}
    assert {"example", "batch=1", "batch=8", "seq=1", "seq=128"} <= labels
    assert any(label.startswith("seq=") and label not in ("seq=1", "seq=128") for label in labels)


def test_published_onnx_passes_the_checker(torch_zoo: tuple[Path, dict[str, ModelResult]]) -> None:
    import onnx

    out, _ = torch_zoo
    for spec in SPECS:
        path = out / spec.name / "onnx" / "model.onnx"
        onnx.checker.check_model(str(path), full_check=True)
        graph_inputs = [i.name for i in onnx.load(str(path)).graph.input]
        assert graph_inputs == [i.name for i in spec.inputs]
