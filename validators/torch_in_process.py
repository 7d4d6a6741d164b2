"""Runner for torch routes that have no file (torch.compile): it calls the compiled object itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from validators._torch import TorchRunner


class TorchInProcessRunner(TorchRunner):
    name = "torch-in-process"

    def load(self) -> Callable[..., Any]:
        if self.artifact.in_process is None:
            raise ValueError(f"route {self.artifact.route} produced no in-process callable")
        fn: Callable[..., Any] = self.artifact.in_process
        return fn
