"""Runner for ONNX files: onnx.checker, then ONNX Runtime on the CPU execution provider."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graphmint.validators.base import Runner, RuntimeUnavailable


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime with every graph optimization on (its default), CPU execution provider."""

    name = "onnxruntime"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    optimization = "ORT_ENABLE_ALL"

    def __init__(self, artifact: Any) -> None:
        super().__init__(artifact)
        self.session: Any = None
        self.input_names: list[str] = []

    def activate_impl(self) -> None:
        import onnx
        import onnxruntime as ort

        missing = [p for p in self.providers if p not in ort.get_available_providers()]
        if missing:
            offered = ", ".join(ort.get_available_providers())
            raise RuntimeUnavailable(
                f"{', '.join(missing)} not available here (ONNX Runtime offers {offered})"
            )
        path = str(self.artifact.path)
        onnx.checker.check_model(path, full_check=True)
        frozen = frozen_dims(onnx.load(path, load_external_data=False), self.artifact)
        self.notes.extend(frozen)
        if frozen:
            self.facts["frozen_dims"] = frozen
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, self.optimization)
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=list(self.providers))
        self.input_names = sorted(i.name for i in self.session.get_inputs())
        self.runtime = f"onnxruntime {ort.__version__} {self.providers[0]} {self.optimization}"

    def deactivate_impl(self) -> None:
        self.session = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        if self.input_names != sorted(feeds):
            names = self.input_names
            raise ValueError(f"the ONNX graph's inputs are {names}, the spec declares {list(feeds)}")
        outputs: list[Any] = self.session.run(None, dict(feeds))
        return outputs


class OnnxRuntimeNoOptRunner(OnnxRuntimeRunner):
    """ONNX Runtime with graph optimizations disabled: tells fusion effects from exporter bugs."""

    name = "onnxruntime-noopt"
    optimization = "ORT_DISABLE_ALL"


class OnnxRuntimeCudaRunner(OnnxRuntimeRunner):
    """ONNX Runtime on the CUDA execution provider; skipped, with the reason, where there is none."""

    name = "onnxruntime-cuda"
    providers = ("CUDAExecutionProvider",)


def frozen_dims(model: Any, artifact: Any) -> list[str]:
    """Notes for every declared dynamic dim that the ONNX graph's inputs hold as a fixed number."""
    declared: Mapping[str, Mapping[int, str]] = artifact.dynamic_axes
    notes = []
    for graph_input in model.graph.input:
        axes = declared.get(graph_input.name, {})
        shape = graph_input.type.tensor_type.shape.dim
        for axis, dim_name in axes.items():
            if axis < len(shape) and shape[axis].HasField("dim_value"):
                notes.append(
                    f"the ONNX graph froze dim {dim_name!r} of input {graph_input.name!r} "
                    f"(axis {axis}) to {shape[axis].dim_value}"
                )
    return notes
