"""The record set (validators.results): one set of types from memory to disk. A record refuses a key
it does not declare when it is built or validated as written; a manifest read back drops such keys, so
that a manifest an older graphmint wrote still loads with its numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from graphmint.pipeline.publish.manifest import ModelManifest, read_model_manifest
from graphmint.pipeline.run.results import ModelResult
from graphmint.validators.results import (
    ArtifactCheck,
    OutputComparison,
    PointCheck,
    Precision,
    RouteResult,
    Stage,
    Status,
)

DATA = Path(__file__).parent / "data"
#: a SimpleNet manifest as graphmint 0.1.0 wrote it before the record set (three of its routes, each
#: with its own runtime's check): another key order, no `excused`
OLDER = DATA / "manifest-0.1.0.json"


def _route() -> RouteResult:
    output = OutputComparison(
        name="y", dtype="float32", expected_dtype="float32", shape=[2], expected_shape=[2], atol=1e-5, rtol=0
    )
    output.max_abs_error, output.passed, output.rule = 3e-7, True, "noise"
    point = PointCheck(label="example", sizes={"batch": 2}, status=Status.PASSED, outputs=[output])
    check = ArtifactCheck(runner="onnxruntime", runtime="ort", status=Status.PASSED, stage=Stage.NONE)
    check.points = [point]
    return RouteResult(route="onnx", status=Status.PASSED, checks=[check], log="exported\n")


def test_an_older_manifest_loads_with_its_numbers(tmp_path: Path) -> None:
    shutil.copy(OLDER, tmp_path / "manifest.json")
    raw = json.loads(OLDER.read_text())
    manifest = read_model_manifest(tmp_path)
    assert [r.route for r in manifest.routes] == [r["route"] for r in raw["routes"]]
    for route, held in zip(manifest.routes, raw["routes"], strict=True):
        assert route.status == Status(held["status"]) and route.precision == Precision(held["precision"])
        assert route.check is not None and route.check.max_abs_error == held["checks"][0]["max_abs_error"]
        assert route.details.opset == held.get("opset")
    int8 = manifest.route("onnx-int8-dynamic")
    assert int8.budgets is not None and int8.budgets["output"].passed is True
    assert int8.details.reduced_precision is not None and int8.details.reduced_precision.conversion
    # written again by this graphmint, it declares every key it holds
    assert ModelManifest.model_validate(json.loads(manifest.text())).text() == manifest.text()


def test_an_undeclared_key_is_refused_when_written_and_dropped_when_read(tmp_path: Path) -> None:
    data = json.loads(OLDER.read_text())
    data["routes"][0]["checks"][0]["points"][0]["outputs"][0]["made_up"] = 1
    data["routes"][1]["made_up_too"] = "x"
    with pytest.raises(ValidationError, match="made_up"):
        ModelManifest.model_validate(data)  # the write schema
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    read = read_model_manifest(tmp_path)
    assert "made_up" not in read.text() and "made_up_too" not in read.text()
    with pytest.raises(ValidationError, match="extra"):
        RouteResult(route="onnx", status=Status.PASSED, made_up=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="status"):
        RouteResult(route="onnx", status="fine")  # type: ignore[arg-type]


def test_a_route_record_derives_its_worst_errors_and_keeps_its_log_only_in_memory() -> None:
    route = _route()
    assert route.max_abs_error == 3e-7 and route.rule == "noise"
    written = route.dump()
    assert written["max_abs_error"] == 3e-7 and "log" not in written
    assert list(written)[-1] == "checks"  # the checks, the bulk of a route, come last
    assert route.dump(full=True)["log"] == "exported\n"  # handed to another process (shards), kept
    assert RouteResult.read(route.dump(full=True)).log == "exported\n"
    # the derived keys a file holds are declared, and derived again rather than taken
    written["max_abs_error"] = 99.0
    assert RouteResult.model_validate(written).max_abs_error == 3e-7
    # an excused cross-check's error is not the route's
    route.excused = ["onnxruntime"]
    assert route.max_abs_error is None


def test_a_model_result_is_its_manifest_and_what_the_run_keeps(tmp_path: Path) -> None:
    data = json.loads(OLDER.read_text())
    result = ModelResult.read({**data, "published": str(tmp_path)})
    assert result.published == tmp_path and result.ref == "graphmint.models.torch_zoo:simple_net"
    assert "published" not in result.dump() and result.dump(full=True)["published"] == str(tmp_path)
    assert json.loads(result.text()) == json.loads(ModelManifest.read(data).text())
