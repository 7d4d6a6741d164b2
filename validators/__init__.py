"""Validators: one runner module per runtime, the comparison, tolerance policy and result types."""

from __future__ import annotations

import importlib

from validators.base import Runner
from validators.tolerance import DEFAULT_TOLERANCES, Tolerance, TolerancePolicy

__all__ = ["DEFAULT_TOLERANCES", "RUNNERS", "Runner", "Tolerance", "TolerancePolicy", "get_runner"]

#: runner name -> "module:class"; modules import their runtime lazily
RUNNERS: dict[str, str] = {
    "onnxruntime": "validators.onnxruntime:OnnxRuntimeRunner",
    "torchscript": "validators.torchscript:TorchScriptRunner",
    "torch-export": "validators.torch_export:ExportedProgramRunner",
    "aot-inductor": "validators.aot_inductor:AOTInductorRunner",
    "torch-in-process": "validators.torch_in_process:TorchInProcessRunner",
    "tf-in-process": "validators.tf_in_process:TfInProcessRunner",
    "saved-model": "validators.saved_model:SavedModelRunner",
    "tflite": "validators.tflite:TFLiteRunner",
}


def get_runner(name: str) -> type[Runner]:
    module, _, attr = RUNNERS[name].partition(":")
    runner: type[Runner] = getattr(importlib.import_module(module), attr)
    return runner
