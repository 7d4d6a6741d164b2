"""The `executorch` route on the zoo: a .pte lowered to XNNPACK, checked with executorch.runtime on the
grid, its dims' bounds baked into the file and refused one past them, its bundled golden cases verified
by ExecuTorch's own bundled-program API."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from graphmint.exporters import default_routes, get_route
from graphmint.exporters.formats import FORMATS
from graphmint.pipeline.run.results import ModelResult
from graphmint.pipeline.spec.specs import ModelSpec
from tests.conftest import assert_as_declared, zoo_specs

# looked up, not imported: the runs below import it in their own processes
if importlib.util.find_spec("executorch") is None:
    pytest.skip("executorch is not installed (the executorch extra)", allow_module_level=True)

ROUTE = "executorch"
MODELS = ("SimpleNet", "SmallCNN", "TransformerBlock")
#: SmallCNN is a declared known failure (graphmint.toml): XNNPACK's lowering narrows its batch bound
PASSING = ("SimpleNet", "TransformerBlock")
SPECS = {s.name: replace(s, routes=(ROUTE,)) for s in zoo_specs("torch", targets=True) if s.name in MODELS}


#: the models `make test` leaves to `make test-long` (ExecuTorch's lowering of a transformer: ~40 s)
LONG = ("TransformerBlock",)
Run = tuple[Path, dict[str, ModelResult]]


def _publish(models: tuple[str, ...], out: Path) -> Run:
    from graphmint.pipeline.run.executors import available_cores, run_models
    from graphmint.pipeline.run.stages import RunOptions

    results = run_models([SPECS[m] for m in models], RunOptions(out=out, jobs=available_cores()))
    return out, {r.name: r for r in results}


@pytest.fixture(scope="module")
def executorch_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The zoo models but the LONG ones through the executorch route alone, published once."""
    return _publish(tuple(m for m in MODELS if m not in LONG), tmp_path_factory.mktemp("executorch"))


@pytest.fixture(scope="module")
def executorch_long_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _publish(LONG, tmp_path_factory.mktemp("executorch-long"))


def _run(request: pytest.FixtureRequest, model: str) -> Run:
    run: Run = request.getfixturevalue("executorch_long_run" if model in LONG else "executorch_run")
    return run


def _models(models: tuple[str, ...]) -> list[Any]:
    return [pytest.param(m, marks=pytest.mark.long) if m in LONG else m for m in models]


def _entry(out: Path, model: str) -> dict[str, Any]:
    manifest = json.loads((out / model / "manifest.json").read_text())
    entry: dict[str, Any] = next(e for e in manifest["routes"] if e["route"] == ROUTE)
    return entry


def test_the_route_is_registered_opt_in_and_loads_no_code() -> None:
    route = get_route("torch", ROUTE)
    assert route.format == ROUTE and route.runner == ROUTE and not route.default
    assert ROUTE not in default_routes("torch")
    fmt = FORMATS[ROUTE]
    assert fmt.filename == "model.pte" and fmt.executes_code is None
    assert "executorch" in fmt.packages["torch"]
    assert SPECS.keys() == set(MODELS)
    assert all(ROUTE in (s.routes or ()) for s in zoo_specs("torch", targets=True) if s.name in MODELS)


@pytest.mark.parametrize("model", _models(MODELS))
def test_zoo_model_as_declared(request: pytest.FixtureRequest, model: str) -> None:
    _, results = _run(request, model)
    result = next(r for r in results[model].routes if r.route == ROUTE)
    assert_as_declared(SPECS[model], result)


def test_a_narrowed_bound_fails_the_export_naming_it(executorch_run: Run) -> None:
    _, results = executorch_run
    result = next(r for r in results["SmallCNN"].routes if r.route == ROUTE)
    assert "narrowed dim batch to ..15 (declared ..16)" in result.reason, result.reason


@pytest.mark.parametrize("model", _models(PASSING))
def test_zoo_model_passes_on_the_grid(request: pytest.FixtureRequest, model: str) -> None:
    out, results = _run(request, model)
    result = next(r for r in results[model].routes if r.route == ROUTE)
    assert result.status == "passed", result.reason
    entry = _entry(out, model)
    assert entry["status"] == "passed", entry["reason"]
    check = entry["checks"][0]
    assert check["runner"] == ROUTE and check["runtime"].startswith("executorch ")
    points = check["points"]
    assert len(points) > 1 and all(p["status"] == "passed" for p in points)
    assert entry["max_abs_error"] is not None and entry["max_abs_error"] > 0  # a real float comparison
    assert entry["xnnpack_delegates"] >= 1 and entry["delegated_nodes"] >= 1
    paths = {f["path"] for f in entry["files"]}
    assert {f"{ROUTE}/model.pte", f"{ROUTE}/model.bpte"} <= paths
    assert entry["bundled_program"] == "model.bpte"


@pytest.mark.parametrize("model", _models(PASSING))
def test_the_file_holds_the_declared_bounds_and_the_grid_stays_inside(
    request: pytest.FixtureRequest, model: str
) -> None:
    out, _ = _run(request, model)
    spec: ModelSpec = SPECS[model]
    entry = _entry(out, model)
    assert entry["dim_bounds"] == {name: r.max for name, r in spec.dims.items()}
    for point in entry["checks"][0]["points"]:
        assert all(point["sizes"][d] <= bound for d, bound in entry["dim_bounds"].items()), point


@pytest.mark.parametrize("model", _models(PASSING))
def test_a_dim_past_its_bound_is_refused(request: pytest.FixtureRequest, model: str) -> None:
    out, _ = _run(request, model)
    entry = _entry(out, model)
    probes = entry["bound_probes"]
    assert {p["dim"] for p in probes} == set(SPECS[model].dims)
    for probe in probes:
        assert probe["bound"] == entry["dim_bounds"][probe["dim"]] and probe["size"] == probe["bound"] + 1
        assert probe["refused"], probe
        assert "resize" in probe["error"], probe  # the runtime's own reason, not just an error code


@pytest.mark.parametrize("model", _models(PASSING))
def test_the_bundled_cases_are_verified_by_executorch(request: pytest.FixtureRequest, model: str) -> None:
    out, _ = _run(request, model)
    entry = _entry(out, model)
    bundled = entry["bundled_check"]
    assert bundled["file"] == "model.bpte"
    assert bundled["cases"] == len(entry["checks"][0]["points"])  # one golden case per grid point
    assert bundled["passed"] == bundled["cases"], bundled["failures"]
    assert (bundled["rtol"], bundled["atol"]) == (1e-4, 1e-5)  # graphmint's float32 default


def test_executorch_runtime_raises_past_the_bound_and_runs_at_it(executorch_run: Run) -> None:
    """The published file, loaded here with executorch.runtime directly: batch at its bound runs,
    one past it raises."""
    import torch
    from executorch.runtime import Runtime

    out, _ = executorch_run
    bound = _entry(out, "SimpleNet")["dim_bounds"]["batch"]
    method = Runtime.get().load_program(out / "SimpleNet" / ROUTE / "model.pte").load_method("forward")
    (at_bound,) = method.execute([torch.ones(bound, 10)])
    assert tuple(at_bound.shape) == (bound, 2)
    with pytest.raises(RuntimeError, match="set_inputs"):
        method.execute([torch.ones(bound + 1, 10)])


def test_an_event_is_judged_against_its_ahead_of_time_ops_at_the_float32_tolerance() -> None:
    """The Inspector's pairs as they come (tensors, or lists of them for a delegate with several
    outputs): rounding passes, a difference past rtol 1e-4 / atol 1e-5 fails, and so do a changed
    shape and a NaN where the graph has a number."""
    import numpy as np
    import torch

    from graphmint.validators.executorch_trace import judge_event
    from graphmint.validators.tolerance import DEFAULT_TOLERANCES

    tol = DEFAULT_TOLERANCES["float32"]
    aot = torch.linspace(-3, 3, 64).reshape(8, 8)
    rounded = aot + torch.from_numpy(np.spacing(aot.numpy()))
    ops, call = ["linear", "gelu"], ["DELEGATE_CALL"]
    held = judge_event(ops, call, [aot, aot[:2]], [rounded, rounded[:2]], tol)
    assert held.passed and held.outputs == 2 and 0 < (held.max_abs_error or 0) < 1e-6
    moved = rounded.clone()
    moved[3, 4] += 1e-3
    parted = judge_event(ops, call, aot, moved, tol)
    assert not parted.passed and parted.max_abs_error == pytest.approx(1e-3, rel=1e-3)
    assert not judge_event(ops, call, aot, aot.reshape(4, 16), tol).passed
    nan = aot.clone()
    nan[0, 0] = float("nan")
    assert "finite on one side only" in judge_event(ops, call, aot, nan, tol).message


@pytest.mark.long  # five ExecuTorch children: the route, the per-layer probe, the trace's export and run
def test_the_inspector_finds_the_delegate_that_drops_gelu_s_tanh_approximation(tmp_path: Path) -> None:
    """An MLP with GELU(approximate="tanh"): the exported program holds the tanh GELU, but XNNPACK's
    delegate computes the exact one (executorch 1.5.1; pytorch/executorch#22851). The grid fails, the
    per-layer comparison names the GELU, and ExecuTorch's Inspector shows that the runtime parts from
    its own program there: the delegate call holding the gelu computes other numbers than its ops
    ahead of time."""
    from graphmint.pipeline.cli import main

    args = ["tests.real_model_defs:tanh_gelu_mlp", "--input", "x:float32[batch,16]", "--dim", "batch=1..4"]
    assert main(["export", *args, "--routes", ROUTE, "--out", str(tmp_path)]) == 1
    [model] = json.loads((tmp_path / "report.json").read_text())["models"]
    [route] = model["routes"]
    assert route["status"] == "failed", route["reason"]
    divergence = route["divergence"]
    assert (divergence["first"], divergence["last_matching"]) == ("act", "fc1")
    trace = divergence["runtime_trace"]
    assert trace["tool"].startswith("executorch.devtools.Inspector.calculate_numeric_gap")
    parted = [e for e in trace["events"] if not e["passed"]]
    assert parted and "gelu" in parted[0]["aot_ops"] and parted[0]["runtime_ops"] == ["DELEGATE_CALL"]
    assert parted[0]["max_abs_error"] > 10 * trace["atol"]
    assert "the first the runtime computes differently from its ahead-of-time ops" in route["reason"]
    assert "- Inside the runtime: " in (tmp_path / "report.md").read_text()
