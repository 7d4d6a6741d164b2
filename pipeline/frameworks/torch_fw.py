"""PyTorch adapter."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from pipeline.frameworks import Framework

__all__ = ["TorchFramework", "flatten_torch_outputs", "to_torch"]


def to_torch(feeds: Mapping[str, np.ndarray]) -> list[Any]:
    import torch

    return [torch.from_numpy(np.require(v, requirements=["C", "W"])) for v in feeds.values()]


def flatten_torch_outputs(out: Any, prefix: str = "output") -> dict[str, np.ndarray]:
    """Tensors of a (nested) tensor / tuple / list / dict output, named by their path."""
    import torch

    if isinstance(out, torch.Tensor):
        return {prefix: out.detach().cpu().numpy()}
    items: list[tuple[str, Any]]
    if isinstance(out, Mapping):
        items = [(str(k) if prefix == "output" else f"{prefix}_{k}", v) for k, v in out.items()]
    elif isinstance(out, (tuple, list)):
        items = [(f"{prefix}_{i}", v) for i, v in enumerate(out)]
    else:
        raise TypeError(f"model output of type {type(out).__name__} is not a tensor, tuple, list or dict")
    flat: dict[str, np.ndarray] = {}
    for name, value in items:
        flat.update(flatten_torch_outputs(value, name))
    return flat


class TorchFramework(Framework):
    name = "torch"
    packages = ("torch", "onnx", "onnxscript", "onnxruntime", "numpy")

    def owns(self, obj: Any) -> bool:
        import torch

        return isinstance(obj, torch.nn.Module)

    @contextmanager
    def seeded(self, seed: int) -> Iterator[None]:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield

    def prepare(self, model: Any) -> Any:
        return model.eval()

    def run_eager(self, model: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            return flatten_torch_outputs(model(*to_torch(feeds)))
