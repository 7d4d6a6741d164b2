"""The layer diagnosis of a reduced-precision ONNX file against its float32 source.

`onnxruntime.quantization.qdq_loss_debug` runs both files with every node's float output exposed;
`ranked` orders the layers by the noise each adds (SNRs by exporters.snr, as the accuracy budget
measures them), `feeders` finds the layers a kept one reads from, and `fp16_range` the tensors
whose float32 values leave float16's range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.exporters.snr import snr_db

__all__ = [
    "DEQUANTIZED",
    "FP16_MAX",
    "Diagnosis",
    "Reader",
    "activations",
    "feeders",
    "fp16_range",
    "ranked",
]

#: the suffix onnxruntime.quantization gives a tensor's dequantized copy, which the next layers read
DEQUANTIZED = "_DequantizeLinear_Output"
#: the largest finite float16
FP16_MAX = 65504.0


class Reader:
    """An onnxruntime.quantization CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> None:
        self.items = iter(list(feeds))

    def __iter__(self) -> Any:  # qdq_loss_debug.collect_activations iterates
        return self.items

    def get_next(self) -> Mapping[str, np.ndarray] | None:
        return next(self.items, None)

    def rewind(self) -> None:  # part of the reader protocol; calibration reads once
        pass


def _power(sqnr_db: float) -> float:
    """Noise power relative to the signal's, of an SQNR in dB (a non-finite output's: the most)."""
    return 10 ** (-min(max(sqnr_db, -300.0), 300.0) / 10)


def activations(path: Path, feeds: Sequence[Mapping[str, np.ndarray]], work: Path) -> dict[str, list[Any]]:
    """Every node's float output (float32 or float16) on each feed, by tensor name."""
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        modify_model_output_intermediate_tensors,
    )

    augmented = work / f"{path.stem}.augmented.onnx"
    modify_model_output_intermediate_tensors(path, augmented)
    return dict(collect_activations(str(augmented), Reader(feeds)))


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
    #: the op types the retry quantizes, where it quantizes only those
    quantized_ops: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"conversion": self.conversion, "snr_db": self.snr_db}
        for key in ("kept_float", "kept", "quantized_ops", "max_activation", "overflow", "why"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def _producers(model: Any) -> dict[str, Any]:
    return {out: node for node in model.graph.node for out in node.output}


def constants(model: Any) -> set[str]:
    """The tensors that do not depend on the inputs: initializers, and what nodes compute from them
    alone (Constant nodes, an Identity or Cast of a weight, a weight's DequantizeLinear)."""
    found = {t.name for t in model.graph.initializer}
    for node in model.graph.node:  # in topological order
        if all(not i or i in found for i in node.input):
            found.update(node.output)
    return found


def ranked(
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
    initializers = constants(model)  # weights, and what is computed from weights alone
    levels: dict[str, float] = {}
    for name, arrays in reference.items():
        if name in initializers or not any(np.any(np.asarray(a)) for a in arrays):
            continue  # a weight, or a tensor with no signal to lose (all zeros)
        seen = reduced.get(f"{name}{DEQUANTIZED}", reduced.get(name))
        if seen is not None:
            levels[name] = snr_db(arrays, seen)

    def upstream(tensor: str, path: list[str]) -> float:
        """The SQNR arriving at `tensor`, walking back through tensors not observed; `path` collects
        the layers passed."""
        if tensor in levels:
            return levels[tensor]
        node = producer.get(tensor)
        if node is None or tensor in initializers or node.name in path:
            return math.inf
        path.append(node.name)
        return min((upstream(i, path) for i in node.input if i), default=math.inf)

    ranked = []
    for node in model.graph.node:
        for out in node.output:
            if out not in levels:
                continue
            path = [node.name]
            arriving = min(
                (upstream(i, path) for i in node.input if i and i not in initializers), default=math.inf
            )
            own = _power(levels[out]) - _power(arriving)
            local = -10 * math.log10(own) if own > 0 else math.inf
            ranked.append(
                {
                    "layer": node.name,
                    "op": node.op_type,
                    "tensor": out,
                    "sqnr_db": round(levels[out], 2) if math.isfinite(levels[out]) else "non-finite",
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


def feeders(model: Any, layers: Sequence[str]) -> list[str]:
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


def fp16_range(model: Any, reference: Mapping[str, list[Any]], diagnosis: Diagnosis) -> list[str]:
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
        peak = diagnosis.max_activation
        assert peak is not None  # `beyond` are some of `peaks`, so the largest was named above
        diagnosis.why = (
            f"{len(beyond)} tensors leave fp16's range (|x| > {FP16_MAX:g}) in float32, up to "
            f"{peak['max_abs']:.4g} at {peak['layer']}: their "
            "layers and readers stay float32"
        )
    # a tensor beyond the range stays float32 where it is made and where it is read
    readers = [node.name for node in model.graph.node if set(node.input) & set(beyond)]
    return list(dict.fromkeys([*diagnosis.overflow, *readers]))
