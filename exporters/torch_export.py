"""Route `torch-export`: an ExportedProgram with symbolic dims, saved as .pt2 (torch.export.save)."""

from __future__ import annotations

from graphmint.exporters._torch import TORCH_LOGGERS, export_program
from graphmint.exporters.base import ExportContext, ExportResult, Route, captured_output, first_line


def export(ctx: ExportContext) -> ExportResult:
    import torch

    path = ctx.workdir / "model.pt2"
    with captured_output(TORCH_LOGGERS) as log:
        try:
            torch.export.save(export_program(ctx), str(path))
        except Exception as exc:
            return ExportResult(error=first_line(exc), log=log.getvalue())
    artifact = ctx.artifact(
        exporter=f"torch.export.export (torch {torch.__version__})",
        runner="torch-export",
        path=path,
    )
    return ExportResult(artifact=artifact, log=log.getvalue())


ROUTE = Route(
    name="torch-export",
    framework="torch",
    strategies=(("torch.export", export),),
    runner="torch-export",
    description="torch.export ExportedProgram (.pt2), reloaded with torch.export.load",
)
