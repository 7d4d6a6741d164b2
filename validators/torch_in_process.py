"""Runner for torch routes that have no file (torch.compile): it calls the compiled object itself.

It counts the graphs Dynamo compiles while the grid runs: a compiled model that recompiles for some
sizes (0/1 specialization, guards on a size) says so in the manifest as `recompiles`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphmint.validators._torch import TorchRunner


def _graphs_compiled() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class TorchInProcessRunner(TorchRunner):
    name = "torch-in-process"

    def load(self) -> Callable[..., Any]:
        if self.artifact.in_process is None:
            raise ValueError(f"route {self.artifact.route} produced no in-process callable")
        self._graphs_at_load = _graphs_compiled()
        fn: Callable[..., Any] = self.artifact.in_process
        return fn

    def deactivate_impl(self) -> None:
        self.facts["recompiles"] = _graphs_compiled() - self._graphs_at_load
        super().deactivate_impl()
