"""Runner for ExportedProgram files (torch.export.load)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from validators._torch import TorchRunner


class ExportedProgramRunner(TorchRunner):
    name = "torch-export"

    def load(self) -> Callable[..., Any]:
        import torch

        module: Callable[..., Any] = torch.export.load(str(self.artifact.path)).module().to(self.device)
        return module


class ExportedProgramCudaRunner(ExportedProgramRunner):
    """The same ExportedProgram on a CUDA device; skipped, with the reason, where there is none."""

    name = "torch-export-cuda"
    device = "cuda"
