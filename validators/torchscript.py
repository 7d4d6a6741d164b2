"""Runner for TorchScript files (torch.jit.load)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from validators._torch import TorchRunner


class TorchScriptRunner(TorchRunner):
    name = "torchscript"

    def load(self) -> Callable[..., Any]:
        import torch

        with warnings.catch_warnings():
            # TorchScript is deprecated upstream; the route still ships and is still checked
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
            module = torch.jit.load(str(self.artifact.path), map_location=self.device)
        module.eval()
        return module


class TorchScriptCudaRunner(TorchScriptRunner):
    """The same TorchScript file on a CUDA device; skipped, with the reason, where there is none."""

    name = "torchscript-cuda"
    device = "cuda"
