"""Exporters: one module per static form (route). Route modules import their framework lazily."""

from __future__ import annotations

import importlib

from graphmint.exporters.base import Artifact, ExportContext, ExportResult, Precision, Route, Strategy
from graphmint.exporters.formats import FORMATS

__all__ = [
    "ROUTE_GROUPS",
    "ROUTE_MODULES",
    "Artifact",
    "ExportContext",
    "ExportResult",
    "Route",
    "Strategy",
    "default_routes",
    "expand_routes",
    "get_route",
    "routes_for",
]

#: (framework, route name) -> module defining ROUTE (or "module:ROUTES", a dict of routes by
#: (framework, name) that one module defines for several); in the order routes run
ROUTE_MODULES: dict[tuple[str, str], str] = {
    ("torch", "torchscript-trace"): "graphmint.exporters.torchscript_trace",
    ("torch", "torchscript-script"): "graphmint.exporters.torchscript_script",
    ("torch", "torch-export"): "graphmint.exporters.torch_export",
    ("torch", "torch-compile"): "graphmint.exporters.torch_compile",
    ("torch", "aot-inductor"): "graphmint.exporters.aot_inductor",
    ("torch", "executorch"): "graphmint.exporters.executorch",
    ("torch", "pt2e-int8"): "graphmint.exporters.torch_pt2e",
    ("torch", "onnx"): "graphmint.exporters.onnx_torch",
    ("torch", "litert-torch"): "graphmint.exporters.litert_torch",
    ("torch", "onnx-fp16"): "graphmint.exporters.onnx_reduced:ROUTES",
    ("torch", "onnx-int8-dynamic"): "graphmint.exporters.onnx_reduced:ROUTES",
    ("torch", "onnx-int8-static"): "graphmint.exporters.onnx_reduced:ROUTES",
    ("torch", "openvino"): "graphmint.exporters.openvino:ROUTES",
    ("torch", "openvino-bf16"): "graphmint.exporters.openvino:ROUTES",
    ("tensorflow", "tf-function"): "graphmint.exporters.tf_function",
    ("tensorflow", "saved-model"): "graphmint.exporters.saved_model",
    ("tensorflow", "tflite"): "graphmint.exporters.tflite",
    ("tensorflow", "tflite-fp16"): "graphmint.exporters.tflite_reduced:ROUTES",
    ("tensorflow", "tflite-int8-dynamic"): "graphmint.exporters.tflite_reduced:ROUTES",
    ("tensorflow", "tflite-int8"): "graphmint.exporters.tflite_reduced:ROUTES",
    ("tensorflow", "onnx"): "graphmint.exporters.onnx_tf",
    ("tensorflow", "keras-torch"): "graphmint.exporters.keras_torch",
    ("tensorflow", "onnx-fp16"): "graphmint.exporters.onnx_reduced:ROUTES",
    ("tensorflow", "onnx-int8-dynamic"): "graphmint.exporters.onnx_reduced:ROUTES",
    ("tensorflow", "onnx-int8-static"): "graphmint.exporters.onnx_reduced:ROUTES",
    ("tensorflow", "openvino"): "graphmint.exporters.openvino:ROUTES",
    ("tensorflow", "openvino-bf16"): "graphmint.exporters.openvino:ROUTES",
}


def get_route(framework: str, name: str) -> Route:
    module, _, table = ROUTE_MODULES[(framework, name)].partition(":")
    loaded = importlib.import_module(module)
    route: Route = getattr(loaded, table)[(framework, name)] if table else loaded.ROUTE
    return route


def routes_for(framework: str) -> list[Route]:
    return [get_route(fw, name) for fw, name in ROUTE_MODULES if fw == framework]


def default_routes(framework: str) -> list[str]:
    return [r.name for r in routes_for(framework) if r.default]


#: names that stand for several routes of a model's framework wherever routes are named (`--routes`,
#: a config's `routes`), each with what it holds
ROUTE_GROUPS: dict[str, str] = {
    "default": "the framework's default routes",
    "edge": "the float32 routes to device formats (ExecuTorch, LiteRT/TFLite)",
    "all": "every route of the framework",
}


def _in_group(route: Route, group: str) -> bool:
    if group == "default":
        return route.default
    if group == "edge":
        return FORMATS[route.format].edge and route.precision == Precision.FP32
    return group == "all"


def expand_routes(framework: str, names: list[str]) -> list[str]:
    """`names` with each group replaced by its routes for `framework`, in the order routes run; a
    name that is no group is kept as it is. No name comes twice."""
    expanded: list[str] = []
    for name in names:
        if name in ROUTE_GROUPS:
            expanded += [r.name for r in routes_for(framework) if _in_group(r, name)]
        else:
            expanded.append(name)
    return list(dict.fromkeys(expanded))
