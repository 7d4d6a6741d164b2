"""Runner for ONNX files on onnx.reference.ReferenceEvaluator: a second, pure-Python implementation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graphmint.exporters.base import first_line
from graphmint.validators.base import Runner, RuntimeUnavailable
from graphmint.validators.localize import failing_node


class OnnxReferenceRunner(Runner):
    name = "onnx-reference"

    def __init__(self, artifact: Any) -> None:
        super().__init__(artifact)
        self.evaluator: Any = None

    def activate_impl(self) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator

        loop = _loop_with_scan_outputs(onnx.load(str(self.artifact.path), load_external_data=False).graph)
        if loop is not None:
            raise RuntimeUnavailable(
                f"ReferenceEvaluator joins Loop scan outputs with np.vstack instead of stacking them, "
                f"so Loop {loop!r} would come out in the wrong shape"
            )
        try:
            self.evaluator = ReferenceEvaluator(str(self.artifact.path))
        except NotImplementedError as exc:
            raise RuntimeUnavailable(f"ReferenceEvaluator lacks an operator: {exc}") from None
        except Exception as exc:
            if "no implementation" in str(exc).lower() or "not implemented" in str(exc).lower():
                raise RuntimeUnavailable(f"ReferenceEvaluator lacks an operator: {exc}") from None
            raise
        self.runtime = f"onnx.reference.ReferenceEvaluator (onnx {onnx.__version__})"

    def deactivate_impl(self) -> None:
        self.evaluator = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        try:
            outputs: list[Any] = self.evaluator.run(None, dict(feeds))
        except Exception as exc:
            where = failing_node(exc)
            if where is None:
                raise
            raise RuntimeError(f"ReferenceEvaluator raised at {where}: {first_line(exc)}") from None
        return outputs


def _loop_with_scan_outputs(graph: Any) -> str | None:
    """The name of a Loop node (at any depth) that has scan outputs, if there is one."""
    for node in graph.node:
        # Loop's inputs are M, cond and the N carried values; outputs are the N values and the scans
        if node.op_type == "Loop" and len(node.output) > len(node.input) - 2:
            return str(node.name)
        for attribute in node.attribute:
            subgraphs = [attribute.g] if attribute.HasField("g") else list(attribute.graphs)
            for subgraph in subgraphs:
                found = _loop_with_scan_outputs(subgraph)
                if found is not None:
                    return found
    return None
