"""Exporters: one module per static form (route). Route modules import their framework lazily."""

from __future__ import annotations

import importlib

from graphmint.exporters.base import Artifact, ExportContext, ExportResult, Route, Strategy

__all__ = [
    "ROUTE_MODULES",
    "Artifact",
    "ExportContext",
    "ExportResult",
    "Route",
    "Strategy",
    "default_routes",
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
    ("torch", "pt2e-int8"): "graphmint.exporters.torch_pt2e",
    ("torch", "onnx"): "graphmint.exporters.onnx_torch",
    ("torch", "litert-torch"): "graphmint.exporters.litert_torch",
    ("torch", "onnx-fp16"): "graphmint.exporters.onnx_reduced:ROUTES",
    ("torch", "onnx-int8-dynamic"): "graphmint.exporters.onnx_reduced:ROUTES",
    ("torch", "onnx-int8-static"): "graphmint.exporters.onnx_reduced:ROUTES",
    ("tensorflow", "tf-function"): "graphmint.exporters.tf_function",
    ("tensorflow", "saved-model"): "graphmint.exporters.saved_model",
    ("tensorflow", "tflite"): "graphmint.exporters.tflite",
    ("tensorflow", "tflite-fp16"): "graphmint.exporters.tflite_reduced:ROUTES",
    ("tensorflow", "tflite-int8-dynamic"): "graphmint.exporters.tflite_reduced:ROUTES",
    ("tensorflow", "tflite-int8"): "graphmint.exporters.tflite_reduced:ROUTES",
    ("tensorflow", "onnx"): "graphmint.exporters.onnx_tf",
    ("tensorflow", "onnx-fp16"): "graphmint.exporters.onnx_reduced:ROUTES",
    ("tensorflow", "onnx-int8-dynamic"): "graphmint.exporters.onnx_reduced:ROUTES",
    ("tensorflow", "onnx-int8-static"): "graphmint.exporters.onnx_reduced:ROUTES",
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
