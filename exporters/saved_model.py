"""Route `saved-model`: tf.saved_model.save with a `serving_default` signature of named inputs/outputs."""

from __future__ import annotations

from pathlib import Path

from graphmint.exporters._tf import TfExporter, serving_function, trackable
from graphmint.exporters.base import ExportContext, Made, Route

SIGNATURE = "serving_default"


class Save(TfExporter):
    tool = "tf.saved_model.save"
    format = "saved-model"

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import tensorflow as tf

        function = serving_function(ctx)
        signatures = {SIGNATURE: function.get_concrete_function()}
        tf.saved_model.save(trackable(function), str(path), signatures=signatures)
        return Made(details={"signature": SIGNATURE})


ROUTE = Route(
    name="saved-model",
    framework="tensorflow",
    strategies=(("tf.saved_model.save", Save()),),
    description="SavedModel with a named serving_default signature, reloaded in a fresh process",
)
