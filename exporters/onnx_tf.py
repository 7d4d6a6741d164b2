"""Route `onnx` for TensorFlow: tf2onnx.convert.from_function on the serving tf.function.

(tf2onnx.convert.from_keras is not used: it does not work with Keras 3.) Inputs keep the spec's
names and outputs the eager output names, in the eager order, so ONNX Runtime is fed and read the
same way as for a PyTorch model.

A graph that calls functions marked for XLA compilation is frozen and converted in two steps
instead (`_inlined_graph_def`, then tf2onnx.convert.from_graph_def), so that those calls are
inlined; every other graph goes through from_function unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphmint.exporters._tf import TfExporter, input_signature, serving_function
from graphmint.exporters.base import ExportContext, Made, NotApplicable, Route, Unsupported

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
CUSTOM_OPS: dict[str, tuple[Callable[..., None], list[Any]]] = {"Erfc": (_erfc, [])}


#: the node attributes for which grappler's function inliner leaves a call alone, even in aggressive
#: mode (MarkedForXlaCompilation in tensorflow/core/grappler/optimizers/function_optimizer.cc)
_XLA_MARKS = ("_XlaMustCompile", "_xla_compile_id", "_tpu_replicate")


def _nodes(graph_def: Any) -> list[Any]:
    """The graph's nodes and those of every function in its library."""
    return [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]


def _compiled_calls(graph_def: Any) -> int:
    """How many nodes of the graph (its functions' bodies included) are marked for XLA compilation.

    tf.function(jit_compile=True) marks its call so. Keras 3's TensorFlow backend compiles grouped
    convolutions (ConvNeXt's depthwise Conv2D, `groups` = channels) and channels-first 3-D ones that
    way, since TensorFlow's CPU kernels cannot run them.
    """
    return sum(
        any(m in n.attr and (n.attr[m].s or n.attr[m].b) for m in _XLA_MARKS) for n in _nodes(graph_def)
    )


def _inlined_graph_def(concrete: Any, input_names: list[str], output_names: list[str]) -> Any:
    """The concrete function frozen, as tf2onnx freezes it, with its XLA marks taken off.

    tf2onnx inlines function calls while it freezes (convert_variables_to_constants_v2 with
    aggressive inlining) and again in its grappler pass, but grappler never inlines a call marked
    for XLA compilation, and its default mode honours the `_noinline` that jit_compile also sets on
    the function. Such a call reaches tf2onnx as a StatefulPartitionedCall, which it cannot convert.
    Without the marks, the grappler pass of tf2onnx.convert.from_graph_def inlines the call: an XLA
    cluster computes what its body computes, so the graph means the same.
    """
    import tensorflow as tf
    from tf2onnx import tf_loader

    with tf.device("/cpu:0"):
        graph_def = tf_loader.from_function(concrete, input_names, output_names)
    for node in _nodes(graph_def):
        for mark in _XLA_MARKS:
            if mark in node.attr:
                del node.attr[mark]
    for function in graph_def.library.function:
        if "_noinline" in function.attr:
            del function.attr["_noinline"]
    return graph_def


def _convert(function: Any, input_signature: list[Any]) -> tuple[Any, int]:
    """The ONNX model tf2onnx makes of the tf.function, and how many XLA-compiled calls it inlined.

    A graph without such calls is converted by tf2onnx.convert.from_function as it is; one with
    them is frozen without their marks and converted by from_graph_def, with the same input and
    output names from_function gives (tensors_to_rename: the output names are the dict's keys).
    """
    import tensorflow as tf
    import tf2onnx

    concrete = function.get_concrete_function(*input_signature)
    compiled = _compiled_calls(concrete.graph.as_graph_def())
    if not compiled:
        model, _ = tf2onnx.convert.from_function(
            function, input_signature=input_signature, opset=OPSET, custom_op_handlers=CUSTOM_OPS
        )
        return model, 0
    input_names = [t.name for t in concrete.inputs if t.dtype != tf.resource]
    output_names = [t.name for t in concrete.outputs if t.dtype != tf.resource]
    model, _ = tf2onnx.convert.from_graph_def(
        _inlined_graph_def(concrete, input_names, output_names),
        name=concrete.name,
        input_names=input_names,
        output_names=output_names,
        opset=OPSET,
        custom_op_handlers=CUSTOM_OPS,
        tensors_to_rename=tf2onnx.convert.tensor_names_from_structed(concrete, input_names, output_names),
    )
    return model, compiled


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
    format = "onnx"

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import onnx

        function = serving_function(ctx)
        model, inlined = _convert(function, input_signature(ctx))
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
        details = {"opset": opset, "pruned_inputs": pruned or None, "inlined_xla_calls": inlined or None}
        return Made(details=details)


class KerasExport(TfExporter):
    """keras.Model.export(format="onnx"), the fallback: Keras's own call of tf2onnx. It reports
    success where tf2onnx left a TensorFlow op it has no conversion for in the graph (Erfc, which
    exact GELU lowers to): such a file is unsupported with its upstream cause, never checked."""

    tool = "keras.Model.export(format='onnx')"
    package = "keras"
    format = "onnx"

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import keras
        import onnx

        if not isinstance(ctx.model, keras.Model):
            raise NotApplicable("keras.Model.export needs a keras.Model")
        ctx.model.export(str(path), format="onnx", input_signature=input_signature(ctx), verbose=False)
        model = onnx.load(str(path))
        left = sorted({n.op_type for n in model.graph.node if n.op_type in _NOT_ONNX})
        if left:
            raise Unsupported(f"Keras's ONNX export wrote an Erfc node, which is no ONNX operator: {left}")
        if len(model.graph.output) != len(ctx.output_names):
            raise ValueError(
                f"Keras wrote {len(model.graph.output)} outputs, the model has {ctx.output_names}"
            )
        for output, name in zip(model.graph.output, ctx.output_names, strict=True):
            for node in model.graph.node:
                node.input[:] = [name if o == output.name else o for o in node.input]
                node.output[:] = [name if o == output.name else o for o in node.output]
            output.name = name
        _name_interface(model, ctx)
        onnx.save(model, str(path))
        return Made(
            details={
                "opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
            }
        )


#: TensorFlow ops tf2onnx may leave in a graph as they are: no ONNX operator has their name
_NOT_ONNX = frozenset({"Erfc"})


ROUTE = Route(
    name="onnx",
    framework="tensorflow",
    strategies=(("tf2onnx", Convert()), ("keras-export", KerasExport())),
    description="ONNX via tf2onnx.convert.from_function, run in ONNX Runtime",
)
