"""Runner for ExportedProgram files (torch.export.load)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from validators._torch import TorchRunner


class ExportedProgramRunner(TorchRunner):
    name = "torch-export"

    def load(self) -> Callable[..., Any]:
        import torch

        return torch.export.load(str(self.artifact.path)).module()
