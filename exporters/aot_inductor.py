"""Route `aot-inductor`: torch.export, then AOTInductor compiles a .pt2 package (slow: opt-in)."""

from __future__ import annotations

from graphmint.exporters._torch import TORCH_LOGGERS, export_program
from graphmint.exporters.base import ExportContext, ExportResult, Route, captured_output, first_line


def compile_package(ctx: ExportContext) -> ExportResult:
    import torch
    from torch._inductor import aoti_compile_and_package

    path = ctx.workdir / "model.pt2"
    with captured_output(TORCH_LOGGERS) as log:
        try:
            aoti_compile_and_package(export_program(ctx), package_path=str(path))
        except Exception as exc:
            return ExportResult(error=first_line(exc), log=log.getvalue())
    artifact = ctx.artifact(
        exporter=f"torch._inductor.aoti_compile_and_package (torch {torch.__version__})",
        runner="aot-inductor",
        path=path,
    )
    return ExportResult(artifact=artifact, log=log.getvalue())


ROUTE = Route(
    name="aot-inductor",
    framework="torch",
    strategies=(("aoti_compile_and_package", compile_package),),
    runner="aot-inductor",
    default=False,
    description="AOTInductor-compiled package (.pt2), reloaded with aoti_load_package (slow)",
)
