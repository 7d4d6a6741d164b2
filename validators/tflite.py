"""Runner for TFLite flatbuffers: the interpreter resized to each grid point, fed by signature names.

A file is judged by what it holds before any interpreter sees it: one that needs Select TF ops (Flex
custom ops, run by the Flex delegate) cannot run here, since no TFLite interpreter that pip offers
links that delegate (LiteRT#6458). Such a file is reported unavailable, naming its Flex ops, wherever
an interpreter would have failed on it (at load, or only at its first inference).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.validators._tf import outputs_in_order
from graphmint.validators.base import Runner, UnrunnableContent
from graphmint.validators.content import flex_ops


def _interpreter_class() -> tuple[Any, str]:
    """LiteRT's interpreter (ai_edge_litert), else tf.lite's where only TensorFlow is installed
    (TensorFlow announces tf.lite.Interpreter's deprecation in favour of LiteRT's)."""
    try:
        from ai_edge_litert import interpreter as litert
    except ImportError:
        import tensorflow as tf

        return tf.lite.Interpreter, f"tf.lite {tf.__version__}"
    from importlib.metadata import version

    return litert.Interpreter, f"ai_edge_litert {version('ai-edge-litert')}"


def needs_flex(path: str | Path) -> str | None:
    """Why the file cannot run here (the Select TF ops it needs), or None where it needs none."""
    found = flex_ops(path)
    if not found:
        return None
    ops = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in sorted(found.items()))
    return (
        f"the model needs {sum(found.values())} Select TF op(s) (the Flex delegate): {ops}; no TFLite "
        "interpreter here links that delegate"
    )


class TFLiteRunner(Runner):
    name = "tflite"

    def __init__(self, artifact: Any) -> None:
        super().__init__(artifact)
        self.interpreter: Any = None
        self.inputs: dict[str, int] = {}
        self.outputs: dict[str, int] = {}
        #: the input shapes the interpreter's tensors are allocated for
        self.shapes: dict[str, tuple[int, ...]] = {}

    def activate_impl(self) -> None:
        flex = needs_flex(self.artifact.path)  # type: ignore[arg-type]
        if flex:
            raise UnrunnableContent(flex)
        cls, label = _interpreter_class()
        with warnings.catch_warnings():
            # tf.lite.Interpreter (the fallback) announces its move to LiteRT on every construction
            warnings.simplefilter("ignore", UserWarning)
            self.interpreter = cls(model_path=str(self.artifact.path), num_threads=self.threads)
        self.interpreter.allocate_tensors()
        signatures = self.interpreter.get_signature_list()
        if len(signatures) != 1:
            raise ValueError(f"expected one signature in the TFLite model, found {list(signatures)}")
        # tensor indices by signature name; the runner object is dropped again because, while it
        # lives, the interpreter refuses to resize
        runner = self.interpreter.get_signature_runner(next(iter(signatures)))
        self.inputs = {name: d["index"] for name, d in runner.get_input_details().items()}
        self.outputs = {name: d["index"] for name, d in runner.get_output_details().items()}
        del runner
        main_graph = {d["index"] for d in self.interpreter.get_input_details()}
        if not set(self.inputs.values()) <= main_graph:
            raise ValueError("the TFLite model's signature does not run its main subgraph")
        self.runtime = f"{label} interpreter"

    def deactivate_impl(self) -> None:
        self.interpreter = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        missing = sorted(set(feeds) - set(self.inputs))
        if missing:
            raise ValueError(f"the TFLite signature's inputs are {sorted(self.inputs)}, not {missing}")
        shapes = {name: tuple(value.shape) for name, value in feeds.items()}
        if shapes != self.shapes:  # a new shape: resize and plan memory again, else reuse the plan
            for name, value in feeds.items():
                # strict: only dims the model holds as dynamic (-1) may change; a frozen one raises here
                self.interpreter.resize_tensor_input(self.inputs[name], value.shape, strict=True)
            self.interpreter.allocate_tensors()
            self.shapes = shapes
        for name, value in feeds.items():
            self.interpreter.set_tensor(self.inputs[name], value)
        self.interpreter.invoke()
        named = {name: self.interpreter.get_tensor(index) for name, index in self.outputs.items()}
        return outputs_in_order(named, self.artifact.output_names)
