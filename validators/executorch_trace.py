"""Where an ExecuTorch program parts from its own graph, at the runtime's granularity: the Inspector.

The per-layer comparison (pipeline.run.explain) says which eager layer a .pte computes differently.
This says whether the runtime is where it happens. The route's exporter, asked for a debug record,
writes an ETRecord beside the .pte: the edge program with its debug handles. The .pte is then run here
in a child of its own with ETDump and a debug buffer, so every event (an XNNPACK delegate call, or
an op left to a portable kernel) leaves its output. ExecuTorch's Inspector (`calculate_numeric_gap`)
pairs each event with the same ops run ahead of time in Python, and graphmint judges each pair at
its float32 tolerance. A .pte whose events all agree with their ahead-of-time ops, while the layers
part from eager, took the difference in with the captured graph, not in its runtime.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.exporters.executorch import ETRECORD
from graphmint.validators.details import EventGap, RuntimeTrace
from graphmint.validators.tolerance import DEFAULT_TOLERANCES, Tolerance

__all__ = ["TOOL", "judge_event", "trace_program"]

TOOL = "executorch.devtools.Inspector.calculate_numeric_gap"
#: room for every event's output of one run at one grid point
_DEBUG_BUFFER = 128 << 20


def _arrays(value: Any) -> list[np.ndarray]:
    """An event's output as arrays: a tensor, or the tensors of a delegate with several outputs."""
    if isinstance(value, list | tuple):
        return [a for v in value for a in _arrays(v)]
    if hasattr(value, "detach"):
        return [value.detach().to("cpu").numpy()]
    return [np.asarray(value)]


def judge_event(
    aot_ops: Sequence[str], runtime_ops: Sequence[str], aot: Any, runtime: Any, tolerance: Tolerance
) -> EventGap:
    """One event: its runtime outputs against the same ops run ahead of time, at `tolerance`."""
    expected, actual = _arrays(aot), _arrays(runtime)
    gap = EventGap(aot_ops=list(aot_ops), runtime_ops=list(runtime_ops), outputs=len(expected), passed=True)
    if [a.shape for a in expected] != [a.shape for a in actual]:
        gap.passed = False
        shapes = [a.shape for a in actual], [a.shape for a in expected]
        gap.message = f"shapes {shapes[0]} against {shapes[1]} ahead of time"
        return gap
    worst = 0.0
    for want, got in zip(expected, actual, strict=True):
        want, got = want.astype(np.float64), got.astype(np.float64)
        if want.size == 0:
            continue
        finite = np.isfinite(want) == np.isfinite(got)
        if not finite.all():
            gap.passed = False
            gap.message = f"{int((~finite).sum())} values finite on one side only"
            continue
        ok = np.isfinite(want)
        diff = np.abs(got[ok] - want[ok])
        worst = max(worst, float(diff.max(initial=0.0)))
        if not np.all(diff <= tolerance.atol + tolerance.rtol * np.abs(want[ok])):
            gap.passed = False
    gap.max_abs_error = worst
    return gap


def _feeds_as_args(feeds: Mapping[str, np.ndarray]) -> list[Any]:
    import torch

    return [torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()]


def trace_program(pte: str, feeds: Mapping[str, np.ndarray], point: str) -> RuntimeTrace:
    """Run the .pte at `feeds` with ETDump and a debug buffer, and judge each of its events against its
    ahead-of-time ops with the Inspector (in a child: the caller bounds it)."""
    from executorch.devtools import Inspector
    from executorch.runtime import Runtime, Verification

    path = Path(pte)
    program = Runtime.get().load_program(
        path, verification=Verification.Minimal, enable_etdump=True, debug_buffer_size=_DEBUG_BUFFER
    )
    program.load_method("forward").execute(_feeds_as_args(feeds))
    tolerance = DEFAULT_TOLERANCES["float32"]
    with tempfile.TemporaryDirectory(prefix="etdump-") as scratch:
        etdump, debug = Path(scratch) / "run.etdp", Path(scratch) / "debug.bin"
        program.write_etdump_result_to_file(str(etdump), str(debug))
        inspector = Inspector(
            etdump_path=str(etdump), etrecord=str(path.with_name(ETRECORD)), debug_buffer_path=str(debug)
        )
        rows = inspector.calculate_numeric_gap("L1")
    events = [
        judge_event(
            [str(op) for op in row["aot_ops"]],
            [str(op) for op in row["runtime_ops"]],
            row["aot_intermediate_output"],
            row["runtime_intermediate_output"],
            tolerance,
        )
        for _, row in rows.iterrows()
    ]
    return RuntimeTrace(
        tool=f"{TOOL} (L1)", point=point, rtol=tolerance.rtol, atol=tolerance.atol, events=events
    )
