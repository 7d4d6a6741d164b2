"""Check one artifact on the whole shape grid with its runner, and say what went wrong."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from exporters.base import Artifact, first_line
from validators import get_runner
from validators.compare import compare_output
from validators.results import ArtifactCheck, PointCheck
from validators.tolerance import Tolerance

__all__ = ["Case", "check_artifact"]

ToleranceFor = Callable[[str, str], Tolerance]  # (output name, dtype) -> tolerance


@dataclass(frozen=True)
class Case:
    """Inputs at one grid point and the eager model's outputs on them."""

    label: str
    sizes: Mapping[str, int]
    varied: str | None
    feeds: Mapping[str, np.ndarray]
    expected: Mapping[str, np.ndarray]


def _run_point(runner: object, case: Case, tolerance_for: ToleranceFor) -> PointCheck:
    point = PointCheck(label=case.label, sizes=dict(case.sizes), status="passed")
    try:
        outputs, point.seconds = runner.infer(case.feeds)  # type: ignore[attr-defined]
    except Exception as exc:
        point.status, point.reason = "error", first_line(exc)
        return point
    if len(outputs) != len(case.expected):
        point.status = "failed"
        point.reason = f"{len(outputs)} outputs where the eager model gives {len(case.expected)}"
        return point
    for actual, (name, expected) in zip(outputs, case.expected.items(), strict=True):
        point.outputs.append(compare_output(name, actual, expected, tolerance_for(name, str(expected.dtype))))
    failed = [o.message for o in point.outputs if not o.passed]
    if failed:
        point.status, point.reason = "failed", "; ".join(failed)
    return point


def _diagnose(points: Sequence[PointCheck], cases: Sequence[Case], dims: Mapping[str, int]) -> str:
    """One line on what failed, naming a dynamic dim that the artifact froze when that is the pattern."""
    bad = [(p, c) for p, c in zip(points, cases, strict=True) if p.status != "passed"]
    if not bad:
        return ""
    if points[0].status == "passed":
        for dim in dict.fromkeys(c.varied for _, c in bad if c.varied):
            tried = [p for p, c in zip(points, cases, strict=True) if c.varied == dim]
            failing = [p for p in tried if p.status != "passed"]
            if len(failing) == len(tried):
                sizes = ", ".join(str(p.sizes[dim]) for p in failing)
                return (
                    f"dynamic dim {dim!r} looks frozen at its example size {dims[dim]}: the example "
                    f"shape passes but {dim}={sizes} fail ({failing[0].reason})"
                )
    first, _ = bad[0]
    where = ", ".join(p.label for p, _ in bad)
    return f"fails at {where}: {first.reason}"


def check_artifact(artifact: Artifact, cases: Sequence[Case], tolerance_for: ToleranceFor) -> ArtifactCheck:
    """Load `artifact` with its runner, run every case, compare every output; never raises for the model."""
    runner = get_runner(artifact.runner)(artifact)
    check = ArtifactCheck(runner=artifact.runner, runtime="", status="error", stage="load")
    try:
        runner.activate()
    except Exception as exc:
        check.reason = f"could not load {artifact.path or artifact.route}: {first_line(exc)}"
        return check
    try:
        check.runtime, check.notes = runner.runtime, list(runner.notes)
        check.stage = "run"
        check.points = [_run_point(runner, case, tolerance_for) for case in cases]
    finally:
        runner.deactivate()
    examples = dict(cases[0].sizes) if cases else {}
    check.reason = _diagnose(check.points, cases, examples)
    if check.notes and check.reason:
        check.reason += "; " + "; ".join(check.notes)
    statuses = {p.status for p in check.points}
    if statuses == {"passed"}:
        check.status, check.stage = "passed", "compare"
    elif "error" in statuses and check.points[0].status == "error":
        check.status = "error"
    else:
        check.status, check.stage = "failed", "compare"
    return check
