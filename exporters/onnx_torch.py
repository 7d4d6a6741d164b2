"""Route `onnx` for PyTorch: the dynamo exporter first, the TorchScript-based exporter as fallback.

The pipeline moves to the fallback when the first candidate raises *or* its file fails validation
(e.g. the dynamo exporter froze a dimension it could not keep symbolic), and records why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphmint.exporters._torch import TorchExporter, example_args, export_dynamic_shapes, flat_module
from graphmint.exporters.base import ExportContext, Made, Route

TORCHSCRIPT_OPSET = 17


def _opset(path: Path) -> int | None:
    import onnx

    imports = onnx.load(str(path), load_external_data=False).opset_import
    return next((o.version for o in imports if o.domain in ("", "ai.onnx")), None)


class OnnxExport(TorchExporter):
    """torch.onnx.export with the context's names, into `model.onnx`."""

    tool = "torch.onnx.export"
    format = "onnx"

    def __init__(self, dynamo: bool) -> None:
        self.dynamo = dynamo

    def label(self) -> str:
        return f"{self.tool}(dynamo={self.dynamo})"

    def options(self, ctx: ExportContext) -> dict[str, Any]:
        if self.dynamo:
            return {"dynamic_shapes": export_dynamic_shapes(ctx), "external_data": False}
        dynamic_axes = {
            name: {axis: dim for axis, (dim, _, _) in axes.items()} for name, axes in ctx.dynamic_axes.items()
        }
        return {"dynamic_axes": dynamic_axes, "opset_version": TORCHSCRIPT_OPSET}

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import torch

        assert path is not None
        torch.onnx.export(
            flat_module(ctx),
            example_args(ctx),
            str(path),
            dynamo=self.dynamo,
            input_names=list(ctx.input_names),
            output_names=list(ctx.output_names),
            **self.options(ctx),
        )
        return Made(details={"opset": _opset(path)})


export_dynamo = OnnxExport(dynamo=True)
export_torchscript = OnnxExport(dynamo=False)

ROUTE = Route(
    name="onnx",
    framework="torch",
    strategies=(("dynamo", export_dynamo), ("torchscript", export_torchscript)),
    description="ONNX via torch.onnx (dynamo, falling back to TorchScript), run in ONNX Runtime",
)
