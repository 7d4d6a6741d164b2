"""Route `torch-compile`: torch.compile with Inductor. It writes no file, so it is checked in-process.

Dynamo first explains the model: a model it cannot capture at all would "pass" only because it ran
eagerly, so that is reported as a skip with Dynamo's reason, and graph breaks are recorded.

The declared dynamic dims of the example inputs are marked unbacked, so one graph serves every size
of the grid, 1 included (a plain `dynamic=True` compile specializes sizes 0 and 1 and compiles again
for them). A model whose code needs to guard on such a size (`if x.shape[0] > 1`, BatchNorm's batch
check) cannot be compiled that way, nor one that Inductor miscompiles with unbacked sizes (convolution
strides): it falls back to `dynamic=True`. Frames that Dynamo resumes after a graph break carry no
marks and may still compile again for size 1: the runner records how often (`recompiles`). The
compilation happens here, on the example, so that a compiler failure is an export failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphmint.exporters._torch import TorchExporter, example_args, flat_module
from graphmint.exporters.base import ExportContext, Made, NotApplicable, Route, first_line


def _compiled(ctx: ExportContext, module: Any, unbacked: bool, graphs: int) -> Any:
    """torch.compile'd `module`, already compiled on the example inputs.

    With `unbacked`, a compile that splits the model into more graphs than Dynamo's plain capture
    (`graphs`) is refused: code that checks a size (BatchNorm's batch check) breaks the graph at every
    such place when the size is unbacked, which is worse than compiling once more for size 1.
    """
    import torch
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    before = counters["stats"]["unique_graphs"]
    compiled = torch.compile(module, backend="inductor", dynamic=True)
    # made as the runner makes its inputs (inference tensors): a tensor that differs from the example
    # in its dispatch keys would fail a guard and compile again, without the unbacked marks
    with torch.inference_mode():
        args = example_args(ctx)
        if unbacked:
            for name, tensor in zip(ctx.input_names, args, strict=True):
                for axis in ctx.dynamic_axes.get(name, {}):
                    torch._dynamo.decorators.mark_unbacked(tensor, axis)
        compiled(*args)
    made = counters["stats"]["unique_graphs"] - before
    if unbacked and made > graphs:
        raise RuntimeError(f"unbacked dynamic dims split the model into {made} graphs instead of {graphs}")
    return compiled


class Compile(TorchExporter):
    tool = "torch.compile(backend='inductor', dynamic=True)"
    format = "torch-compile"

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import torch
        from torch._dynamo.utils import counters

        module = flat_module(ctx)
        seen = dict(counters["unimplemented"])
        explained = torch._dynamo.explain(module)(*example_args(ctx))
        unsupported = [k for k, n in counters["unimplemented"].items() if n > seen.get(k, 0)]
        reasons = [
            first_line(str(r)) for r in [*(b.reason for b in explained.break_reasons), *unsupported][:3]
        ]
        if explained.graph_count == 0:
            why = f": {reasons[0]}" if reasons else ""
            raise NotApplicable(f"torch.compile captured no graph, Dynamo runs this model eagerly{why}")
        shapes = "unbacked" if ctx.dynamic_axes else "dynamic"
        try:
            compiled = _compiled(ctx, module, bool(ctx.dynamic_axes), explained.graph_count)
        except Exception as unbacked_exc:
            if not ctx.dynamic_axes:
                raise
            print(f"compiling with unbacked dynamic dims failed: {first_line(unbacked_exc)}")
            compiled, shapes = _compiled(ctx, module, False, explained.graph_count), "dynamic"
        details = {
            "graphs": explained.graph_count,
            "graph_breaks": explained.graph_break_count,
            "graph_break_reasons": reasons or None,
            "dynamic_dims": shapes,
        }
        return Made(in_process=compiled, details=details)


ROUTE = Route(
    name="torch-compile",
    framework="torch",
    strategies=(("torch.compile", Compile()),),
    description="torch.compile (Inductor), compiled in-process on the example and checked there: no file",
    in_process=True,
)
