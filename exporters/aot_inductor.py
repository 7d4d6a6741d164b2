"""Route `aot-inductor`: torch.export, then AOTInductor compiles a .pt2 package (slow: opt-in)."""

from __future__ import annotations

from pathlib import Path

from graphmint.exporters._torch import TorchExporter, export_program
from graphmint.exporters.base import ExportContext, Route


class AotCompile(TorchExporter):
    tool = "torch._inductor.aoti_compile_and_package"
    format = "aot-inductor"

    def export(self, ctx: ExportContext, path: Path | None) -> None:
        from torch._inductor import aoti_compile_and_package

        aoti_compile_and_package(export_program(ctx), package_path=str(path))


ROUTE = Route(
    name="aot-inductor",
    framework="torch",
    strategies=(("aoti_compile_and_package", AotCompile()),),
    default=False,
    description="AOTInductor-compiled package (.pt2), reloaded with aoti_load_package (slow)",
)
