"""What an artifact file holds, read from disk without running it: how many of its tensors are in a
reduced precision (int8, uint8, int16, fp16, bf16), so that a reduced-precision route whose converter
left everything in float32 is not passed as if it were reduced; and the Select TF ops a TFLite file
needs, which no interpreter here can run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from graphmint.exporters.formats import IR_XML
from graphmint.exporters.tflite_file import tflite_model as _tflite_model

__all__ = ["flex_ops", "openvino_constants", "reduced_tensors"]

#: OpenVINO element types of reduced precision (floats and integers a quantizer writes)
_OPENVINO_REDUCED = frozenset({"f16", "bf16", "f8e4m3", "f8e5m2", "i8", "u8", "i4", "u4", "nf4", "i16"})


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


def _tflite(path: Path) -> int:
    schema, model = _tflite_model(path)
    kinds = schema.TensorType
    reduced = {kinds.INT8, kinds.UINT8, kinds.INT16, kinds.FLOAT16, getattr(kinds, "BFLOAT16", -1)}
    count = 0
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        count += sum(graph.Tensors(t).Type() in reduced for t in range(graph.TensorsLength()))
    return count


def openvino_constants(path: Path, types: frozenset[str] = _OPENVINO_REDUCED) -> list[str]:
    """The names of the constants of an OpenVINO IR (its folder, or its .xml) whose element type is
    one of `types` (`ov.save_model`'s default compress_to_fp16=True stores float weights as f16)."""
    import xml.etree.ElementTree as ET

    xml = path / IR_XML if path.is_dir() else path
    root = ET.parse(xml).getroot()
    return [
        layer.get("name", "?")
        for layer in root.iter("layer")
        if layer.get("type") == "Const" and (data := layer.find("data")) is not None
        if data.get("element_type") in types
    ]


def _openvino(path: Path) -> int:
    return len(openvino_constants(path))


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
_COUNTERS = {".onnx": _onnx, ".tflite": _tflite, ".openvino": _openvino}


def reduced_tensors(path: Path) -> int | None:
    """How many tensors of the file (weights, constants, activations) are in a reduced precision;
    None for a format this does not read."""
    counter = _COUNTERS.get(path.suffix)
    return None if counter is None else counter(path)
