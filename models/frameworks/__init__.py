"""Framework adapters: the few things the pipeline must do differently for PyTorch and TensorFlow.

Adapters import their framework lazily, and `detect` only looks at frameworks the user's code has
already imported, so a PyTorch model never makes graphmint import TensorFlow (and vice versa).
"""

from __future__ import annotations

import importlib
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DTYPES",
    "FRAMEWORKS",
    "Framework",
    "detect",
    "flatten_outputs",
    "get_framework",
    "imported_frameworks",
    "package_versions",
    "widen",
]


#: the dtypes an input spec may name (numpy names), which every adapter maps to its framework's own
DTYPES = ("float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")


def widen(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float inputs as float64; the others as they are."""
    return {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in feeds.items()}


def package_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (those not installed are left out)."""
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def flatten_outputs(
    out: Any, is_leaf: Callable[[Any], bool], leaf: Callable[[Any], Any], prefix: str = "output"
) -> dict[str, Any]:
    """The leaves (tensors) of a nested tensor / tuple / list / dict output, named by their path.

    Every framework names outputs this way: one tensor is "output", a sequence gives "output_0",
    "output_1", ..., a dict its keys (nested: "<parent>_<key>"). `leaf` converts each tensor.
    """
    if is_leaf(out):
        return {prefix: leaf(out)}
    items: list[tuple[str, Any]]
    if isinstance(out, Mapping):
        items = [(str(k) if prefix == "output" else f"{prefix}_{k}", v) for k, v in out.items()]
    elif isinstance(out, (tuple, list)):
        items = [(f"{prefix}_{i}", v) for i, v in enumerate(out)]
    else:
        raise TypeError(f"model output of type {type(out).__name__} is not a tensor, tuple, list or dict")
    flat: dict[str, Any] = {}
    for name, value in items:
        flat.update(flatten_outputs(value, is_leaf, leaf, name))
    return flat


class Framework(ABC):
    """What the pipeline needs from a deep-learning framework."""

    name: str

    @abstractmethod
    def owns(self, obj: Any) -> bool:
        """Whether `obj` is a model of this framework (called only when one of `modules` is imported)."""

    @abstractmethod
    def seeded(self, seed: int) -> AbstractContextManager[None]:
        """Make weight initialisation inside the block deterministic."""

    @abstractmethod
    def prepare(self, model: Any) -> Any:
        """Put a freshly built model in inference mode."""

    @abstractmethod
    def run_eager(self, model: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the eager model; outputs flattened in a stable order and named."""

    def infer_inputs(self, model: Any) -> list[str]:
        """Input specs (`name:dtype[dims]`) read off the model itself; [] where it cannot tell."""
        return []

    def weights(self, model: Any) -> dict[str, np.ndarray]:
        """The model's weights and buffers by name, in a stable order ({} where it cannot tell)."""
        return {}

    def load_weights(self, model: Any, path: Path, trust: bool) -> None:
        """Load a weights file strictly into `model` (models.frameworks.weights); WeightsError, one
        line, where it does not fit, or where loading it would run code and `trust` is not given."""
        from graphmint.models.frameworks.weights import WeightsError

        raise WeightsError(f"cannot be loaded into a {self.name} model")

    def float64_copy(self, model: Any) -> Any:
        """A copy of the model that computes in float64 with the same weights (the reference eager
        float32 is measured against); raises, with the reason, where the model cannot be copied."""
        raise NotImplementedError(f"no float64 copy of {self.name} models")

    def probe(self, model: Any, input_names: Sequence[str]) -> tuple[Any, list[tuple[str, str]]]:
        """A model that returns the model's outputs, then one output per layer (submodule), and the
        layers' (path, class name) in the order of those outputs. A layer that did not run, or whose
        output is no tensor, gives an empty array. Raises, with the reason, where the model has no
        layers to probe. A probe that changed the model has a `release()` that undoes it."""
        raise NotImplementedError(f"no per-layer probe of {self.name} models")

    def run_float64(self, model: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a `float64_copy` on the float inputs widened to float64."""
        return self.run_eager(model, widen(feeds))


#: name -> (adapter "module:class", top-level modules whose import means user code may hold its models)
_ADAPTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "torch": ("graphmint.models.frameworks.torch_fw:TorchFramework", ("torch",)),
    "tensorflow": ("graphmint.models.frameworks.tensorflow_fw:TensorFlowFramework", ("tensorflow", "keras")),
}
FRAMEWORKS = tuple(_ADAPTERS)
_cache: dict[str, Framework] = {}


def get_framework(name: str) -> Framework:
    if name not in _cache:
        module, _, attr = _ADAPTERS[name][0].partition(":")
        _cache[name] = getattr(importlib.import_module(module), attr)()
    return _cache[name]


def _imported(name: str) -> bool:
    return any(m in sys.modules for m in _ADAPTERS[name][1])


def imported_frameworks() -> list[Framework]:
    """The frameworks that user code has imported so far."""
    return [get_framework(name) for name in FRAMEWORKS if _imported(name)]


def detect(obj: Any) -> Framework | None:
    """The framework `obj` belongs to, among those already imported; None if it is no model."""
    return next((fw for fw in imported_frameworks() if fw.owns(obj)), None)
