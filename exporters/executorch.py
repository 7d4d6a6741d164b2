"""Route `executorch` (opt-in): torch.export, lowered to XNNPACK by ExecuTorch, written as a .pte.

The program torch.export captures with the spec's dynamic dims goes through
`to_edge_transform_and_lower` with the XNNPACK partitioner (the ops XNNPACK takes become delegate
calls, the rest stay portable kernels) and `to_executorch`, which plans every tensor's memory at the
upper bound of its dims: the .pte refuses inputs past them. Beside it, `model.bpte` bundles the
program with golden cases (the grid's inputs and the eager model's outputs on them), which the runner
verifies with ExecuTorch's own bundled-program API; asked for a debug record, it writes the ETRecord
that ExecuTorch's Inspector pairs the runtime's events with. The manifest records each dim's bound in the
file, what XNNPACK took and left, and the bundle. Where executorch is not installed the route is
skipped with that reason.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from graphmint.exporters._torch import TorchExporter, export_program, flat_module
from graphmint.exporters.base import ExportContext, Made, Route

__all__ = ["BUNDLE", "ETRECORD", "ROUTE", "dim_bounds", "lowered_ops", "narrowed"]

#: the bundled program the route writes beside its .pte
BUNDLE = "model.bpte"
#: the ETRecord it writes beside it when the context asks for a debug record (ExportContext.debug_record)
ETRECORD = "etrecord.bin"
#: graph nodes that only move values around a delegate call
_PLUMBING = frozenset({"getitem", "executorch_call_delegate"})


def dim_bounds(ctx: ExportContext, program: Any) -> dict[str, int]:
    """Per dim name, the upper bound the lowered program holds for it: what ExecuTorch's memory
    planning sizes the input buffers for (`eval_upper_bound`, or the size a dim was specialized to)."""
    from executorch.exir.sym_util import eval_upper_bound

    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    users = [placeholders[name] for name in program.graph_signature.user_inputs]
    bounds: dict[str, int] = {}
    for node, name in zip(users, ctx.input_names, strict=True):
        shape = node.meta["val"].shape
        for axis, (dim, _, _) in ctx.dynamic_axes.get(name, {}).items():
            bounds.setdefault(dim, eval_upper_bound(shape[axis]))
    return bounds


def narrowed(ctx: ExportContext, bounds: dict[str, int]) -> list[str]:
    """The dims whose bound in the file is below the declared maximum, one phrase each."""
    declared = {dim: high for axes in ctx.dynamic_axes.values() for dim, _, high in axes.values()}
    return [
        f"{dim} to ..{bounds[dim]} (declared ..{high})"
        for dim, high in declared.items()
        if bounds[dim] < high
    ]


def lowered_ops(program: Any) -> tuple[int, int, list[str]]:
    """What the partitioner did: the delegates, the nodes inside them, and each op left outside
    (with its count), from the lowered edge program."""
    graph = program.graph_module
    delegates = [getattr(graph, n.target) for n in graph.graph.nodes if n.op == "get_attr"]
    delegates = [d for d in delegates if hasattr(d, "original_module")]
    inside = sum(1 for d in delegates for n in d.original_module.graph.nodes if n.op == "call_function")
    outside = Counter(
        getattr(n.target, "__name__", str(n.target))
        for n in graph.graph.nodes
        if n.op == "call_function" and getattr(n.target, "__name__", str(n.target)) not in _PLUMBING
    )
    left = [f"{op} x{count}" if count > 1 else op for op, count in sorted(outside.items())]
    return len(delegates), inside, left


def _bundle(ctx: ExportContext, manager: Any, path: Path) -> None:
    """Write the bundled program: the grid's inputs (or the example) and the eager outputs on them."""
    import torch
    from executorch.devtools import BundledProgram
    from executorch.devtools.bundled_program.config import MethodTestCase, MethodTestSuite
    from executorch.devtools.bundled_program.serialize import serialize_from_bundled_program_to_flatbuffer

    from graphmint.models.frameworks.torch_fw import to_torch

    model = flat_module(ctx)
    feeds = list(ctx.calibration) or [dict(ctx.example_inputs)]
    cases = []
    with torch.no_grad():
        for feed in feeds:
            args = tuple(to_torch({n: feed[n] for n in ctx.input_names}))
            cases.append(MethodTestCase(inputs=args, expected_outputs=model(*args)))
    bundled = BundledProgram(manager, [MethodTestSuite(method_name="forward", test_cases=cases)])
    path.write_bytes(serialize_from_bundled_program_to_flatbuffer(bundled))


def _etrecord(ctx: ExportContext, manager: Any, path: Path) -> None:
    """Write the ETRecord the Inspector reads (validators.executorch_trace): the edge program with its
    debug handles, and the example as its representative input (what its ahead-of-time ops run on)."""
    from graphmint.models.frameworks.torch_fw import to_torch

    record = manager.get_etrecord()
    example = tuple(to_torch({n: ctx.example_inputs[n] for n in ctx.input_names}))
    record.update_representative_inputs([example])
    record.save(str(path))


class ExecuTorchXnnpack(TorchExporter):
    tool = "executorch.exir.to_edge_transform_and_lower(XnnpackPartitioner)"
    format = "executorch"
    requires = ("executorch",)

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        assert path is not None
        edge = to_edge_transform_and_lower(
            export_program(ctx), partitioner=[XnnpackPartitioner()], generate_etrecord=ctx.debug_record
        )
        lowered = edge.exported_program()
        bounds = dim_bounds(ctx, lowered)
        short = narrowed(ctx, bounds)
        if short:  # its buffers would refuse inputs the spec declares, and the grid would run them
            raise ValueError(
                f"lowering to XNNPACK narrowed dim {', '.join(short)}: the .pte's buffers are planned "
                "for that bound and refuse the declared maximum (torch.export kept the declared range)"
            )
        delegates, inside, left = lowered_ops(lowered)
        manager = edge.to_executorch()
        path.write_bytes(manager.buffer)
        _bundle(ctx, manager, path.with_name(BUNDLE))
        if ctx.debug_record:
            _etrecord(ctx, manager, path.with_name(ETRECORD))
        return Made(
            details={
                "dim_bounds": bounds,
                "xnnpack_delegates": delegates,
                "delegated_nodes": inside,
                "undelegated_ops": left,
                "bundled_program": BUNDLE,
            }
        )


ROUTE = Route(
    name="executorch",
    framework="torch",
    strategies=(("to_edge_transform_and_lower+XnnpackPartitioner", ExecuTorchXnnpack()),),
    default=False,
    description="ExecuTorch program (.pte), lowered to XNNPACK, run with executorch.runtime; its dims "
    "bounded as declared, golden cases bundled beside it (.bpte)",
)
