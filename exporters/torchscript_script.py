"""Route `torchscript-script`: torch.jit.script; a model that cannot be scripted is a skip, not a failure."""

from __future__ import annotations

from graphmint.exporters._torch import TORCH_LOGGERS
from graphmint.exporters.base import ExportContext, ExportResult, Route, captured_output, first_line


def script(ctx: ExportContext) -> ExportResult:
    import torch

    path = ctx.workdir / "model.pt"
    with captured_output(TORCH_LOGGERS) as log:
        try:
            scripted = torch.jit.script(ctx.model)
        except Exception as exc:
            reason = f"torch.jit.script does not apply to this model: {first_line(exc)}"
            return ExportResult(error=reason, skipped=True, log=log.getvalue())
        try:
            torch.jit.save(scripted, str(path))
        except Exception as exc:
            return ExportResult(error=first_line(exc), log=log.getvalue())
    artifact = ctx.artifact(
        exporter=f"torch.jit.script (torch {torch.__version__})",
        runner="torchscript",
        path=path,
    )
    return ExportResult(artifact=artifact, log=log.getvalue())


ROUTE = Route(
    name="torchscript-script",
    framework="torch",
    strategies=(("torch.jit.script", script),),
    runner="torchscript",
    description="TorchScript by scripting (torch.jit.script), reloaded with torch.jit.load",
)
