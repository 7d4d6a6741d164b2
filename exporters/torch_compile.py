"""Route `torch-compile`: torch.compile with Inductor. It writes no file, so it is checked in-process.

Dynamo first explains the model: a model it cannot capture at all would "pass" only because it ran
eagerly, so that is reported as a skip with Dynamo's reason, and graph breaks are recorded.
"""

from __future__ import annotations

from exporters._torch import TORCH_LOGGERS, example_args
from exporters.base import ExportContext, ExportResult, Route, captured_output, first_line


def compile_model(ctx: ExportContext) -> ExportResult:
    import torch
    from torch._dynamo.utils import counters

    seen = dict(counters["unimplemented"])
    with captured_output(TORCH_LOGGERS) as log:
        try:
            explained = torch._dynamo.explain(ctx.model)(*example_args(ctx))
            compiled = torch.compile(ctx.model, backend="inductor", dynamic=True)
        except Exception as exc:
            return ExportResult(error=first_line(exc), log=log.getvalue())
    unsupported = [k for k, n in counters["unimplemented"].items() if n > seen.get(k, 0)]
    reasons = [first_line(str(r)) for r in [*(b.reason for b in explained.break_reasons), *unsupported][:3]]
    if explained.graph_count == 0:
        why = f": {reasons[0]}" if reasons else ""
        return ExportResult(
            error=f"torch.compile captured no graph, Dynamo runs this model eagerly{why}",
            skipped=True,
            log=log.getvalue(),
        )
    artifact = ctx.artifact(
        exporter=f"torch.compile(backend='inductor', dynamic=True) (torch {torch.__version__})",
        runner="torch-in-process",
        path=None,
        in_process=compiled,
        details={
            "graphs": explained.graph_count,
            "graph_breaks": explained.graph_break_count,
            "graph_break_reasons": reasons or None,
        },
    )
    return ExportResult(artifact=artifact, log=log.getvalue())


ROUTE = Route(
    name="torch-compile",
    framework="torch",
    strategies=(("torch.compile", compile_model),),
    runner="torch-in-process",
    description="torch.compile (Inductor), compiled lazily and checked in-process: it has no file",
    in_process=True,
)
