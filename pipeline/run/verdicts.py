"""How a route's raw result becomes its verdict: vacuous outputs, unsupported defaults, known failures,
and whether the route is worth explaining layer by layer."""

from __future__ import annotations

import linecache
import os
import re
from collections.abc import Mapping
from pathlib import Path

from graphmint.exporters import Route
from graphmint.exporters.base import Precision
from graphmint.exporters.upstream import upstream_reference
from graphmint.pipeline.spec.specs import ModelSpec
from graphmint.validators.content import reduced_tensors
from graphmint.validators.results import Diagnosis, RouteResult, Stage, Status

__all__ = [
    "apply_known_failure",
    "data_dependent",
    "data_dependent_branch",
    "explainable",
    "known_verdict",
    "unreduced",
    "unsupported",
    "vacuous",
]

#: what exporters say of a forward that branches on a tensor's value: a trace's warning, with its
#: location (appended by exporters.base.captured_output), or torch.export's guard error
_BRANCH_WARNING = re.compile(
    r"TracerWarning: Converting a tensor to a Python boolean[^\n]*\((?P<file>[^()\n]+):(?P<line>\d+)\)"
)
_GUARD_ERROR = re.compile(r"GuardOnDataDependentSymNode|[Cc]ould not guard on data-dependent expression")
#: where torch.export's graph dump places a node in the model's source
_NODE_SOURCE = re.compile(r"# File: (?P<file>[^\n]+?):(?P<line>\d+) in \w+, code: (?P<code>[^\n]+)")


def data_dependent_branch(log: str) -> str | None:
    """'the forward branches on a tensor's value at net.py:10 (`if x.mean() > 0:`)', where an
    exporter's log says so; None where it does not."""
    found = _BRANCH_WARNING.search(log)
    if found is None and _GUARD_ERROR.search(log):
        nodes = list(_NODE_SOURCE.finditer(log))
        found = nodes[-1] if nodes else None  # the node the guard was taken on comes last
        if found is None:
            return "data-dependent control flow: the forward branches on a tensor's value"
    if found is None:
        return None
    path, line = found["file"].strip(), int(found["line"])
    code = (found.groupdict().get("code") or linecache.getline(path, line)).strip()
    where = f"{os.path.basename(path)}:{line}" + (f" (`{code}`)" if code else "")
    return f"data-dependent control flow: the forward branches on a tensor's value at {where}"


def data_dependent(result: RouteResult) -> RouteResult:
    """A route that did not pass where its exporters met a branch on a tensor's value: that is its
    diagnosis, and the reason starts with the branch's source line."""
    if result.status == Status.PASSED:
        return result
    found = data_dependent_branch(result.log)
    if found:
        result.diagnosis = Diagnosis.DATA_DEPENDENT
        result.reason = f"{found}; {result.reason}" if result.reason else found
    return result


def vacuous(result: RouteResult, vacuous: Mapping[str, str], strict: bool) -> RouteResult:
    """A route that passed on outputs whose comparison proves nothing: a warning, or under --strict a
    failure."""
    if result.status != Status.PASSED or not vacuous:
        return result
    lines = [
        f"output {name!r} is vacuous ({why}): its check compares nothing" for name, why in vacuous.items()
    ]
    if strict:
        result.status, result.stage, result.diagnosis = Status.FAILED, Stage.COMPARE, Diagnosis.NUMBERS
        result.reason = "; ".join(lines) + " (--strict)"
    else:
        result.warnings.extend(lines)
    return result


def explainable(result: RouteResult, spec: ModelSpec, every: bool) -> bool:
    """A route that failed on numbers at the example point, and is not a known failure; with `every`,
    any route whose artifact ran."""
    check = result.check
    if every:
        return result.status in (Status.PASSED, Status.FAILED) and check is not None and bool(check.points)
    return (
        result.status == Status.FAILED
        and result.stage == Stage.COMPARE
        and check is not None
        and bool(check.points)
        and check.points[0].status == Status.FAILED
        and result.route not in spec.known_failures
    )


def unsupported(route: Route, result: RouteResult, required: bool) -> RouteResult:
    """A default route that the toolchain cannot produce for this model is `unsupported`, not an error.

    That is: the user did not name it, and every exporter of its chain raised, overran its time (at any
    stage), or no runtime here can load what they wrote. A route whose artifact loads and computes
    wrong numbers always fails.
    """
    if required or result.status != Status.ERROR:
        return result
    unloadable = result.stage == Stage.LOAD and bool(result.checks)
    unloadable = unloadable and all(c.status == Status.SKIPPED for c in result.checks)
    overran = result.diagnosis == Diagnosis.TIMEOUT  # at any stage: a bound, not a wrong answer
    if result.stage == Stage.EXPORT or unloadable or overran:
        result.status = Status.UNSUPPORTED
        result.reason = f"{route.name} cannot be produced for this model here: {result.reason}"
        known = upstream_reference(result.reason)
        if known:
            result.reason += f" [upstream: {known}]"
            result.details.upstream = known
    return result


def known_verdict(status: Status, reason: str, why: str, kind: str) -> tuple[Status, str]:
    """The verdict of a result its config lists as a known `kind` of failure: skipped, saying why and
    what was observed; one that passed keeps its status and says to remove the entry."""
    if status == Status.PASSED:
        return status, f"listed as a {kind} ({why}) but passed: remove it from known_failures"
    return Status.SKIPPED, f"{kind}: {why} (observed {reason})"


def apply_known_failure(spec: ModelSpec, result: RouteResult) -> RouteResult:
    why = spec.known_failures.get(result.route)
    if why is not None:
        observed = f"at {result.stage}: {result.reason}" if result.reason else f"at {result.stage}"
        result.status, result.reason = known_verdict(result.status, observed, why, "known limitation")
    return result


def unreduced(route: Route, path: Path | None, result: RouteResult) -> bool:
    """A reduced-precision artifact that holds no tensor in a reduced precision (the converter left
    every one in float32): `unsupported`, with the converter's reason where it is known. The count of
    reduced tensors goes to the manifest either way."""
    if route.precision == Precision.FP32 or path is None:
        return False
    held = reduced_tensors(path)
    result.details.reduced_tensors = held
    if held != 0:
        return False
    why = f" ({route.unreduced})" if route.unreduced else ""
    result.status, result.stage, result.diagnosis = Status.UNSUPPORTED, Stage.EXPORT, Diagnosis.EXPORT
    result.reason = (
        f"{route.name} cannot be produced for this model here: the converter left every tensor in float32, "
        f"the file holds no {route.precision} tensor{why}"
    )
    return True
