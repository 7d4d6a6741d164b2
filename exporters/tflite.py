"""Route `tflite`: the TFLite converter on the concrete function, builtin ops first.

The chain is builtins only, then builtins plus Select TF ops (which need the Flex delegate at run
time). Where even Select TF ops cannot express the model, the route is skipped with the converter's
reason: that is a limit of TFLite, not a broken export.
"""

from __future__ import annotations

import re

from graphmint.exporters._tf import captured_tf_output, serving_function, trackable
from graphmint.exporters.base import ExportContext, ExportResult, Route, first_line

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


def _convert(ctx: ExportContext, ops: tuple[str, ...], skip_unsupported: bool) -> ExportResult:
    import tensorflow as tf

    path = ctx.workdir / "model.tflite"
    with captured_tf_output() as log:
        try:
            function = serving_function(ctx)
            converter = tf.lite.TFLiteConverter.from_concrete_functions(
                [function.get_concrete_function()], trackable(function)
            )
            converter.target_spec.supported_ops = {getattr(tf.lite.OpsSet, op) for op in ops}
            path.write_bytes(converter.convert())
        except Exception as exc:
            skipped = skip_unsupported and _unsupported(exc)
            return ExportResult(error=converter_reason(exc), skipped=skipped, log=log.getvalue())
    artifact = ctx.artifact(
        exporter=f"tf.lite.TFLiteConverter[{'+'.join(ops)}] (tensorflow {tf.__version__})",
        runner="tflite",
        path=path,
        details={"ops": "+".join(ops)},
    )
    return ExportResult(artifact=artifact, log=log.getvalue())


def convert_builtins(ctx: ExportContext) -> ExportResult:
    return _convert(ctx, BUILTINS, skip_unsupported=False)


def convert_select_tf_ops(ctx: ExportContext) -> ExportResult:
    return _convert(ctx, WITH_SELECT_TF_OPS, skip_unsupported=True)


ROUTE = Route(
    name="tflite",
    framework="tensorflow",
    strategies=(("builtins", convert_builtins), ("builtins+select-tf-ops", convert_select_tf_ops)),
    runner="tflite",
    description="TFLite flatbuffer (builtin ops, else with Select TF ops), run in the TFLite interpreter",
)
