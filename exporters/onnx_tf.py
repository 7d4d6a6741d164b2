"""Route `onnx` for TensorFlow: tf2onnx.convert.from_function on the serving tf.function.

(tf2onnx.convert.from_keras is not used: it does not work with Keras 3.) Inputs keep the spec's
names and outputs the eager output names, in the eager order, so ONNX Runtime is fed and read the
same way as for a PyTorch model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphmint.exporters._tf import TfExporter, input_signature, serving_function
from graphmint.exporters.base import ExportContext, Made, Route

OPSET = 17


def _erfc(graph: Any, node: Any, name: str, args: list[Any]) -> None:
    """erfc(x) = 1 - erf(x). tf2onnx has no Erfc, which exact GELU (tf.nn.gelu) lowers to."""
    import numpy as np
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(graph.get_dtype(node.input[0]))
    erf = graph.make_node("Erf", [node.input[0]], op_name_scope=name)
    one = graph.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype=dtype))
    graph.replace_inputs(node, [one.output[0], erf.output[0]])
    node.type = "Sub"


#: TensorFlow ops tf2onnx lacks, as {op: (handler, args)} for its custom_op_handlers
CUSTOM_OPS = {"Erfc": (_erfc, [])}


def _captured_constants(function: Any) -> dict[str, Any]:
    """The constant tensors the traced function captured, by the name of the placeholder inside it."""
    import tensorflow as tf

    constants = {}
    for external, internal in function.get_concrete_function().graph.captures:
        if isinstance(external, tf.Tensor) and external.dtype != tf.resource and hasattr(external, "numpy"):
            constants[internal.name] = external.numpy()
    return constants


def _prune_inputs(model: Any, ctx: ExportContext, constants: dict[str, Any]) -> list[str]:
    """Make every graph input that the model does not declare a constant, or drop it; returns their names.

    tf2onnx leaves what the traced function captured as graph inputs: constants (a Keras
    Normalization layer's mean and variance), sometimes with an initializer, sometimes without one,
    and inputs no node reads. None of them is part of the model's interface: one with an initializer
    becomes a plain constant, a captured constant gets its value as an initializer, an unread one
    goes. An undeclared input that a node reads and nothing provides stays, and the check names it.
    """
    from onnx import numpy_helper

    declared = set(ctx.input_names)
    initialized = {t.name for t in model.graph.initializer}
    read = {name for node in model.graph.node for name in node.input}
    keep, dropped = [], []
    for graph_input in model.graph.input:
        name = graph_input.name
        if name in declared or (name in read and name not in initialized and name not in constants):
            keep.append(graph_input)
            continue
        if name in read and name not in initialized:
            model.graph.initializer.append(numpy_helper.from_array(constants[name], name=name))
        dropped.append(name)
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return dropped


def _name_interface(model: Any, ctx: ExportContext) -> None:
    """Order the graph outputs as the eager outputs and name the inputs' dynamic dims as declared."""
    outputs = {o.name: o for o in model.graph.output}
    if set(outputs) != set(ctx.output_names):
        raise ValueError(f"tf2onnx named the outputs {list(outputs)}, expected {list(ctx.output_names)}")
    ordered = [outputs[n] for n in ctx.output_names]
    del model.graph.output[:]
    model.graph.output.extend(ordered)
    for graph_input in model.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        for axis, (dim, _, _) in ctx.dynamic_axes.get(graph_input.name, {}).items():
            if axis < len(dims) and not dims[axis].HasField("dim_value"):
                dims[axis].dim_param = dim


class Convert(TfExporter):
    tool = "tf2onnx.convert.from_function"
    package = "tf2onnx"
    runner = "onnxruntime"
    filename = "model.onnx"

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import onnx
        import tf2onnx

        function = serving_function(ctx)
        model, _ = tf2onnx.convert.from_function(
            function,
            input_signature=input_signature(ctx),
            opset=OPSET,
            custom_op_handlers=CUSTOM_OPS,
        )
        unsupported = [
            m.removeprefix("Unsupported ops: ")
            for m in self.logged("tf2onnx")
            if m.startswith("Unsupported ops: ")
        ]
        if unsupported:
            raise RuntimeError(f"tf2onnx has no conversion for {unsupported[0]}")
        _name_interface(model, ctx)
        pruned = _prune_inputs(model, ctx, _captured_constants(function))
        onnx.save(model, str(path))
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        return Made(details={"opset": opset, "pruned_inputs": pruned or None})


ROUTE = Route(
    name="onnx",
    framework="tensorflow",
    strategies=(("tf2onnx", Convert()),),
    runner="onnxruntime",
    description="ONNX via tf2onnx.convert.from_function, run in ONNX Runtime",
)
