"""Where a cross-check runtime parts from the deployment runtime on an ONNX file.

Both run the file with every node's output exposed, on the first input where the cross-check runtime
disagreed: ONNX Runtime with graph optimizations off (each node's output is then its own) and the
cross-check runtime (the reference evaluator with `intermediate=True`). The first node, in graph
order, whose output differs in shape or by more than `SPLIT` of its scale is named, with the last
node that still agreed. A runtime that raises names the node it raised in.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.exporters.base import Artifact, first_line
from graphmint.validators.base import Runner

__all__ = [
    "SPLIT",
    "OnnxRuntimeTrace",
    "ReferenceTrace",
    "failing_node",
    "first_divergence",
    "traced_tensors",
]

#: a node output differs where max |a - b| > SPLIT * max |b| + SPLIT_FLOOR (float noise stays below)
SPLIT, SPLIT_FLOOR = 1e-3, 1e-5

#: the runners that can expose a graph's intermediate values, by the runner they stand in for
_TRACES = {
    "onnx-reference": "graphmint.validators.localize:ReferenceTrace",
    "onnxruntime-noopt": "graphmint.validators.localize:OnnxRuntimeTrace",
}
_DEPLOYED = "graphmint.validators.localize:OnnxRuntimeTrace"


def describe(node: Any) -> str:
    """`node 'name' (OpType)`, with the torch module it came from where the exporter recorded it (the
    dynamo exporter's `pkg.torch.onnx.name_scopes` and `class_hierarchy`): `module head.pool, AvgPool2d`."""
    meta = {entry.key: entry.value for entry in node.metadata_props}
    module = ""
    try:
        scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
        classes = ast.literal_eval(meta.get("pkg.torch.onnx.class_hierarchy", "[]"))
    except (SyntaxError, ValueError):
        scopes, classes = [], []
    if len(scopes) >= 2 and scopes[-2] and len(classes) == len(scopes):
        module = f"; module {scopes[-2]}, {str(classes[-2]).rsplit('.', 1)[-1]}"
    name = f"node {node.name!r}" if node.name else "a node"
    return f"{name} ({node.op_type}{module})"


def _tensor_types(model: Any) -> dict[str, int]:
    """Element type of every value of the main graph whose type shape inference knows."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    return {
        v.name: v.type.tensor_type.elem_type
        for v in [*inferred.graph.value_info, *inferred.graph.output]
        if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type
    }


def traced_tensors(model: Any, types: dict[str, int] | None = None) -> list[tuple[str, str]]:
    """(tensor, the node that makes it, described) for every output of the main graph's nodes whose type
    shape inference knows, in graph order."""
    typed = _tensor_types(model) if types is None else types
    return [
        (tensor, describe(node)) for node in model.graph.node for tensor in node.output if tensor in typed
    ]


def _exposed(model: Any) -> tuple[Any, list[str]]:
    """The model with every traced tensor added to its outputs, and their names."""
    import onnx

    types = _tensor_types(model)
    tensors = [t for t, _ in traced_tensors(model, types)]
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {o.name for o in exposed.graph.output}
    exposed.graph.output.extend(
        onnx.helper.make_tensor_value_info(t, types[t], None) for t in tensors if t not in present
    )
    return exposed, tensors


def failing_node(exc: BaseException) -> str | None:
    """The node of the main graph that onnx.reference was running when it raised `exc`, if any."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        node: Any = frame.f_locals.get("node") if frame.f_code.co_name == "run" else None
        if found is None and "reference_evaluator" in frame.f_code.co_filename and hasattr(node, "onnx_node"):
            found = node.onnx_node
        tb = tb.tb_next
    return None if found is None else describe(found)


class OnnxRuntimeTrace(Runner):
    """ONNX Runtime, optimizations off, returning every traced tensor."""

    name = "onnxruntime-trace"

    def activate_impl(self) -> None:
        import onnx
        import onnxruntime as ort

        assert self.artifact.path is not None
        model, self.tensors = _exposed(onnx.load(str(self.artifact.path)))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        return list(self.session.run(self.tensors, dict(feeds)))


class ReferenceTrace(Runner):
    """onnx.reference.ReferenceEvaluator returning every traced tensor (NaN where it made none)."""

    name = "onnx-reference-trace"

    def activate_impl(self) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator

        assert self.artifact.path is not None
        self.tensors = [t for t, _ in traced_tensors(onnx.load(str(self.artifact.path)))]
        self.evaluator = ReferenceEvaluator(str(self.artifact.path))

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        try:
            results = self.evaluator.run(None, dict(feeds), intermediate=True)
        except Exception as exc:
            where = failing_node(exc)
            raise RuntimeError(
                f"raised at {where}: {first_line(exc)}" if where else first_line(exc)
            ) from None
        assert isinstance(results, dict)  # with intermediate=True, every tensor by name
        return [np.asarray(results.get(t, np.float64("nan"))) for t in self.tensors]


def _differs(actual: np.ndarray, expected: np.ndarray) -> str:
    if actual.shape != expected.shape:
        return f"shape {list(actual.shape)} where ONNX Runtime gives {list(expected.shape)}"
    if actual.dtype.kind not in "fciub" or expected.size == 0:
        return ""
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    if not np.array_equal(np.isnan(a), np.isnan(e)):
        return "NaN where ONNX Runtime has none (or the other way round)"
    finite = np.isfinite(a) & np.isfinite(e)
    diff = float(np.max(np.abs(a - e)[finite], initial=0.0))
    scale = float(np.max(np.abs(e[finite]), initial=0.0))
    if diff > SPLIT * scale + SPLIT_FLOOR:
        return f"max abs difference {diff:.3g} on values up to {scale:.3g}"
    return ""


def first_divergence(
    artifact: Artifact, runner: str, feeds: Mapping[str, np.ndarray], timeout_s: float | None
) -> str:
    """One line naming the first node where `runner` parts from ONNX Runtime on `feeds` ("" where it
    cannot be traced); each runs in a child process."""
    import onnx

    from graphmint.validators.isolated import IsolatedRunner

    if runner not in _TRACES or artifact.path is None or Path(artifact.path).suffix != ".onnx":
        return ""
    nodes = traced_tensors(onnx.load(str(artifact.path), load_external_data=False))
    try:
        with IsolatedRunner(
            replace(artifact, runner="onnxruntime"), inner=_DEPLOYED, timeout_s=timeout_s
        ) as deployed:
            expected, _ = deployed.infer(feeds)
    except Exception as exc:
        return f"its intermediate values could not be traced ({first_line(exc)})"
    try:
        with IsolatedRunner(artifact, inner=_TRACES[runner], timeout_s=timeout_s) as cross:
            actual, _ = cross.infer(feeds)
    except Exception as exc:
        return first_line(exc)
    last = ""
    for (tensor, node), got, want in zip(nodes, actual, expected, strict=True):
        difference = _differs(got, want)
        if difference:
            after = f"; the last that agreed: {last}" if last else "; no node before it agreed or ran"
            return f"first diverges at {node}, output {tensor!r}: {difference}{after}"
        last = node
    return f"no node's output differs by more than {SPLIT:g} of its scale: the difference builds up"
