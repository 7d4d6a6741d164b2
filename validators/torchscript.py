"""Runner for TorchScript files (torch.jit.load).

Nothing here makes an untrusted TorchScript file safe to load, so none is attempted: whether to load
one at all is `pipeline.trust`'s decision. `torch.jit.load` does not unpickle arbitrary Python globals
(`torch._C.import_ir_module`: its C++ unpickler resolves torch's own types and the archive's
TorchScript classes only), but loading restores objects through those classes' `__setstate__`, which
is TorchScript code from the archive, and TorchScript can call operators that write and read files
(`aten::save`, `aten::from_file`); torch's documentation warns that a malicious file can execute
arbitrary code during torch.jit.load. There is no weights_only mode for it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from graphmint.validators._torch import TorchRunner


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
