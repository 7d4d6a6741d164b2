"""Helpers shared by the TensorFlow exporters (TensorFlow is imported only inside them)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from graphmint.exporters.base import CapturedLog, ExportContext, Exporter, captured_output
from graphmint.exporters.capture import native_output

__all__ = [
    "TF_LOGGERS",
    "TfExporter",
    "captured_tf_output",
    "input_signature",
    "serving_function",
    "trackable",
]

TF_LOGGERS = ("tensorflow", "absl", "tf2onnx", "keras")


@contextlib.contextmanager
def captured_tf_output() -> Iterator[CapturedLog]:
    """captured_output for TensorFlow's loggers, plus what its native code prints."""
    with captured_output(TF_LOGGERS) as log, native_output(log):
        yield log


class TfExporter(Exporter):
    """A TensorFlow strategy: TensorFlow's loggers and native output go to the route's log."""

    package = "tensorflow"

    def capture(self) -> contextlib.AbstractContextManager[CapturedLog]:
        return captured_tf_output()


def input_signature(ctx: ExportContext) -> list[Any]:
    """One named tf.TensorSpec per input, in order; every declared dynamic dim is None."""
    import tensorflow as tf

    specs = []
    for name in ctx.input_names:
        dynamic = ctx.dynamic_axes.get(name, {})
        shape = [
            None if axis in dynamic else size for axis, size in enumerate(ctx.example_inputs[name].shape)
        ]
        specs.append(tf.TensorSpec(shape, tf.dtypes.as_dtype(ctx.dtypes[name]), name=name))
    return specs


def serving_function(ctx: ExportContext) -> Any:
    """A tf.function over the model in inference mode, with the context's input signature.

    It takes the inputs positionally (named by their TensorSpecs) and returns a dict of the eager
    output names, so every static form built from it carries the same input and output names.
    """
    import tensorflow as tf

    from graphmint.models.frameworks.tensorflow_fw import call_model, flatten_tf_outputs

    model, names, inputs = ctx.model, ctx.output_names, ctx.input_names

    def serve(*args: Any) -> dict[str, Any]:
        outputs = flatten_tf_outputs(call_model(model, inputs, args))
        if list(outputs) != list(names):
            raise ValueError(f"the traced model returns outputs {list(outputs)}, eagerly {list(names)}")
        return outputs

    return tf.function(serve, input_signature=input_signature(ctx))


def trackable(function: Any) -> Any:
    """A tf.Module that tracks the variables `function` reads, for saving it with them.

    It tracks the captured tf.Variables themselves, not the model object: Keras 3 wraps its
    variables, and the TFLite converter reads garbage for wrapped ones it finds in a SavedModel.
    They are kept in the order the graph captures them (`variables` has no stable order), so the
    same model saves to the same checkpoint.
    """
    import tensorflow as tf

    concrete = function.get_concrete_function()
    order = {id(t): i for i, t in enumerate(concrete.captured_inputs)}
    holder = tf.Module()
    holder.captured = sorted(concrete.variables, key=lambda v: order.get(id(v.handle), len(order)))
    holder.serve = function
    return holder
