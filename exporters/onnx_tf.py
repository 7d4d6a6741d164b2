"""Route `onnx` for TensorFlow: tf2onnx.convert.from_function on the serving tf.function.

(tf2onnx.convert.from_keras is not used: it does not work with Keras 3.) Inputs keep the spec's
names and outputs the eager output names, in the eager order, so ONNX Runtime is fed and read the
same way as for a PyTorch model.
"""

from __future__ import annotations

import re
from typing import Any

from exporters._tf import captured_tf_output, input_signature, serving_function
from exporters.base import ExportContext, ExportResult, Route, first_line

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


def convert(ctx: ExportContext) -> ExportResult:
    import onnx
    import tf2onnx

    path = ctx.workdir / "model.onnx"
    with captured_tf_output() as log:
        try:
            model, _ = tf2onnx.convert.from_function(
                serving_function(ctx),
                input_signature=input_signature(ctx),
                opset=OPSET,
                custom_op_handlers=CUSTOM_OPS,
            )
        except Exception as exc:
            return ExportResult(error=first_line(exc), log=log.getvalue())
        unsupported = re.search(r"Unsupported ops: (.+)", log.getvalue())
        if unsupported:
            return ExportResult(
                error=f"tf2onnx has no conversion for {unsupported.group(1)}", log=log.getvalue()
            )
        try:
            _name_interface(model, ctx)
            onnx.save(model, str(path))
        except Exception as exc:
            return ExportResult(error=first_line(exc), log=log.getvalue())
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    artifact = ctx.artifact(
        exporter=f"tf2onnx.convert.from_function (tf2onnx {tf2onnx.__version__})",
        runner="onnxruntime",
        path=path,
        details={"opset": opset},
    )
    return ExportResult(artifact=artifact, log=log.getvalue())


ROUTE = Route(
    name="onnx",
    framework="tensorflow",
    strategies=(("tf2onnx", convert),),
    runner="onnxruntime",
    description="ONNX via tf2onnx.convert.from_function, run in ONNX Runtime",
)
