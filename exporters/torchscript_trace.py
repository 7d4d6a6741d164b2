"""Route `torchscript-trace`: torch.jit.trace, saved with torch.jit.save."""

from __future__ import annotations

from pathlib import Path

from graphmint.exporters._torch import TorchExporter, example_args, flat_module
from graphmint.exporters.base import ExportContext, Route


class Trace(TorchExporter):
    tool = "torch.jit.trace"
    format = "torchscript"

    def export(self, ctx: ExportContext, path: Path | None) -> None:
        import torch

        traced = torch.jit.trace(flat_module(ctx), example_args(ctx), check_trace=False)
        torch.jit.save(traced, str(path))


ROUTE = Route(
    name="torchscript-trace",
    framework="torch",
    strategies=(("torch.jit.trace", Trace()),),
    description="TorchScript by tracing (torch.jit.trace), reloaded with torch.jit.load",
)
