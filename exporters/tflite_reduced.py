"""Routes `tflite-fp16`, `tflite-int8-dynamic`, `tflite-int8` (opt-in): the TFLite converter of the
`tflite` route with post-training quantization, inputs and outputs kept float32, judged by the
precision's accuracy budget.

- fp16: weights stored as float16 (`target_spec.supported_types = [tf.float16]`);
- int8-dynamic: dynamic range quantization (weights int8, activations quantized at run time);
- int8: full integer quantization, calibrated on the context's inputs (`representative_dataset`);
  ops without an int8 kernel stay float.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphmint.exporters.base import ExportContext, Precision, Route
from graphmint.exporters.tflite import BUILTINS, WITH_SELECT_TF_OPS, Convert

__all__ = ["ROUTES"]


class Quantized(Convert):
    """The TFLite converter with post-training quantization `kind` (fp16, int8-dynamic, int8)."""

    def __init__(self, ops: tuple[str, ...], skip_unsupported: bool, kind: str) -> None:
        super().__init__(ops, skip_unsupported)
        self.kind = kind

    def label(self) -> str:
        return f"{super().label()}+{self.kind}"

    def configure(self, converter: Any, ctx: ExportContext) -> dict[str, Any]:
        import tensorflow as tf

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if self.kind == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        elif self.kind == "int8":
            feeds = list(ctx.calibration) or [dict(ctx.example_inputs)]

            def representative() -> Iterator[list[Any]]:
                for feed in feeds:
                    yield [feed[name] for name in ctx.input_names]

            converter.representative_dataset = representative
        return {"quantization": self.kind, "calibration_inputs": len(ctx.calibration) or None}


def _route(kind: str, precision: Precision, what: str) -> Route:
    return Route(
        name=f"tflite-{kind}",
        framework="tensorflow",
        strategies=(
            ("builtins", Quantized(BUILTINS, False, kind)),
            ("builtins+select-tf-ops", Quantized(WITH_SELECT_TF_OPS, True, kind)),
        ),
        runner="tflite",
        default=False,
        description=f"TFLite {what}, run in the TFLite interpreter, judged by its accuracy budget",
        precision=precision,
    )


#: (framework, route name) -> route
ROUTES: dict[tuple[str, str], Route] = {
    ("tensorflow", r.name): r
    for r in (
        _route("fp16", Precision.FP16, "with float16 weights"),
        _route("int8-dynamic", Precision.INT8, "dynamic range quantized (int8 weights)"),
        _route("int8", Precision.INT8, "full integer quantized, calibrated on the grid's inputs"),
    )
}
