"""Route `tf-function`: a concrete tf.function with a dynamic input signature. No file: checked in-process."""

from __future__ import annotations

from graphmint.exporters._tf import captured_tf_output, serving_function
from graphmint.exporters.base import ExportContext, ExportResult, Route, first_line


def trace(ctx: ExportContext) -> ExportResult:
    import tensorflow as tf

    with captured_tf_output() as log:
        try:
            concrete = serving_function(ctx).get_concrete_function()
        except Exception as exc:
            return ExportResult(error=first_line(exc), log=log.getvalue())
    artifact = ctx.artifact(
        exporter=f"tf.function(input_signature=...).get_concrete_function() (tensorflow {tf.__version__})",
        runner="tf-in-process",
        path=None,
        in_process=concrete,
    )
    return ExportResult(artifact=artifact, log=log.getvalue())


ROUTE = Route(
    name="tf-function",
    framework="tensorflow",
    strategies=(("tf.function", trace),),
    runner="tf-in-process",
    description="concrete tf.function traced with dynamic dims as None, checked in-process: it has no file",
    in_process=True,
)
