"""One entry per format (exporters.formats): every route writes a registered format, every runner is
reachable from a route, a contradictory declaration fails where it is made, and the tables that used
to be kept by name (runners, trust, Triton, packages, preloads) are views of the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graphmint import validators
from graphmint.exporters import ROUTE_MODULES, get_route
from graphmint.exporters.base import ExportContext, Exporter, Route
from graphmint.exporters.formats import (
    FORMATS,
    Format,
    FormatError,
    FormatRegistry,
    Role,
    RunnerSpec,
    packages_for,
)
from graphmint.pipeline.bench.run import OPTIMIZED
from graphmint.pipeline.publish.manifest import RESULT_PACKAGES, installed_versions
from graphmint.pipeline.publish.trust import executes_code_on_load
from graphmint.pipeline.run.cache import model_key
from graphmint.pipeline.serving.bundle import _TRITON_ENTRIES
from graphmint.pipeline.spec.specs import make_model_spec
from graphmint.validators.children import FRAMEWORK_PRELOAD, import_ref

ROUTES = [get_route(fw, name) for fw, name in ROUTE_MODULES]


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.framework}/{r.name}" for r in ROUTES])
def test_every_route_writes_a_registered_format(route: Route) -> None:
    fmt = FORMATS[route.format]
    assert route.runner == fmt.runner
    assert route.in_process == fmt.in_process
    for _, strategy in route.strategies:
        assert strategy.format == fmt.name
        assert strategy.filename == fmt.filename
        assert strategy.runner == route.runner
    assert route.framework in fmt.packages  # its packages say what decides it from this framework


def test_every_runner_is_reachable() -> None:
    written = {route.format for route in ROUTES}
    assert written == {f.name for f in FORMATS}  # no format that no route writes
    reachable = {name for fmt in written for name in FORMATS[fmt].runtimes()}
    assert reachable == set(validators.RUNNERS)
    for fmt in FORMATS:
        for spec in fmt.runners:
            cls = import_ref(spec.ref)
            assert cls.name == spec.name, spec
            assert FORMATS.of_runner(spec.name) is fmt
            if spec.role == Role.HOSTED:  # loaded in a child by the runner that deploys the format
                assert spec.name not in validators.RUNNERS
                assert import_ref(validators.RUNNERS[fmt.runner]).inner == spec.ref
            else:
                assert validators.get_runner(spec.name) is cls
    assert validators.runtimes_for("onnxruntime") == (
        "onnxruntime",
        "onnxruntime-noopt",
        "onnx-reference",
        "onnxruntime-cuda",
        "openvino-onnx",
    )
    assert {"onnxruntime-noopt", "onnx-reference", "openvino-onnx", "litert-compiled"} == (
        validators.CROSS_CHECK_RUNTIMES
    )
    assert validators.runtimes_for("tflite") == ("tflite", "litert-compiled")


def _format(name: str, *runners: RunnerSpec, **changes: Any) -> Format:
    fields: dict[str, Any] = {
        "name": name,
        "description": "a throwaway format",
        "filename": "model.bin",
        "runners": runners,
        "executes_code": None,
        "packages": {"torch": ("torch",)},
        **changes,
    }
    return Format(**fields)


def test_a_contradictory_registration_raises_when_it_is_made() -> None:
    before = [(f.name, f.runners) for f in FORMATS]
    one = RunnerSpec("throwaway", "graphmint.validators.tflite:TFLiteRunner")
    registry = FormatRegistry([_format("a", one)])
    with pytest.raises(FormatError, match="claimed by 'a' and 'b'"):
        registry.register(_format("b", one))
    with pytest.raises(FormatError, match="registered twice"):
        registry.register(_format("a", RunnerSpec("other", "m:C")))
    with pytest.raises(FormatError, match="must deploy"):
        registry.register(_format("c", RunnerSpec("second", "m:C", Role.CROSS_CHECK)))
    with pytest.raises(FormatError, match="not 'module:class'"):
        registry.register(_format("d", RunnerSpec("bare", "NoModule")))
    with pytest.raises(FormatError, match="not a registered format"):
        registry["nothing"]
    assert [f.name for f in registry] == ["a"]

    with pytest.raises(FormatError, match="not a registered format"):

        class Unknown(Exporter):  # a runner naming a format nobody registered
            format = "no-such-format"

    with pytest.raises(FormatError, match="does not deploy format 'onnx'"):

        class WrongRunner(Exporter):  # a runner that is not one of its format's
            format = "onnx"
            runner = "tflite"

    class Onnx(Exporter):
        tool, package, format = "t", "onnx", "onnx"

        def export(self, ctx: ExportContext, path: Path | None) -> None:
            return None

    class Tflite(Onnx):
        format = "tflite"

    assert (Onnx.runner, Onnx.filename, Tflite.runner, Tflite.filename) == (
        "onnxruntime",
        "model.onnx",
        "tflite",
        "model.tflite",
    )
    with pytest.raises(FormatError, match=r"write formats \['onnx', 'tflite'\]"):
        Route(name="mixed", framework="torch", strategies=(("a", Onnx()), ("b", Tflite())))
    with pytest.raises(FormatError, match="does not deploy"):  # a cross-check runtime deploys nothing
        Route(name="x", framework="torch", strategies=(("a", Onnx()),), runner="onnxruntime-noopt")
    with pytest.raises(FormatError, match="in_process=True"):
        Route(name="x", framework="torch", strategies=(("a", Onnx()),), in_process=True)
    assert Route(name="x", framework="torch", strategies=(("a", Onnx()),)).runner == "onnxruntime"
    assert [(f.name, f.runners) for f in FORMATS] == before  # the global registry is untouched


def test_trust_answers_come_from_the_registry() -> None:
    for fmt in FORMATS:
        for spec in fmt.runners:
            assert executes_code_on_load(spec.name) == fmt.executes_code, spec.name
    for route in ROUTES:
        assert executes_code_on_load(route.name) == FORMATS[route.format].executes_code, route.name
    assert FORMATS["onnx"].executes_code is None and FORMATS["tflite"].executes_code is None
    assert FORMATS["torch-export"].executes_code and FORMATS["saved-model"].executes_code
    assert executes_code_on_load("pt2e-int8") == FORMATS["torch-export"].executes_code
    assert "graphmint knows" in (executes_code_on_load("a-route-nobody-wrote") or "")


def test_triton_entries_come_from_the_registry() -> None:
    assert tuple(s for f in FORMATS for s in f.serving) == _TRITON_ENTRIES
    assert [e.platform or e.backend for e in _TRITON_ENTRIES] == [
        "onnxruntime_onnx",
        "pytorch_libtorch",
        "tensorflow_savedmodel",
        "openvino",
    ]
    # OpenVINO's entry is run by Triton's openvino backend, from the IR folder's own two files
    [openvino] = FORMATS["openvino"].serving
    assert (openvino.backend, openvino.platform, openvino.filename) == ("openvino", "", None)
    for fmt in FORMATS:
        for serving in fmt.serving:
            for name in serving.routes:
                if name == OPTIMIZED:  # graphmint bench's optimized copy of the onnx route's file
                    assert fmt.name == "onnx"
                    continue
                formats = {r.format for r in ROUTES if r.name == name}
                assert formats == {fmt.name}, name


def test_gpu_wish_and_preloads_come_from_the_registry() -> None:
    wants = {r.name for r in ROUTES if FORMATS[r.format].wants_gpu}
    assert {"onnx", "torchscript-trace", "torch-export", "pt2e-int8"} <= wants
    assert not wants & {"aot-inductor", "torch-compile", "tflite", "saved-model", "tf-function"}
    assert set(FRAMEWORK_PRELOAD) == {"torch", "tensorflow"}
    assert {"torch", "torch.export", "torch._dynamo", "torch.onnx", "onnxscript"} <= set(
        FRAMEWORK_PRELOAD["torch"]
    )
    assert {"tensorflow", "keras", "tf2onnx"} <= set(FRAMEWORK_PRELOAD["tensorflow"])


def test_torchao_decides_the_cache_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pt2e = get_route("torch", "pt2e-int8")
    assert "torchao" in FORMATS[pt2e.format].packages["torch"]
    assert "torchao" in RESULT_PACKAGES and "torchao" in packages_for("torch")
    assert {"numpy", "onnx", "transformers", "keras-hub", "torch", "tensorflow", "onnxruntime"} <= set(
        RESULT_PACKAGES
    )
    (tmp_path / "net.py").write_text("def build():\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = make_model_spec(name="net", ref="net:build", inputs=["x:float32[1,4]"], routes=["pt2e-int8"])
    before = model_key(spec, {})
    assert model_key(spec, {}) == before
    # another torchao installed: its metadata ahead of the real one on the path
    dist = tmp_path / "site" / "torchao-0.0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: torchao\nVersion: 0.0.1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert installed_versions()["torchao"] == "0.0.1"
    assert model_key(spec, {}) != before


def test_route_groups_expand_per_framework_where_routes_are_named() -> None:
    from graphmint.exporters import ROUTE_GROUPS, expand_routes
    from graphmint.exporters.base import Precision
    from graphmint.models.frameworks import get_framework
    from graphmint.pipeline.run.stages import resolve_routes

    assert not set(ROUTE_GROUPS) & {name for _, name in ROUTE_MODULES}, "a route named like a group"
    for framework in ("torch", "tensorflow"):
        every = [r for fw, r in ROUTE_MODULES if fw == framework]
        assert expand_routes(framework, ["all"]) == every
        assert expand_routes(framework, ["default"]) == [r for r in every if get_route(framework, r).default]
        edge = expand_routes(framework, ["edge"])
        assert edge, f"{framework} has no route to a device format"
        for name in edge:
            route = get_route(framework, name)
            assert FORMATS[route.format].edge and route.precision == Precision.FP32, name
        # a group beside a route it holds names that route once, in the order routes run
        assert expand_routes(framework, [edge[0], "edge"]) == edge
    spec = make_model_spec(name="m", ref="m:f", inputs=["x:float32[batch,4]"], dims=["batch=1..2"])
    routes, elsewhere = resolve_routes(spec, get_framework("tensorflow"), ["default", "edge"])
    assert [r.name for r in routes] == expand_routes("tensorflow", ["default", "edge"])
    assert elsewhere == []
