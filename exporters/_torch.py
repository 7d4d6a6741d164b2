"""Helpers shared by the PyTorch exporters (imported only once torch is in use)."""

from __future__ import annotations

import contextlib
from typing import Any

from graphmint.exporters.base import CapturedLog, ExportContext, Exporter, captured_output

TORCH_LOGGERS = ("torch", "torch._dynamo", "torch._inductor", "torch.export", "torch.onnx", "torch.fx")


class TorchExporter(Exporter):
    """A PyTorch strategy: torch's loggers go to the route's log, the artifact names torch's version."""

    package = "torch"

    def capture(self) -> contextlib.AbstractContextManager[CapturedLog]:
        return captured_output(TORCH_LOGGERS)


def example_args(ctx: ExportContext) -> tuple[Any, ...]:
    from graphmint.models.frameworks.torch_fw import to_torch

    return tuple(to_torch(ctx.example_inputs))


def flat_module(ctx: ExportContext) -> Any:
    """The model as every file-writing route exports it: the declared inputs positionally, each bound
    to its `forward` parameter by name where the names match, and the outputs as a flat tuple in the
    eager output order.

    Exporting this instead of the model itself is what makes third-party models work: tracing
    refuses dict outputs (transformers' ModelOutput), a .pt2 whose outputs are ModelOutput pytrees
    loads only where transformers registered them, and positional inputs land on the wrong parameter
    of a forward that has more of them (BertModel's `use_cache`).
    """
    import torch

    from graphmint.models.frameworks.torch_fw import adopt, bind_inputs, call_bound, flatten_torch_tensors

    model, names = ctx.model, tuple(ctx.input_names)
    keywords = bind_inputs(model, names)

    class FlatModule(torch.nn.Module):
        """Holds the model's own submodules, parameters and buffers under their own names (not under a
        `model.` prefix), so the exported file's state dict and initializers are named as the model's."""

        def __init__(self) -> None:
            super().__init__()
            adopt(self, model)

        def forward(self, *args: Any) -> tuple[Any, ...]:
            return tuple(flatten_torch_tensors(call_bound(model, keywords, names, args)).values())

    return FlatModule().eval()


def export_dynamic_shapes(ctx: ExportContext) -> tuple[tuple[dict[int, Any], ...]]:
    """`dynamic_shapes` for torch.export of `flat_module`: one `Dim` per dim name, shared across inputs,
    nested once because the module's forward takes `*args`."""
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
    return (tuple(shapes),)


def export_program(ctx: ExportContext) -> Any:
    """torch.export.export of `flat_module` with the context's dynamic dims."""
    import torch

    return torch.export.export(flat_module(ctx), example_args(ctx), dynamic_shapes=export_dynamic_shapes(ctx))
