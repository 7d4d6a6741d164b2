"""Validators: one runner module per runtime, the comparison, tolerance policy and result types."""

from __future__ import annotations

import importlib

from graphmint.validators.base import Runner
from graphmint.validators.tolerance import DEFAULT_TOLERANCES, Tolerance, TolerancePolicy

__all__ = [
    "CROSS_CHECK_RUNTIMES",
    "DEFAULT_TOLERANCES",
    "RUNNERS",
    "RUNTIMES",
    "Runner",
    "Tolerance",
    "TolerancePolicy",
    "get_runner",
    "runtimes_for",
]

#: runner name -> "module:class"; modules import their runtime lazily
RUNNERS: dict[str, str] = {
    "onnxruntime": "graphmint.validators.onnxruntime:OnnxRuntimeRunner",
    "onnxruntime-noopt": "graphmint.validators.onnxruntime:OnnxRuntimeNoOptRunner",
    "onnxruntime-cuda": "graphmint.validators.onnxruntime:OnnxRuntimeCudaRunner",
    "onnx-reference": "graphmint.validators.onnx_reference:OnnxReferenceRunner",
    "torchscript": "graphmint.validators.torchscript:TorchScriptRunner",
    "torchscript-cuda": "graphmint.validators.torchscript:TorchScriptCudaRunner",
    "torch-export": "graphmint.validators.torch_export:ExportedProgramRunner",
    "torch-export-cuda": "graphmint.validators.torch_export:ExportedProgramCudaRunner",
    "aot-inductor": "graphmint.validators.aot_inductor:AOTInductorRunner",
    "torch-in-process": "graphmint.validators.torch_in_process:TorchInProcessRunner",
    "tf-in-process": "graphmint.validators.tf_in_process:TfInProcessRunner",
    "saved-model": "graphmint.validators.saved_model:SavedModelRunner",
    "tflite": "graphmint.validators.tflite:TFLiteRunner",
}


#: every runtime an artifact is checked on, by the runner its route names (the first is that runner)
RUNTIMES: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnxruntime", "onnxruntime-noopt", "onnx-reference", "onnxruntime-cuda"),
    "torchscript": ("torchscript", "torchscript-cuda"),
    "torch-export": ("torch-export", "torch-export-cuda"),
}


#: runtimes that cross-check an artifact instead of deploying it: a second opinion on the file. Where
#: one cannot run a graph, or disagrees while the deployment runtime agrees with the eager model, that
#: is a warning about the cross-check runtime, not a failure of the artifact (unless strict).
CROSS_CHECK_RUNTIMES: frozenset[str] = frozenset({"onnxruntime-noopt", "onnx-reference"})


def runtimes_for(runner: str) -> tuple[str, ...]:
    return RUNTIMES.get(runner, (runner,))


def get_runner(name: str) -> type[Runner]:
    module, _, attr = RUNNERS[name].partition(":")
    runner: type[Runner] = getattr(importlib.import_module(module), attr)
    return runner
