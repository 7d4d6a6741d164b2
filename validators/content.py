"""What an artifact file holds, read from disk without running it: how many of its tensors are in a
reduced precision (int8, uint8, int16, fp16, bf16), so that a reduced-precision route whose converter
left everything in float32 is not passed as if it were reduced; and the Select TF ops a TFLite file
needs, which no interpreter here can run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["flex_ops", "input_shape_signatures", "reduced_tensors"]


def _onnx(path: Path) -> int:
    import onnx

    reduced = {
        onnx.TensorProto.INT8,
        onnx.TensorProto.UINT8,
        onnx.TensorProto.INT16,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
    }
    model = onnx.load(str(path), load_external_data=False)
    graphs, count = [model.graph], 0
    while graphs:
        graph = graphs.pop()
        count += sum(t.data_type in reduced for t in graph.initializer)
        for node in graph.node:
            for attr in node.attribute:
                count += attr.HasField("t") and attr.t.data_type in reduced
                graphs.extend([attr.g] if attr.HasField("g") else [])
                graphs.extend(attr.graphs)
    return count


def _tflite_model(path: Path) -> tuple[Any, Any]:
    """The TFLite flatbuffer's schema module and its root Model table: LiteRT's reader, so that a
    file a torch route wrote is read without TensorFlow, else TensorFlow's."""
    try:
        from ai_edge_litert import schema_py_generated as schema  # type: ignore[import-not-found]
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema

    return schema, schema.Model.GetRootAs(path.read_bytes(), 0)


def input_shape_signatures(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Per input tensor of the file's first signature (by its signature name): the shape signature it
    holds, -1 for a dynamic dim (the plain shape where the file holds no signature shape)."""
    _, model = _tflite_model(Path(path))
    graph = model.Subgraphs(0)
    names: dict[int, str] = {}
    if model.SignatureDefsLength():
        signature = model.SignatureDefs(0)
        for i in range(signature.InputsLength()):
            entry = signature.Inputs(i)
            names[entry.TensorIndex()] = entry.Name().decode()
    shapes = {}
    for i in range(graph.InputsLength()):
        index = graph.Inputs(i)
        tensor = graph.Tensors(index)
        dims = tensor.ShapeSignatureAsNumpy() if tensor.ShapeSignatureLength() else tensor.ShapeAsNumpy()
        shapes[names.get(index, tensor.Name().decode())] = tuple(int(d) for d in dims)
    return shapes


def _tflite(path: Path) -> int:
    schema, model = _tflite_model(path)
    kinds = schema.TensorType
    reduced = {kinds.INT8, kinds.UINT8, kinds.INT16, kinds.FLOAT16, getattr(kinds, "BFLOAT16", -1)}
    count = 0
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        count += sum(graph.Tensors(t).Type() in reduced for t in range(graph.TensorsLength()))
    return count


def flex_ops(path: str | Path) -> Counter[str]:
    """The Select TF ops a TFLite file uses (its `Flex…` custom operators), counted by TF op name."""
    _, model = _tflite_model(Path(path))
    codes = [model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength())]
    found: Counter[str] = Counter()
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for o in range(graph.OperatorsLength()):
            code = codes[graph.Operators(o).OpcodeIndex()]
            if code and code.startswith(b"Flex"):
                found[code[4:].decode(errors="replace")] += 1
    return found


#: file suffix -> counter; other formats (a .pt2 is loaded only by code it may run) are not counted
_COUNTERS = {".onnx": _onnx, ".tflite": _tflite}


def reduced_tensors(path: Path) -> int | None:
    """How many tensors of the file (weights, constants, activations) are in a reduced precision;
    None for a format this does not read."""
    counter = _COUNTERS.get(path.suffix)
    return None if counter is None else counter(path)
