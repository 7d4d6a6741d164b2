"""Runner for AOTInductor packages (torch._inductor.aoti_load_package).

An AOTInductor package is compiled code: `aoti_load_package` (torch._inductor.package.load_package)
reads the archive with `load_pt2`, then `AOTIModelPackageLoader` extracts its shared library and
loads it into this process, which runs the library's code. No check of the file can make that safe;
whether to load one at all is `pipeline.trust`'s decision, taken before this runner is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphmint.validators._torch import TorchRunner


class AOTInductorRunner(TorchRunner):
    name = "aot-inductor"

    def load(self) -> Callable[..., Any]:
        from torch._inductor import aoti_load_package

        return aoti_load_package(str(self.artifact.path))
