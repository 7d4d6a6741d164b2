"""Route `torch-export`: an ExportedProgram with symbolic dims, saved as .pt2 (torch.export.save)."""

from __future__ import annotations

from pathlib import Path

from graphmint.exporters._torch import TorchExporter, export_program
from graphmint.exporters.base import ExportContext, Route


class TorchExportSave(TorchExporter):
    tool = "torch.export.export"
    format = "torch-export"

    def export(self, ctx: ExportContext, path: Path | None) -> None:
        import torch

        torch.export.save(export_program(ctx), str(path))


ROUTE = Route(
    name="torch-export",
    framework="torch",
    strategies=(("torch.export", TorchExportSave()),),
    description="torch.export ExportedProgram (.pt2), reloaded with torch.export.load",
)
