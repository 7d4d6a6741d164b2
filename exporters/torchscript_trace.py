"""Route `torchscript-trace`: torch.jit.trace, saved with torch.jit.save."""

from __future__ import annotations

from graphmint.exporters._torch import TORCH_LOGGERS, example_args, flat_module
from graphmint.exporters.base import ExportContext, ExportResult, Route, captured_output, first_line


def trace(ctx: ExportContext) -> ExportResult:
    import torch

    path = ctx.workdir / "model.pt"
    with captured_output(TORCH_LOGGERS) as log:
        try:
            traced = torch.jit.trace(flat_module(ctx), example_args(ctx), check_trace=False)
            torch.jit.save(traced, str(path))
        except Exception as exc:
            return ExportResult(error=first_line(exc), log=log.getvalue())
    artifact = ctx.artifact(
        exporter=f"torch.jit.trace (torch {torch.__version__})",
        runner="torchscript",
        path=path,
    )
    return ExportResult(artifact=artifact, log=log.getvalue())


ROUTE = Route(
    name="torchscript-trace",
    framework="torch",
    strategies=(("torch.jit.trace", trace),),
    runner="torchscript",
    description="TorchScript by tracing (torch.jit.trace), reloaded with torch.jit.load",
)
