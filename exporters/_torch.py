"""Helpers shared by the PyTorch exporters (imported only once torch is in use)."""

from __future__ import annotations

from typing import Any

from exporters.base import ExportContext

TORCH_LOGGERS = ("torch", "torch._dynamo", "torch._inductor", "torch.export", "torch.onnx", "torch.fx")


def example_args(ctx: ExportContext) -> tuple[Any, ...]:
    from pipeline.frameworks.torch_fw import to_torch

    return tuple(to_torch(ctx.example_inputs))


def export_dynamic_shapes(ctx: ExportContext) -> tuple[dict[int, Any], ...]:
    """`dynamic_shapes` for torch.export, positional; one `Dim` per dim name, shared across inputs."""
    from torch.export import Dim

    dims: dict[str, Any] = {}
    shapes = []
    for name in ctx.input_names:
        axes = {}
        for axis, (dim, low, high) in ctx.dynamic_axes.get(name, {}).items():
            if dim not in dims:
                dims[dim] = Dim(dim, min=low, max=high)
            axes[axis] = dims[dim]
        shapes.append(axes)
    return tuple(shapes)


def export_program(ctx: ExportContext) -> Any:
    """torch.export.export with the context's dynamic dims."""
    import torch

    return torch.export.export(ctx.model, example_args(ctx), dynamic_shapes=export_dynamic_shapes(ctx))
