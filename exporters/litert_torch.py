"""Route `litert-torch`: a PyTorch model to a TFLite flatbuffer with litert-torch's own converter (no
TensorFlow), run on LiteRT's interpreter.

litert-torch lowers each aten op through jax.jit, which needs concrete shapes, so a dim declared
dynamic often cannot stay dynamic: the conversion raises (a dim that reached JAX as INT64_MIN,
litert-torch#685; a shape JAX cannot trace, or an arange whose end is a dynamic dim, #870), or the file
holds the dim fixed. Both are `unsupported` with the upstream reference; a file is never passed as
dynamic when its input's `shape_signature` holds the dim at a size (or at a garbage value such as
-9223372036854775808).

The module is converted with keyword inputs named as the model's inputs and dict outputs named as
its outputs, so that the file's signature carries the names every other route's file carries.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

from graphmint.exporters._torch import TorchExporter, example_args, export_dynamic_shapes, flat_module
from graphmint.exporters.base import ExportContext, Made, Route, Unsupported, first_line
from graphmint.exporters.tflite_file import input_shape_signatures

#: what litert-torch raises where its JAX lowering meets a dim it cannot keep dynamic
_LOST_DIM = re.compile(
    r"-9223372036854775808|Shapes must be 1D sequences of concrete values|"
    r"get\(\): incompatible function arguments|"
    # its int64-to-int32 pass range-checks arange's bounds as ints; a dynamic dim made one a graph node
    r"'<=' not supported between instances of 'int' and 'Node'"
)


def _named_module(ctx: ExportContext) -> Any:
    """`flat_module` taking its inputs by keyword (the file's input names) and returning a dict of
    the eager output names (the file's output names)."""
    import torch

    flat, inputs, outputs = flat_module(ctx), tuple(ctx.input_names), tuple(ctx.output_names)

    class Named(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.flat = flat

        def forward(self, **kw: Any) -> dict[str, Any]:
            return dict(zip(outputs, self.flat(*(kw[n] for n in inputs)), strict=True))

    # torch.export binds keyword inputs (and their dynamic_shapes) by the forward's parameter names
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    Named.forward.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*params, *(inspect.Parameter(n, keyword) for n in inputs)]
    )
    return Named().eval()


def lost_dims(ctx: ExportContext, signatures: dict[str, tuple[int, ...]]) -> list[str]:
    """Each declared dynamic dim the file does not hold as dynamic (-1), as 'input[axis]=value'."""
    lost = []
    for name, axes in ctx.dynamic_axes.items():
        shape = signatures.get(name)
        for axis, (dim, _, _) in axes.items():
            value = shape[axis] if shape is not None and axis < len(shape) else None
            if value != -1:
                lost.append(f"{dim!r} ({name}[{axis}] holds {value})")
    return lost


class Convert(TorchExporter):
    tool = "litert_torch.convert"
    package = "litert_torch"
    format = "tflite"
    requires = ("litert_torch",)

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import litert_torch

        assert path is not None
        kwargs = dict(zip(ctx.input_names, example_args(ctx), strict=True))
        (per_input,) = export_dynamic_shapes(ctx)
        dynamic = dict(zip(ctx.input_names, per_input, strict=True)) if ctx.dynamic_axes else None
        dims = sorted({d for axes in ctx.dynamic_axes.values() for d, _, _ in axes.values()})
        try:
            converted = litert_torch.convert(_named_module(ctx), (), kwargs, dynamic_shapes=dynamic)
        except Exception as exc:
            if dynamic and _LOST_DIM.search(str(exc)):
                raise Unsupported(
                    f"litert-torch cannot keep dynamic dim(s) {', '.join(map(repr, dims))}: its conversion "
                    f"raised {first_line(exc)}"
                ) from exc
            raise
        converted.export(str(path))
        signatures = input_shape_signatures(path)
        lost = lost_dims(ctx, signatures)
        if lost:
            raise Unsupported(
                f"litert-torch cannot keep dynamic dim(s) {', '.join(lost)}: the file's input "
                f"shape_signature holds them fixed ({signatures})"
            )
        return Made(details={"ops": "TFLITE_BUILTINS"})


ROUTE = Route(
    name="litert-torch",
    framework="torch",
    strategies=(("litert-torch", Convert()),),
    default=False,
    description="TFLite flatbuffer via litert-torch (no TensorFlow), run in LiteRT's interpreter",
)
