"""Reading a TFLite flatbuffer without running it: its schema's root table, and its inputs' shape
signatures (what an exporter checks its own file by, and validators.content counts in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["input_shape_signatures", "tflite_model"]


def tflite_model(path: Path) -> tuple[Any, Any]:
    """The TFLite flatbuffer's schema module and its root Model table: LiteRT's reader, so that a
    file a torch route wrote is read without TensorFlow, else TensorFlow's."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema

    return schema, schema.Model.GetRootAs(path.read_bytes(), 0)


def input_shape_signatures(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Per input tensor of the file's first signature (by its signature name): the shape signature it
    holds, -1 for a dynamic dim (the plain shape where the file holds no signature shape)."""
    _, model = tflite_model(Path(path))
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
