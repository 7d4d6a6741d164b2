"""The part all PyTorch runners share: numpy in, torch call, flattened numpy out."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from graphmint.validators.base import Runner, RuntimeUnavailable


class TorchRunner(Runner):
    """A runner whose artifact loads into a torch callable, on `device` (CPU unless a subclass says)."""

    device = "cpu"

    def __init__(self, artifact: Any) -> None:
        super().__init__(artifact)
        self.fn: Callable[..., Any] | None = None

    @abstractmethod
    def load(self) -> Callable[..., Any]:
        """Load the artifact from disk into something callable on tensors."""

    def activate_impl(self) -> None:
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeUnavailable(
                f"no CUDA device: torch.cuda.is_available() is False (torch {torch.__version__})"
            )
        self.runtime = f"torch {torch.__version__} {self.device.upper()}"
        self.fn = self.load()

    def deactivate_impl(self) -> None:
        self.fn = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        import torch

        from graphmint.models.frameworks.torch_fw import flatten_torch_outputs, to_torch

        assert self.fn is not None
        with torch.inference_mode():
            args = [t.to(self.device) for t in to_torch(feeds)]
            return list(flatten_torch_outputs(self.fn(*args)).values())
