"""Runner for AOTInductor packages (torch._inductor.aoti_load_package)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from validators._torch import TorchRunner


class AOTInductorRunner(TorchRunner):
    name = "aot-inductor"

    def load(self) -> Callable[..., Any]:
        from torch._inductor import aoti_load_package

        return aoti_load_package(str(self.artifact.path))
