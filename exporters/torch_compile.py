"""Route `torch-compile`: torch.compile with Inductor. It writes no file, so it is checked in-process."""

from __future__ import annotations

from exporters.base import ExportContext, ExportResult, Route, first_line


def compile_model(ctx: ExportContext) -> ExportResult:
    import torch

    try:
        compiled = torch.compile(ctx.model, backend="inductor", dynamic=True)
    except Exception as exc:
        return ExportResult(error=first_line(exc))
    artifact = ctx.artifact(
        exporter=f"torch.compile(backend='inductor', dynamic=True) (torch {torch.__version__})",
        runner="torch-in-process",
        path=None,
        in_process=compiled,
    )
    return ExportResult(artifact=artifact)


ROUTE = Route(
    name="torch-compile",
    framework="torch",
    strategies=(("torch.compile", compile_model),),
    runner="torch-in-process",
    description="torch.compile (Inductor), compiled lazily and checked in-process: it has no file",
)
