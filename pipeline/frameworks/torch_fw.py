"""PyTorch adapter."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from pipeline.frameworks import Framework, flatten_outputs

__all__ = ["TorchFramework", "flatten_torch_outputs", "to_torch"]


def to_torch(feeds: Mapping[str, np.ndarray]) -> list[Any]:
    import torch

    return [torch.from_numpy(np.require(v, requirements=["C", "W"])) for v in feeds.values()]


def flatten_torch_outputs(out: Any) -> dict[str, np.ndarray]:
    """The model's output tensors as numpy arrays, named as `flatten_outputs` names them."""
    import torch

    return flatten_outputs(out, lambda t: isinstance(t, torch.Tensor), lambda t: t.detach().cpu().numpy())


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
