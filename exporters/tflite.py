"""Route `tflite`: the TFLite converter on the concrete function, builtin ops first.

The chain is builtins only, then builtins plus Select TF ops (which need the Flex delegate at run
time). Where even Select TF ops cannot express the model, the route is skipped with the converter's
reason: that is a limit of TFLite, not a broken export.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from graphmint.exporters._tf import TfExporter, serving_function, trackable
from graphmint.exporters.base import ExportContext, Made, NotApplicable, Route, first_line

BUILTINS = ("TFLITE_BUILTINS",)
WITH_SELECT_TF_OPS = ("TFLITE_BUILTINS", "SELECT_TF_OPS")


def converter_reason(exc: BaseException) -> str:
    """The converter's own error lines, without the source locations it prefixes them with."""
    errors = list(dict.fromkeys(m.strip() for m in re.findall(r"error: (.+)", str(exc))))
    return first_line(f"TFLite converter: {'; '.join(errors)}") if errors else first_line(exc)


def _unsupported(exc: BaseException) -> bool:
    """Whether the converter failed because an op has no TFLite form (neither builtin nor Select TF)."""
    if "neither a custom op nor a flex op" in str(exc):
        return True
    try:
        from tensorflow.compiler.mlir.lite.metrics import converter_error_data_pb2 as error_data
    except ImportError:
        return False
    codes = {e.error_code for e in getattr(exc, "errors", [])}
    return error_data.ConverterErrorData.ERROR_NEEDS_CUSTOM_OPS in codes


class Convert(TfExporter):
    """The converter with the given op sets. With `skip_unsupported`, a model that needs ops neither
    set has is a skip with the converter's reason, not a failure."""

    tool = "tf.lite.TFLiteConverter"
    format = "tflite"

    def __init__(self, ops: tuple[str, ...], skip_unsupported: bool) -> None:
        self.ops, self.skip_unsupported = ops, skip_unsupported

    def label(self) -> str:
        return f"{self.tool}[{'+'.join(self.ops)}]"

    def configure(self, converter: Any, ctx: ExportContext) -> dict[str, Any]:
        """Set what else the converter does (a reduced precision: exporters.tflite_reduced); the
        details it adds to the manifest."""
        return {}

    def reason(self, exc: Exception) -> str:
        return converter_reason(exc)

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import tensorflow as tf

        function = serving_function(ctx)
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [function.get_concrete_function()], trackable(function)
        )
        converter.target_spec.supported_ops = {getattr(tf.lite.OpsSet, op) for op in self.ops}
        details = self.configure(converter, ctx)
        try:
            flatbuffer = converter.convert()
        except Exception as exc:
            if self.skip_unsupported and _unsupported(exc):
                raise NotApplicable(converter_reason(exc)) from exc
            raise
        assert path is not None
        path.write_bytes(flatbuffer)
        return Made(details={"ops": "+".join(self.ops), **details})


class KerasExport(TfExporter):
    """keras.Model.export(format="litert"): Keras's own converter call, which always enables Select TF
    ops; a file that then holds Flex ops cannot run here (LiteRT#6458), as the runner reports."""

    tool = "keras.Model.export(format='litert')"
    package = "keras"
    format = "tflite"

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import keras

        from graphmint.exporters._tf import input_signature

        if not isinstance(ctx.model, keras.Model):
            raise NotApplicable("keras.Model.export needs a keras.Model")
        ctx.model.export(str(path), format="litert", input_signature=input_signature(ctx), verbose=False)
        return Made(details={"ops": "+".join(WITH_SELECT_TF_OPS)})


ROUTE = Route(
    name="tflite",
    framework="tensorflow",
    strategies=(
        ("builtins", Convert(BUILTINS, skip_unsupported=False)),
        ("builtins+select-tf-ops", Convert(WITH_SELECT_TF_OPS, skip_unsupported=True)),
        ("keras-export", KerasExport()),
    ),
    description="TFLite flatbuffer (builtin ops, else with Select TF ops), run in the TFLite interpreter",
)
