"""Reduced-precision ONNX: fp16 conversion, int8 quantization, and the layer diagnosis of a retry.

Conversions read the float32 file and write the reduced one, inputs and outputs kept float32:
- fp16: onnxruntime.transformers.float16 (ONNX Runtime's copy of onnxconverter-common's converter);
- int8 dynamic: onnxruntime.quantization.quantize_dynamic (weights int8, activations at run time);
- int8 static: onnxruntime.quantization.quantize_static, QDQ, calibrated on the context's inputs.

`keep_float` is the retry: it converts, measures every output's SNR against the float32 file on the
calibration inputs (exporters.snr, the accuracy budget's measure), and while one is below its
target it ranks the layers by the error each adds
(onnxruntime.quantization.qdq_loss_debug collects every node's float output in both files; a
layer's loss is how far its output's SQNR falls below its inputs'), keeps the worst in float
(`nodes_to_exclude`, the fp16 `node_block_list`) and converts again. fp16 first blocks every layer
whose float32 activations leave fp16's range (|x| > 65504).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.exporters._onnx_diagnosis import (
    Diagnosis,
    Reader,
    activations,
    feeders,
    fp16_range,
    ranked,
)
from graphmint.exporters.base import ExportContext, Precision
from graphmint.exporters.snr import snr_db

__all__ = ["CONVERSIONS", "Conversion", "keep_float", "name_nodes"]

#: inputs run through both files to rank layers and to calibrate (the first of the context's)
CALIBRATION_LIMIT = 8
#: the ops whose int8 kernels make a model faster: what a static retry still quantizes
COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
#: rounds of the retry; round r keeps 2**(r-1) more layers in float (1, 2, 4, 8: up to 15 layers)
ROUNDS = 4
#: the retry aims this far above each output's SNR budget: the check against eager must still hold
MARGIN_DB = 3.0


def name_nodes(model: Any) -> None:
    """Give every unnamed node a unique name: exclusion lists name nodes."""
    taken = {n.name for n in model.graph.node if n.name}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def _feeds(ctx: ExportContext) -> list[dict[str, np.ndarray]]:
    feeds = list(ctx.calibration) or [dict(ctx.example_inputs)]
    return [dict(f) for f in feeds[:CALIBRATION_LIMIT]]


#: ops kept float32 in every fp16 file, besides the converter's own list: ONNX Runtime 1.32 crashes
#: (SIGSEGV) optimizing a graph with an fp16 Gelu (opset 20) for the CPU (the zoo's TransformerBlock)
FP16_OP_BLOCK_LIST = ("Gelu",)


def _fp16(
    source: Path, target: Path, ctx: ExportContext, keep: Sequence[str], compute_only: bool = False
) -> None:
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = convert_float_to_float16(
        onnx.load(str(source)),
        keep_io_types=True,
        op_block_list=[*DEFAULT_OP_BLOCK_LIST, *FP16_OP_BLOCK_LIST],
        node_block_list=list(keep),
    )
    _drop_round_trips(model)
    sorted_model = OnnxModel(model)
    sorted_model.topological_sort()  # the converter appends the Casts it adds for kept float32 I/O
    onnx.save(sorted_model.model, str(target))


def _int8_dynamic(
    source: Path, target: Path, ctx: ExportContext, keep: Sequence[str], compute_only: bool = False
) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # reduce_range: 7-bit weights, so that x86 CPUs without VNNI (u8s8 through pmaddubsw) do not saturate
    # it rewrites a Gemm as `<name>_MatMul` + `<name>_Add` before it quantizes the MatMul
    excluded = [*keep, *(f"{name}_MatMul" for name in keep)]
    quantize_dynamic(
        source, target, weight_type=QuantType.QInt8, reduce_range=True, nodes_to_exclude=excluded
    )


def _int8_static(
    source: Path, target: Path, ctx: ExportContext, keep: Sequence[str], compute_only: bool = False
) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        source,
        target,
        Reader(_feeds(ctx)),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        reduce_range=True,
        nodes_to_exclude=list(keep),
        op_types_to_quantize=list(COMPUTE_OPS) if compute_only else None,
    )


def _drop_round_trips(model: Any) -> None:
    """Bypass each float32 → float16 → float32 pair of Casts the converter puts between two layers it
    keeps in float32: the tensor would pass through fp16 on its way (and overflow there)."""
    from onnx import TensorProto, helper

    def cast_to(node: Any) -> int | None:
        if node.op_type != "Cast":
            return None
        return next((int(helper.get_attribute_value(a)) for a in node.attribute if a.name == "to"), None)

    graph_outputs = {o.name for o in model.graph.output}
    readers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    renamed: dict[str, str] = {}
    dropped: set[int] = set()
    for node in model.graph.node:
        users = readers.get(node.output[0], []) if cast_to(node) == TensorProto.FLOAT16 else []
        if (
            users
            and node.output[0] not in graph_outputs
            and all(cast_to(u) == TensorProto.FLOAT for u in users)
        ):
            if any(u.output[0] in graph_outputs for u in users):
                continue
            renamed.update({u.output[0]: node.input[0] for u in users})
            dropped.update(id(n) for n in (node, *users))
    if not renamed:
        return
    keep = [n for n in model.graph.node if id(n) not in dropped]
    for node in keep:
        for index, name in enumerate(node.input):
            if name in renamed:
                node.input[index] = renamed[name]
    del model.graph.node[:]
    model.graph.node.extend(keep)


@dataclass(frozen=True)
class Conversion:
    """One way from a float32 ONNX file to a reduced one: the tool that does it, and its precision."""

    name: str
    tool: str
    precision: Precision
    convert: Callable[[Path, Path, ExportContext, Sequence[str], bool], None]
    #: QDQ quantizes tensors, not layers: a tensor stays float only where its producer is kept too, so
    #: keeping a layer in float keeps the layers that feed it as well
    feeders: bool = False
    #: the retry quantizes only the layers that do the arithmetic (COMPUTE_OPS): the residual Adds,
    #: Softmax and LayerNorm a QDQ file quantizes by default cost transformers most of their SNR
    compute_only: bool = False


CONVERSIONS: Mapping[str, Conversion] = {
    "fp16": Conversion("fp16", "onnxruntime.transformers.float16", Precision.FP16, _fp16),
    "int8-dynamic": Conversion(
        "int8-dynamic", "onnxruntime.quantization.quantize_dynamic", Precision.INT8, _int8_dynamic
    ),
    "int8-static": Conversion(
        "int8-static",
        "onnxruntime.quantization.quantize_static(QDQ)",
        Precision.INT8,
        _int8_static,
        True,
        True,
    ),
}


def keep_float(
    conversion: Conversion,
    source: Path,
    target: Path,
    ctx: ExportContext,
    targets: Mapping[str, float],
    rounds: int = ROUNDS,
) -> Diagnosis:
    """Convert `source` into `target`, keeping the worst layers in float until every output's SNR
    against `source` reaches its target (dB, + MARGIN_DB) or `rounds` are spent (0: convert once)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(source))
    feeds = _feeds(ctx)
    diagnosis = Diagnosis(conversion.name)
    with tempfile.TemporaryDirectory(prefix="graphmint-precision-") as tmp:
        work = Path(tmp)
        fp16 = conversion.precision == Precision.FP16
        reference = activations(source, feeds, work) if fp16 or rounds else {}
        keep = fp16_range(model, reference, diagnosis) if fp16 else []
        session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
        expected = [session.run(list(ctx.output_names), f) for f in feeds]
        for round_ in range(rounds + 1):
            conversion.convert(source, target, ctx, keep, bool(diagnosis.quantized_ops))
            reduced = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
            actual = [reduced.run(list(ctx.output_names), f) for f in feeds]
            snr = {
                name: snr_db([e[i] for e in expected], [a[i] for a in actual])
                for i, name in enumerate(ctx.output_names)
            }
            diagnosis.snr_db.append({k: round(v, 2) for k, v in snr.items()})
            short = [n for n, v in snr.items() if v < targets.get(n, -math.inf) + MARGIN_DB]
            if not short or round_ == rounds:
                break
            layers = ranked(model, reference, activations(target, feeds, work))
            worst = [r for r in layers if not set(r["keep"]) <= set(keep)][: 2**round_]
            if not worst:
                break
            diagnosis.kept_float.extend(worst)
            kept = [n for r in worst for n in r["keep"]]
            if conversion.feeders:
                kept += feeders(model, kept)
            keep = list(dict.fromkeys([*keep, *kept]))
            if conversion.compute_only:
                diagnosis.quantized_ops = list(COMPUTE_OPS)
            if not diagnosis.why:
                layer = worst[0]
                diagnosis.why = (
                    f"output {short[0]!r}: SNR {snr[short[0]]:.1f} dB against the float32 file is below "
                    f"{targets[short[0]] + MARGIN_DB:g} dB; worst layer {layer['layer']} ({layer['op']}): "
                    f"its output {layer['tensor']!r} at {layer['sqnr_db']} dB SQNR, "
                    f"{layer['local_db']} dB of its own"
                    + (
                        f"; the retry quantizes only {', '.join(COMPUTE_OPS)}"
                        if conversion.compute_only
                        else ""
                    )
                )
        diagnosis.kept = list(keep)
    return diagnosis
