"""Route `onnx` for PyTorch: the dynamo exporter first, the TorchScript-based exporter as fallback.

The pipeline moves to the fallback when the first candidate raises *or* its file fails validation
(e.g. the dynamo exporter froze a dimension it could not keep symbolic), and records why.
"""

from __future__ import annotations

from graphmint.exporters._torch import TORCH_LOGGERS, example_args, export_dynamic_shapes, flat_module
from graphmint.exporters.base import Artifact, ExportContext, ExportResult, Route, captured_output, first_line

TORCHSCRIPT_OPSET = 17


def _artifact(ctx: ExportContext, exporter: str) -> Artifact:
    import onnx

    path = ctx.workdir / "model.onnx"
    opset = next(
        (
            o.version
            for o in onnx.load(str(path), load_external_data=False).opset_import
            if o.domain in ("", "ai.onnx")
        ),
        None,
    )
    return ctx.artifact(exporter=exporter, runner="onnxruntime", path=path, details={"opset": opset})


def _export(ctx: ExportContext, dynamo: bool, **options: object) -> ExportResult:
    """torch.onnx.export with the context's names, into `model.onnx`; failures come back as results."""
    import torch

    with captured_output(TORCH_LOGGERS) as log:
        try:
            torch.onnx.export(
                flat_module(ctx),
                example_args(ctx),
                str(ctx.workdir / "model.onnx"),
                dynamo=dynamo,
                input_names=list(ctx.input_names),
                output_names=list(ctx.output_names),
                **options,
            )
            artifact = _artifact(ctx, f"torch.onnx.export(dynamo={dynamo}) (torch {torch.__version__})")
        except Exception as exc:
            return ExportResult(error=first_line(exc), log=log.getvalue())
    return ExportResult(artifact=artifact, log=log.getvalue())


def export_dynamo(ctx: ExportContext) -> ExportResult:
    return _export(ctx, True, dynamic_shapes=export_dynamic_shapes(ctx), external_data=False)


def export_torchscript(ctx: ExportContext) -> ExportResult:
    dynamic_axes = {
        name: {axis: dim for axis, (dim, _, _) in axes.items()} for name, axes in ctx.dynamic_axes.items()
    }
    return _export(ctx, False, dynamic_axes=dynamic_axes, opset_version=TORCHSCRIPT_OPSET)


ROUTE = Route(
    name="onnx",
    framework="torch",
    strategies=(("dynamo", export_dynamo), ("torchscript", export_torchscript)),
    runner="onnxruntime",
    description="ONNX via torch.onnx (dynamo, falling back to TorchScript), run in ONNX Runtime",
)
