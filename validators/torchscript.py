"""Runner for TorchScript files (torch.jit.load)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from validators._torch import TorchRunner


class TorchScriptRunner(TorchRunner):
    name = "torchscript"

    def load(self) -> Callable[..., Any]:
        import torch

        module = torch.jit.load(str(self.artifact.path), map_location="cpu")
        module.eval()
        return module
