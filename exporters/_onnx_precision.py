"""Reduced-precision ONNX: fp16 conversion, int8 quantization, and the layer diagnosis of a retry.

Conversions read the float32 file and write the reduced one, inputs and outputs kept float32:
- fp16: onnxruntime.transformers.float16 (ONNX Runtime's copy of onnxconverter-common's converter);
- int8 dynamic: onnxruntime.quantization.quantize_dynamic (weights int8, activations at run time);
- int8 static: onnxruntime.quantization.quantize_static, QDQ, calibrated on the context's inputs.

`keep_float` is the retry: it converts, measures every output's SNR against the float32 file on the
calibration inputs, and while one is below its target it ranks the layers by the error each adds
(onnxruntime.quantization.qdq_loss_debug collects every node's float output in both files; a
layer's loss is how far its output's SQNR falls below its inputs'), keeps the worst in float
(`nodes_to_exclude`, the fp16 `node_block_list`) and converts again. fp16 first blocks every layer
whose float32 activations leave fp16's range (|x| > 65504).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.exporters.base import ExportContext, Precision

__all__ = ["CONVERSIONS", "FP16_MAX", "Conversion", "Diagnosis", "keep_float", "name_nodes"]

#: the suffix onnxruntime.quantization gives a tensor's dequantized copy, which the next layers read
DEQUANTIZED = "_DequantizeLinear_Output"
#: the largest finite float16
FP16_MAX = 65504.0
#: inputs run through both files to rank layers and to calibrate (the first of the context's)
CALIBRATION_LIMIT = 8
#: rounds of the retry, and layers kept in float per round
ROUNDS, PER_ROUND = 4, 1
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


class _Reader:
    """An onnxruntime.quantization CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> None:
        self.items = iter(list(feeds))

    def __iter__(self) -> Any:  # qdq_loss_debug.collect_activations iterates
        return self.items

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.items, None)

    def rewind(self) -> None:  # part of the reader protocol; calibration reads once
        pass


#: ops kept float32 in every fp16 file, besides the converter's own list: ONNX Runtime 1.32 crashes
#: (SIGSEGV) optimizing a graph with an fp16 Gelu (opset 20) for the CPU (the zoo's TransformerBlock)
FP16_OP_BLOCK_LIST = ("Gelu",)


def _fp16(source: Path, target: Path, ctx: ExportContext, keep: Sequence[str]) -> None:
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


def _int8_dynamic(source: Path, target: Path, ctx: ExportContext, keep: Sequence[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # reduce_range: 7-bit weights, so that x86 CPUs without VNNI (u8s8 through pmaddubsw) do not saturate
    # it rewrites a Gemm as `<name>_MatMul` + `<name>_Add` before it quantizes the MatMul
    excluded = [*keep, *(f"{name}_MatMul" for name in keep)]
    quantize_dynamic(
        source, target, weight_type=QuantType.QInt8, reduce_range=True, nodes_to_exclude=excluded
    )


def _int8_static(source: Path, target: Path, ctx: ExportContext, keep: Sequence[str]) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        source,
        target,
        _Reader(_feeds(ctx)),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        reduce_range=True,
        nodes_to_exclude=list(keep),
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
    convert: Callable[[Path, Path, ExportContext, Sequence[str]], None]
    #: QDQ quantizes tensors, not layers: a tensor stays float only where its producer is kept too, so
    #: keeping a layer in float keeps the layers that feed it as well
    feeders: bool = False


CONVERSIONS: Mapping[str, Conversion] = {
    "fp16": Conversion("fp16", "onnxruntime.transformers.float16", Precision.FP16, _fp16),
    "int8-dynamic": Conversion(
        "int8-dynamic", "onnxruntime.quantization.quantize_dynamic", Precision.INT8, _int8_dynamic
    ),
    "int8-static": Conversion(
        "int8-static", "onnxruntime.quantization.quantize_static(QDQ)", Precision.INT8, _int8_static, True
    ),
}


def _sqnr(x: Sequence[np.ndarray], y: Sequence[np.ndarray]) -> float:
    from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio

    left = [np.asarray(a, dtype=np.float64).ravel() for a in x]
    right = [np.asarray(b, dtype=np.float64).ravel() for b in y]
    if any(a.shape != b.shape for a, b in zip(left, right, strict=True)):
        return -math.inf
    if not all(np.isfinite(b).all() for b in right):
        return -math.inf
    return float(compute_signal_to_quantization_noice_ratio(left, right))


def _power(sqnr_db: float) -> float:
    """Noise power relative to the signal's, of an SQNR in dB (a non-finite output's: the most)."""
    return 10 ** (-min(max(sqnr_db, -300.0), 300.0) / 10)


def _activations(path: Path, feeds: Sequence[Mapping[str, np.ndarray]], work: Path) -> dict[str, list[Any]]:
    """Every node's float output (float32 or float16) on each feed, by tensor name."""
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        modify_model_output_intermediate_tensors,
    )

    augmented = work / f"{path.stem}.augmented.onnx"
    modify_model_output_intermediate_tensors(path, augmented)
    return dict(collect_activations(str(augmented), _Reader(feeds)))


@dataclass
class Diagnosis:
    """What the retry found and did, for the manifest (`reduced_precision`)."""

    conversion: str
    #: per output, SNR (dB) against the float32 file after each round
    snr_db: list[dict[str, float]] = field(default_factory=list)
    #: the layers kept in float, worst first, with the SQNR of their output and the loss they added
    kept_float: list[dict[str, Any]] = field(default_factory=list)
    #: fp16: the largest float32 activation and its layer; the layers beyond FP16_MAX
    max_activation: dict[str, Any] | None = None
    overflow: list[str] = field(default_factory=list)
    why: str = ""
    #: every layer the file keeps in float, as nodes_to_exclude / node_block_list named them
    kept: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"conversion": self.conversion, "snr_db": self.snr_db}
        for key in ("kept_float", "kept", "max_activation", "overflow", "why"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def _producers(model: Any) -> dict[str, Any]:
    return {out: node for node in model.graph.node for out in node.output}


def _ranked(
    model: Any, reference: Mapping[str, list[Any]], reduced: Mapping[str, list[Any]]
) -> list[dict[str, Any]]:
    """The layers by the error each adds, worst first.

    Each tensor the reduced file still has is compared as the next layers read it (after its
    QuantizeLinear/DequantizeLinear pair, where there is one). A layer's own noise is its output's
    noise power less what its inputs brought (SQNR as power ratios; through layers the conversion
    fused away, back to the nearest tensors observed); its `local_db` is that as an SQNR. Keeping a
    layer in float keeps the layers between it and those tensors too (`keep`).
    """
    producer = _producers(model)
    initializers = {t.name for t in model.graph.initializer}
    sqnr: dict[str, float] = {}
    for name, arrays in reference.items():
        seen = reduced.get(f"{name}{DEQUANTIZED}", reduced.get(name))
        if seen is not None:
            sqnr[name] = _sqnr(arrays, seen)

    def upstream(tensor: str, path: list[str]) -> float:
        """The SQNR arriving at `tensor`, walking back through tensors not observed; `path` collects
        the layers passed."""
        if tensor in sqnr:
            return sqnr[tensor]
        node = producer.get(tensor)
        if node is None or tensor in initializers or node.name in path:
            return math.inf
        path.append(node.name)
        return min((upstream(i, path) for i in node.input if i), default=math.inf)

    ranked = []
    for node in model.graph.node:
        for out in node.output:
            if out not in sqnr:
                continue
            path = [node.name]
            arriving = min(
                (upstream(i, path) for i in node.input if i and i not in initializers), default=math.inf
            )
            own = _power(sqnr[out]) - _power(arriving)
            local = -10 * math.log10(own) if own > 0 else math.inf
            ranked.append(
                {
                    "layer": node.name,
                    "op": node.op_type,
                    "tensor": out,
                    "sqnr_db": round(sqnr[out], 2) if math.isfinite(sqnr[out]) else "non-finite",
                    "local_db": local,
                    "keep": path,
                }
            )
    ranked.sort(key=lambda r: r["local_db"])
    for r in ranked:
        r["local_db"] = round(r["local_db"], 2) if math.isfinite(r["local_db"]) else None
    return [r for r in ranked if r["local_db"] is not None]


#: ops a QDQ model's quantized tensors pass through unchanged in range (their input and output share
#: one scale): keeping a tensor float means keeping the layer that made it, behind these
_PASS_THROUGH = frozenset(
    {"Relu", "Clip", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "MaxPool", "Identity"}
)


def _feeders(model: Any, layers: Sequence[str]) -> list[str]:
    """The layers whose outputs `layers` read (their activations, not their weights), followed back
    through pass-through ops to the layer that computed them."""
    producer = _producers(model)
    inside = set(layers)
    found: list[str] = []
    todo = [i for node in model.graph.node if node.name in inside for i in node.input]
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.name in inside or node.name in found:
            continue
        found.append(node.name)
        if node.op_type in _PASS_THROUGH:
            todo.extend(node.input)
    return found


def _fp16_range(model: Any, reference: Mapping[str, list[Any]], diagnosis: Diagnosis) -> list[str]:
    """The layers whose float32 output leaves fp16's range; the largest activation, named."""
    producers = _producers(model)
    peaks = {
        name: float(max(np.max(np.abs(np.asarray(a, dtype=np.float64)), initial=0.0) for a in arrays))
        for name, arrays in reference.items()
        if name in producers
    }
    if peaks:
        top = max(peaks, key=lambda n: peaks[n])
        diagnosis.max_activation = {"layer": producers[top].name, "tensor": top, "max_abs": peaks[top]}
    beyond = [n for n, v in peaks.items() if not v <= FP16_MAX]
    diagnosis.overflow = sorted({producers[n].name for n in beyond})
    if beyond:
        diagnosis.why = (
            f"{len(beyond)} tensors leave fp16's range (|x| > {FP16_MAX:g}) in float32, up to "
            f"{diagnosis.max_activation['max_abs']:.4g} at {diagnosis.max_activation['layer']}: their "
            "layers and readers stay float32"
        )
    # a tensor beyond the range stays float32 where it is made and where it is read
    readers = [node.name for node in model.graph.node if set(node.input) & set(beyond)]
    return list(dict.fromkeys([*diagnosis.overflow, *readers]))


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
        reference = _activations(source, feeds, work) if fp16 or rounds else {}
        keep = _fp16_range(model, reference, diagnosis) if fp16 else []
        session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
        expected = [session.run(list(ctx.output_names), f) for f in feeds]
        for round_ in range(rounds + 1):
            conversion.convert(source, target, ctx, keep)
            reduced = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
            actual = [reduced.run(list(ctx.output_names), f) for f in feeds]
            snr = {
                name: _sqnr([e[i] for e in expected], [a[i] for a in actual])
                for i, name in enumerate(ctx.output_names)
            }
            diagnosis.snr_db.append({k: round(v, 2) for k, v in snr.items()})
            short = [n for n, v in snr.items() if v < targets.get(n, -math.inf) + MARGIN_DB]
            if not short or round_ == rounds:
                break
            ranked = _ranked(model, reference, _activations(target, feeds, work))
            worst = [r for r in ranked if not set(r["keep"]) <= set(keep)][:PER_ROUND]
            if not worst:
                break
            diagnosis.kept_float.extend(worst)
            layers = [n for r in worst for n in r["keep"]]
            if conversion.feeders:
                layers += _feeders(model, layers)
            keep = list(dict.fromkeys([*keep, *layers]))
            if not diagnosis.why:
                layer = worst[0]
                diagnosis.why = (
                    f"output {short[0]!r}: SNR {snr[short[0]]:.1f} dB against the float32 file is below "
                    f"{targets[short[0]] + MARGIN_DB:g} dB; worst layer {layer['layer']} ({layer['op']}): "
                    f"its output {layer['tensor']!r} at {layer['sqnr_db']} dB SQNR, "
                    f"{layer['local_db']} dB of its own"
                )
        diagnosis.kept = list(keep)
    return diagnosis
