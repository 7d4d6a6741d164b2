"""Check one artifact on the whole shape grid with its runner, and say what went wrong."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from graphmint.exporters.base import Artifact, first_line
from graphmint.validators import CROSS_CHECK_RUNTIMES, get_runner, runtimes_for
from graphmint.validators.base import Runner, RuntimeUnavailable, UnrunnableContent
from graphmint.validators.budget import pooled_budget_values
from graphmint.validators.compare import compare_output
from graphmint.validators.details import RuntimeFacts
from graphmint.validators.isolated import IsolatedRunner, Live, Overrun
from graphmint.validators.localize import first_divergence
from graphmint.validators.results import ArtifactCheck, BudgetReached, Diagnosis, PointCheck, Stage, Status
from graphmint.validators.tolerance import Criterion, Tolerance
from graphmint.validators.verdict import (  # the verdict over runtimes, importable from here too
    combine_checks,
    cross_check_warnings,
    diagnosis_of,
    excused_cross_checks,
)

__all__ = [
    "Case",
    "check_artifact",
    "check_runtimes",
    "combine_checks",
    "cross_check_warnings",
    "diagnosis_of",
    "excused_cross_checks",
    "localize_cross_checks",
    "run_once",
]

ToleranceFor = Callable[[str, str], Criterion | Tolerance]  # (output name, dtype) -> how it is judged


@dataclass(frozen=True)
class Case:
    """Inputs at one grid point and the eager model's outputs on them."""

    label: str
    sizes: Mapping[str, int]
    varied: str | None
    feeds: Mapping[str, np.ndarray]
    expected: Mapping[str, np.ndarray]
    #: the outputs of a float64 copy of the model on the same inputs (empty: none could be made)
    float64: Mapping[str, np.ndarray] = field(default_factory=dict)


def _run_point(
    runner: Runner, case: Case, tolerance_for: ToleranceFor, pooled: dict[str, list[tuple[Any, Any]]]
) -> PointCheck:
    """Run one grid point and compare its outputs; outputs judged by a budget go to `pooled` too."""
    point = PointCheck(label=case.label, sizes=dict(case.sizes), status=Status.PASSED)
    try:
        outputs, point.seconds = runner.infer(case.feeds)
    except Exception as exc:
        point.status, point.reason, point.overran = Status.ERROR, first_line(exc), isinstance(exc, Overrun)
        return point
    if len(outputs) != len(case.expected):
        point.status = Status.FAILED
        point.reason = f"{len(outputs)} outputs where the eager model gives {len(case.expected)}"
        return point
    for actual, (name, expected) in zip(outputs, case.expected.items(), strict=True):
        judge = tolerance_for(name, str(expected.dtype))
        point.outputs.append(compare_output(name, actual, expected, judge, case.float64.get(name)))
        if isinstance(judge, Criterion) and judge.budget is not None and actual.shape == expected.shape:
            pooled.setdefault(name, []).append((actual, expected))
    failed = [o.message for o in point.outputs if not o.passed]
    if failed:
        point.status, point.reason = Status.FAILED, "; ".join(failed)
    return point


def _judge_budgets(
    check: ArtifactCheck, pooled: Mapping[str, list[tuple[Any, Any]]], tolerance_for: ToleranceFor
) -> list[str]:
    """Each budget-judged output over the whole grid at once (a point of a few elements is no sample
    of an SNR): its values into `check.budgets`, and what misses its budget, one phrase per output."""
    missed = []
    for name, pairs in pooled.items():
        judge = tolerance_for(name, str(pairs[0][1].dtype))
        assert isinstance(judge, Criterion) and judge.budget is not None
        values = pooled_budget_values(pairs, judge.budget.topk)
        misses = values.misses(judge.budget)
        check.budgets = {
            **check.budgets,
            name: BudgetReached(budget=judge.budget.to_json(), **values.to_json(), passed=not misses),
        }
        if misses:
            missed.append(f"output {name!r} over the grid: {'; '.join(misses)} (budget)")
    return missed


def _diagnose(
    points: Sequence[PointCheck], cases: Sequence[Case], dims: Mapping[str, int]
) -> tuple[str, Diagnosis]:
    """One line on what failed, naming a dynamic dim that the artifact froze when that is the pattern,
    and the kind of failure."""
    bad = [(p, c) for p, c in zip(points, cases, strict=True) if p.status != Status.PASSED]
    if not bad:
        return "", Diagnosis.NONE
    overran = [p for p, _ in bad if p.overran]
    if overran:  # a bound, not a wrong answer: the points after it could not run at all
        return f"did not finish at {overran[0].label} (stage: run): {overran[0].reason}", Diagnosis.TIMEOUT
    if points[0].status == Status.PASSED:
        for dim in dict.fromkeys(c.varied for _, c in bad if c.varied):
            tried = [p for p, c in zip(points, cases, strict=True) if c.varied == dim]
            failing = [p for p in tried if p.status != Status.PASSED]
            if len(failing) == len(tried):
                sizes = ", ".join(str(p.sizes[dim]) for p in failing)
                return (
                    f"dynamic dim {dim!r} looks frozen at its example size {dims[dim]}: the example "
                    f"shape passes but {dim}={sizes} fail ({failing[0].reason})"
                ), Diagnosis.FROZEN_DIM
    first, _ = bad[0]
    where = ", ".join(p.label for p, _ in bad)
    shaped = next((line for p, c in bad if (line := _shape_line(p, c))), "")
    if shaped:
        return f"{shaped}; fails at {where}: {first.reason}", Diagnosis.SHAPE
    kind = Diagnosis.RUN if all(p.status == Status.ERROR for p, _ in bad) else Diagnosis.NUMBERS
    return f"fails at {where}: {first.reason}", kind


def _shape_line(point: PointCheck, case: Case) -> str:
    """Where an output's shape parts from eager's: the output, the axis, both sizes, and the input dim
    of that size at this point (the dim the artifact gets wrong, most likely)."""
    for output in point.outputs:
        if output.shape == output.expected_shape:
            continue
        if len(output.shape) != len(output.expected_shape):
            return (
                f"output {output.name!r} has rank {len(output.shape)} where eager's has "
                f"{len(output.expected_shape)} (at {point.label})"
            )
        pairs = zip(output.shape, output.expected_shape, strict=True)
        axis, got, want = next((i, a, e) for i, (a, e) in enumerate(pairs) if a != e)
        dims = [d for d, size in case.sizes.items() if size == want]
        which = f" (dim {' or '.join(map(repr, dims))} is {want} at {point.label})" if dims else ""
        return f"output {output.name!r} has {got} where eager has {want} on axis {axis}{which}"
    return ""


def _rerun(runner: Runner, case: Case, check: ArtifactCheck) -> None:
    """Run the first case twice more and compare the two runs with each other (determinism)."""
    try:
        first, _ = runner.infer(case.feeds)
        second, _ = runner.infer(case.feeds)
    except Exception as exc:
        check.notes.append(f"re-running the example failed: {first_line(exc)}")
        return
    same_shapes = all(a.shape == b.shape for a, b in zip(first, second, strict=True))
    check.deterministic = same_shapes and all(
        np.array_equal(a, b, equal_nan=a.dtype.kind in "fc") for a, b in zip(first, second, strict=True)
    )
    if same_shapes:
        diffs = [
            float(np.max(np.abs(a.astype(np.float64) - b)))
            for a, b in zip(first, second, strict=True)
            if a.size
        ]
        check.rerun_max_abs_diff = max(diffs, default=0.0)


def _runner(artifact: Artifact, timeout_s: float | None) -> Runner:
    """The artifact's runner; one that loads a file runs in a child process, so a crash or hang there
    becomes this check's error instead of the end of the run."""
    cls = get_runner(artifact.runner)
    if isinstance(artifact.in_process, Live):  # made in a child, served from it
        return IsolatedRunner(artifact, timeout_s=timeout_s)
    if artifact.path is None:
        return cls(artifact)
    if issubclass(cls, IsolatedRunner):
        return cls(artifact, timeout_s=timeout_s)
    return IsolatedRunner(artifact, inner=f"{cls.__module__}:{cls.__qualname__}", timeout_s=timeout_s)


def run_once(
    artifact: Artifact, feeds: Mapping[str, np.ndarray], timeout_s: float | None = None
) -> list[np.ndarray]:
    """The artifact's outputs on `feeds`, from its runner (in a child process where it loads a file)."""
    runner = _runner(artifact, timeout_s)
    runner.activate()
    try:
        outputs, _ = runner.infer(feeds)
    finally:
        runner.deactivate()
    return outputs


def check_artifact(
    artifact: Artifact, cases: Sequence[Case], tolerance_for: ToleranceFor, timeout_s: float | None = None
) -> ArtifactCheck:
    """Load `artifact` with its runner, run every case, compare every output; never raises for the model.

    `timeout_s` bounds each request to a runner in a child process (loading, one inference).
    """
    runner = _runner(artifact, timeout_s)
    check = ArtifactCheck(runner=artifact.runner, runtime="", status=Status.ERROR, stage=Stage.LOAD)
    try:
        runner.activate()
    except RuntimeUnavailable as exc:
        check.status, check.reason = Status.SKIPPED, str(exc)
        if isinstance(exc, UnrunnableContent):
            check.diagnosis = Diagnosis.UNRUNNABLE
        return check
    except Exception as exc:
        where = f"{artifact.route}/{artifact.path.name}" if artifact.path else artifact.route
        check.reason = f"could not load {where}: {first_line(exc)}"
        check.log = runner.log
        check.diagnosis = Diagnosis.TIMEOUT if isinstance(exc, Overrun) else Diagnosis.LOAD
        return check
    try:
        check.runtime, check.notes = runner.runtime, list(runner.notes)
        check.stage = Stage.RUN
        pooled: dict[str, list[tuple[Any, Any]]] = {}
        check.points = [_run_point(runner, case, tolerance_for, pooled) for case in cases]
        if cases and check.points[0].status != Status.ERROR:
            _rerun(runner, cases[0], check)
    finally:
        runner.deactivate()
        check.facts, check.log = RuntimeFacts.model_validate(runner.facts), runner.log
    examples = dict(cases[0].sizes) if cases else {}
    check.reason, check.diagnosis = _diagnose(check.points, cases, examples)
    missed = _judge_budgets(check, pooled, tolerance_for)
    if missed and not check.reason:
        check.reason, check.diagnosis = "; ".join(missed), Diagnosis.NUMBERS
    if check.diagnosis and check.facts.frozen_dims:  # the graph itself holds a dynamic dim fixed
        check.diagnosis = Diagnosis.FROZEN_DIM
    if check.notes and check.reason:
        check.reason += "; " + "; ".join(check.notes)
    statuses = {p.status for p in check.points}
    overran = any(p.overran for p in check.points)
    if statuses == {Status.PASSED} and not missed:
        check.status, check.stage = Status.PASSED, Stage.COMPARE
    elif Status.ERROR in statuses and (check.points[0].status == Status.ERROR or overran):
        check.status = Status.ERROR
    else:
        check.status, check.stage = Status.FAILED, Stage.COMPARE
    return check


def check_runtimes(
    artifact: Artifact, cases: Sequence[Case], tolerance_for: ToleranceFor, timeout_s: float | None = None
) -> list[ArtifactCheck]:
    """The artifact checked on every runtime that can load its format, its route's runner first.

    Where a cross-check runtime computes other numbers while the deployment runtime agrees with the
    eager model, its reason names the node where the two part ways (validators.localize).
    """
    checks = [
        check_artifact(replace(artifact, runner=name), cases, tolerance_for, timeout_s)
        for name in runtimes_for(artifact.runner)
    ]
    localize_cross_checks(artifact, checks, cases, timeout_s)
    return checks


def localize_cross_checks(
    artifact: Artifact, checks: Sequence[ArtifactCheck], cases: Sequence[Case], timeout_s: float | None
) -> None:
    """Where the deployment runtime (checks[0]) passed and a cross-check failed at a grid point, add to
    the cross-check's reason the node where the two part ways at its first failing point. A cross-check
    that failed over the whole grid alone (a reduced route's budget), every point holding, has no
    point to look at and keeps its reason."""
    if not checks or checks[0].status != Status.PASSED:
        return
    for check in checks[1:]:
        if check.runner not in CROSS_CHECK_RUNTIMES or check.status != Status.FAILED:
            continue
        index = next((i for i, p in enumerate(check.points) if p.status != Status.PASSED), None)
        if index is None:
            continue
        where = first_divergence(
            replace(artifact, runner=check.runner), check.runner, cases[index].feeds, timeout_s
        )
        if where:
            check.reason += (
                f"; at {cases[index].label} it {where}" if where.startswith("first") else f"; {where}"
            )
