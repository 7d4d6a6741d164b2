"""Route `saved-model`: tf.saved_model.save with a `serving_default` signature of named inputs/outputs."""

from __future__ import annotations

from graphmint.exporters._tf import captured_tf_output, serving_function, trackable
from graphmint.exporters.base import ExportContext, ExportResult, Route, first_line

SIGNATURE = "serving_default"


def save(ctx: ExportContext) -> ExportResult:
    import tensorflow as tf

    path = ctx.workdir / "model.savedmodel"
    with captured_tf_output() as log:
        try:
            function = serving_function(ctx)
            tf.saved_model.save(
                trackable(function), str(path), signatures={SIGNATURE: function.get_concrete_function()}
            )
        except Exception as exc:
            return ExportResult(error=first_line(exc), log=log.getvalue())
    artifact = ctx.artifact(
        exporter=f"tf.saved_model.save (tensorflow {tf.__version__})",
        runner="saved-model",
        path=path,
        details={"signature": SIGNATURE},
    )
    return ExportResult(artifact=artifact, log=log.getvalue())


ROUTE = Route(
    name="saved-model",
    framework="tensorflow",
    strategies=(("tf.saved_model.save", save),),
    runner="saved-model",
    description="SavedModel with a named serving_default signature, reloaded in a fresh process",
)
