"""Runners for OpenVINO: an IR folder (model.xml + model.bin) or an ONNX file, compiled for the CPU.

The compiled model is asked for an inference precision (`INFERENCE_PRECISION_HINT`) and read back:
OpenVINO's CPU plugin falls back silently where the CPU lacks the precision (a bf16 hint on a CPU
without avx512_bf16 or AMX reads back f32), so a runner whose precision did not take effect says so
instead of checking the artifact in another precision. An IR whose float constants were stored in f16
(`ov.save_model`'s default, compress_to_fp16=True) is refused by the float32 runner, naming them: its
weights were rounded to fp16 before any runtime saw them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from graphmint.exporters.formats import IR_XML
from graphmint.exporters.openvino import cannot_compute
from graphmint.validators.base import Runner, RuntimeUnavailable
from graphmint.validators.content import openvino_constants

__all__ = [
    "PRECISIONS",
    "OpenVinoBf16Runner",
    "OpenVinoOnnxRunner",
    "OpenVinoRunner",
    "PrecisionNotApplied",
    "ir_frozen_dims",
]

#: OpenVINO's element type names -> graphmint's precision names (exporters.base.Precision)
PRECISIONS = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


class PrecisionNotApplied(Exception):
    """The compiled model, or the file, computes in another precision than the runner asked for."""


def ir_frozen_dims(model: Any, artifact: Any) -> list[str]:
    """Notes for every declared dynamic dim that the OpenVINO model's inputs hold as a fixed number."""
    declared: Mapping[str, Mapping[int, str]] = artifact.dynamic_axes
    notes = []
    for port in model.inputs:
        name = port.get_any_name()
        shape = port.get_partial_shape()
        for axis, dim_name in declared.get(name, {}).items():
            if axis < shape.rank.get_length() and shape[axis].is_static:
                notes.append(
                    f"the OpenVINO model froze dim {dim_name!r} of input {name!r} (axis {axis}) "
                    f"to {shape[axis].get_length()}"
                )
    return notes


class OpenVinoRunner(Runner):
    """An OpenVINO IR on the CPU plugin, compiled with a float32 inference precision hint."""

    name = "openvino"
    requires = ("openvino",)
    #: the INFERENCE_PRECISION_HINT asked for (an OpenVINO element type name)
    hint: ClassVar[str] = "f32"

    def __init__(self, artifact: Any) -> None:
        super().__init__(artifact)
        self.compiled: Any = None
        self.request: Any = None
        #: the compiled model's output port of each of the artifact's outputs, in order
        self.outputs: dict[str, Any] = {}

    def model_file(self) -> Path:
        assert self.artifact.path is not None
        path = Path(self.artifact.path)
        return path / IR_XML if path.is_dir() else path

    def check_file(self) -> None:
        """Refuse an IR whose float constants are stored in a reduced precision."""
        reduced = openvino_constants(self.model_file(), frozenset({"f16", "bf16"}))
        if reduced:
            shown = ", ".join(reduced[:5]) + (f" and {len(reduced) - 5} more" if len(reduced) > 5 else "")
            raise PrecisionNotApplied(
                f"the IR stores {len(reduced)} float constant(s) in f16/bf16 ({shown}): it was saved "
                "with compress_to_fp16=True, so its weights are not the model's float32 ones"
            )

    def activate_impl(self) -> None:
        import openvino as ov

        core = ov.Core()
        why = cannot_compute(self.hint)
        if why:
            raise RuntimeUnavailable(why)
        self.check_file()
        model = core.read_model(str(self.model_file()))
        frozen = ir_frozen_dims(model, self.artifact)
        self.notes.extend(frozen)
        if frozen:
            self.facts["frozen_dims"] = frozen
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": self.hint}
        if self.threads is not None:
            config["INFERENCE_NUM_THREADS"] = self.threads
        self.compiled = core.compile_model(model, "CPU", config)
        applied = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.facts["inference_precision"] = PRECISIONS.get(applied, applied)
        self.runtime = f"openvino {ov.get_version().split('-')[0]} CPU INFERENCE_PRECISION_HINT={applied}"
        if applied != self.hint:
            raise PrecisionNotApplied(
                f"asked OpenVINO's CPU plugin for INFERENCE_PRECISION_HINT={self.hint}, the compiled "
                f"model reports {applied}"
            )
        ports = {n: p for p in self.compiled.outputs for n in p.get_names()}
        missing = [n for n in self.artifact.output_names if n not in ports]
        if missing:
            raise ValueError(f"the OpenVINO model's outputs are {sorted(ports)}, it lacks {missing}")
        self.outputs = {n: ports[n] for n in self.artifact.output_names}
        self.request = self.compiled.create_infer_request()

    def deactivate_impl(self) -> None:
        self.request = self.compiled = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        # the arrays are handed over without a copy (they outlive the synchronous call): copying them
        # into new tensors took 40 to 50 us a call, more than SimpleNet's whole inference
        inputs = {name: np.ascontiguousarray(v) for name, v in feeds.items()}
        results = self.request.infer(inputs, share_inputs=True)
        # the request reuses its output tensors on the next call: copy them out
        return [np.array(results[port], copy=True) for port in self.outputs.values()]


class OpenVinoBf16Runner(OpenVinoRunner):
    """The same IR compiled to compute in bf16; unavailable, saying why, on a CPU that cannot."""

    name = "openvino-bf16"
    hint = "bf16"


class OpenVinoOnnxRunner(OpenVinoRunner):
    """An ONNX file read by OpenVINO's own ONNX frontend, in float32: an independent second runtime."""

    name = "openvino-onnx"

    def check_file(self) -> None:
        import onnx

        # the same refusal ONNX Runtime's checks give: external data must stay beside the file
        onnx.checker.check_model(str(self.model_file()))
