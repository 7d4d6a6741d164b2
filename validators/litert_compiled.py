"""Cross-check runner for TFLite flatbuffers: LiteRT's CompiledModel (ai_edge_litert.compiled_model)
on the CPU, resized to each grid point, fed and read by signature names.

CompiledModel is LiteRT's newer runtime: it plans buffers once per shape, where the interpreter
(validators.tflite) deploys the file. It has known resize bugs (LiteRT#5774): where it cannot run a
shape, the point errors with its reason, and since this runner is a cross-check that is a warning
about it while the interpreter agrees with the eager model, never a failure of the route.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graphmint.validators._tf import outputs_in_order
from graphmint.validators.base import Runner, UnrunnableContent
from graphmint.validators.tflite import needs_flex

#: the resize bug a failure to run a resized shape most likely is
RESIZE_BUG = "LiteRT#5774 (CompiledModel's resize of dynamic inputs)"


class CompiledModelRunner(Runner):
    name = "litert-compiled"
    requires = ("ai_edge_litert",)

    def __init__(self, artifact: Any) -> None:
        super().__init__(artifact)
        self.model: Any = None
        self.signature = ""
        self.inputs: list[str] = []
        self.outputs: dict[str, tuple[int, ...]] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}

    def activate_impl(self) -> None:
        flex = needs_flex(self.artifact.path)  # type: ignore[arg-type]
        if flex:
            raise UnrunnableContent(flex)
        from importlib.metadata import version

        from ai_edge_litert import compiled_model

        options = compiled_model.Options(
            hardware_accelerators=compiled_model.HardwareAccelerator.CPU,
            cpu_options=compiled_model.CpuOptions(num_threads=self.threads or 1),
        )
        self.model = compiled_model.CompiledModel.from_file(str(self.artifact.path), options=options)
        signatures = self.model.get_signature_list()
        if len(signatures) != 1:
            raise ValueError(f"expected one signature in the TFLite model, found {list(signatures)}")
        self.signature = next(iter(signatures))
        self.inputs = list(signatures[self.signature]["inputs"])
        self.runtime = f"ai_edge_litert {version('ai-edge-litert')} CompiledModel (CPU)"

    def deactivate_impl(self) -> None:
        if self.model is not None:
            self.model.close()
        self.model = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        missing = sorted(set(feeds) - set(self.inputs))
        if missing:
            raise ValueError(f"the TFLite signature's inputs are {sorted(self.inputs)}, not {missing}")
        shapes = {name: tuple(value.shape) for name, value in feeds.items()}
        if shapes != self.shapes:
            for name, value in feeds.items():
                try:
                    self.model.resize_input_tensor_by_name(self.signature, name, list(value.shape))
                except Exception as exc:
                    raise RuntimeError(
                        f"CompiledModel cannot resize {name} to {list(value.shape)}: {exc} [{RESIZE_BUG}]"
                    ) from None
            details = self.model.get_output_tensor_details(self.signature)
            self.outputs = {name: tuple(d["shape"]) for name, d in details.items()}
            self.shapes = shapes
        model = self.model
        inputs = {n: model.create_input_buffer_by_name(self.signature, n) for n in feeds}
        outputs = {n: model.create_output_buffer_by_name(self.signature, n) for n in self.outputs}
        details = model.get_output_tensor_details(self.signature)
        try:
            for name, value in feeds.items():
                inputs[name].write(np.ascontiguousarray(value))
            model.run_by_name(self.signature, inputs, outputs)
            named = {}
            for name, buffer in outputs.items():
                shape = tuple(details[name]["shape"])
                dtype = np.dtype(details[name]["dtype"])
                named[name] = buffer.read(int(np.prod(shape)), dtype).reshape(shape)
        finally:
            for buffer in (*inputs.values(), *outputs.values()):
                buffer.destroy()
        return outputs_in_order(named, self.artifact.output_names)
