"""Route `torchscript-script`: torch.jit.script; a model that cannot be scripted is a skip, not a failure."""

from __future__ import annotations

from pathlib import Path

from graphmint.exporters._torch import TorchExporter
from graphmint.exporters.base import ExportContext, NotApplicable, Route, first_line


class Script(TorchExporter):
    tool = "torch.jit.script"
    format = "torchscript"

    def export(self, ctx: ExportContext, path: Path | None) -> None:
        import torch

        try:
            scripted = torch.jit.script(ctx.model)
        except Exception as exc:
            raise NotApplicable(f"torch.jit.script does not apply to this model: {first_line(exc)}") from exc
        torch.jit.save(scripted, str(path))


ROUTE = Route(
    name="torchscript-script",
    framework="torch",
    strategies=(("torch.jit.script", Script()),),
    description="TorchScript by scripting (torch.jit.script), reloaded with torch.jit.load",
)
