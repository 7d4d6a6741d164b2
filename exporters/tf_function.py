"""Route `tf-function`: a concrete tf.function with a dynamic input signature. No file: checked in-process."""

from __future__ import annotations

from pathlib import Path

from graphmint.exporters._tf import TfExporter, serving_function
from graphmint.exporters.base import ExportContext, Made, Route


class ConcreteFunction(TfExporter):
    tool = "tf.function(input_signature=...).get_concrete_function()"
    format = "tf-function"

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        return Made(in_process=serving_function(ctx).get_concrete_function())


ROUTE = Route(
    name="tf-function",
    framework="tensorflow",
    strategies=(("tf.function", ConcreteFunction()),),
    description="concrete tf.function traced with dynamic dims as None, checked in-process: it has no file",
    in_process=True,
)
