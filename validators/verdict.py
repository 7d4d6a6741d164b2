"""The verdict step: a route's attempts (each strategy's export and its artifact's checks on every
runtime) and what decides besides them (`Judging`) go in; status, stage, diagnosis, reason, warnings
and the excused runtimes come out (`Verdict`), in one place.

In order: the last attempt decides the status (the chain stops at the first that passes); a file of a
reduced-precision route that holds no reduced tensor is unsupported; a route that did not pass where
its exporters met a branch on a tensor's value is data-dependent; a known failure is skipped; a default
route the toolchain cannot produce is unsupported; a pass on vacuous outputs warns (fails, strict).
`combine_checks` and `diagnosis_of` judge one artifact over its runtimes (validators.replay too).
"""

from __future__ import annotations

import linecache
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graphmint.exporters.base import ExportState, Precision
from graphmint.exporters.upstream import upstream_reference
from graphmint.validators import CROSS_CHECK_RUNTIMES
from graphmint.validators.results import ArtifactCheck, Diagnosis, Rejected, RouteResult, Stage, Status

__all__ = [
    "Attempt",
    "Judging",
    "Verdict",
    "combine_checks",
    "cross_check_warnings",
    "data_dependent_branch",
    "diagnosis_of",
    "excused_cross_checks",
    "known_verdict",
    "route_verdict",
]


def excused_cross_checks(checks: Sequence[ArtifactCheck], strict: bool) -> set[str]:
    """The cross-check runtimes whose failure is a warning: the deployment runtime (the first) passed."""
    if strict or not checks or checks[0].status != Status.PASSED:
        return set()
    return {
        c.runner
        for c in checks[1:]
        if c.runner in CROSS_CHECK_RUNTIMES and c.status in (Status.FAILED, Status.ERROR)
    }


def cross_check_warnings(checks: Sequence[ArtifactCheck], strict: bool = False) -> list[str]:
    """One line per cross-check runtime that could not run, or disagreed, while the deployment runtime
    agreed with the eager model."""
    excused = excused_cross_checks(checks, strict)
    return [
        f"{c.runner} (cross-check) {c.status} where {checks[0].runner} passed: {c.reason}"
        for c in checks
        if c.runner in excused
    ]


def combine_checks(checks: Sequence[ArtifactCheck], strict: bool = False) -> tuple[Status, Stage, str]:
    """(status, stage, reason) of an artifact over its runtimes: passed if every runtime that ran passed,
    or only cross-check runtimes did not (they give warnings instead, unless `strict`).

    A mismatch that appears with ONNX Runtime's graph optimizations on but not with them off is named
    as such: it comes from a runtime fusion, not from the exporter.
    """
    excused = excused_cross_checks(checks, strict)
    ran = [c for c in checks if c.status != Status.SKIPPED]
    failing = [c for c in ran if c.status != Status.PASSED and c.runner not in excused]
    if not ran:
        why = "; ".join(f"{c.runner}: {c.reason}" for c in checks) or "no runtime ran"
        return Status.ERROR, Stage.LOAD, why
    if not failing:
        return Status.PASSED, Stage.NONE, ""
    reasons = []
    for c in failing:
        text = f"{c.runner}: {c.reason}"
        if _fused(c, checks):
            text = (
                "only with ONNX Runtime graph optimizations on (ORT_ENABLE_ALL); with them disabled it "
                f"passes, so a runtime fusion changes the numbers: {c.reason}"
            )
        reasons.append(text)
    status = Status.ERROR if all(c.status == Status.ERROR for c in failing) else Status.FAILED
    return status, failing[0].stage, "; ".join(reasons)


def _fused(check: ArtifactCheck, checks: Sequence[ArtifactCheck]) -> bool:
    """ONNX Runtime with graph optimizations fails where the same file without them passes."""
    noopt = next((c for c in checks if c.runner == "onnxruntime-noopt"), None)
    return check.runner == "onnxruntime" and noopt is not None and noopt.status == Status.PASSED


def diagnosis_of(checks: Sequence[ArtifactCheck], strict: bool = False) -> Diagnosis:
    """The kind of failure of an artifact over its runtimes (NONE where `combine_checks` passes it)."""
    excused = excused_cross_checks(checks, strict)
    failing = [
        c for c in checks if c.status not in (Status.PASSED, Status.SKIPPED) and c.runner not in excused
    ]
    if not failing:
        if not all(c.status == Status.SKIPPED for c in checks):
            return Diagnosis.NONE
        unrunnable = any(c.diagnosis == Diagnosis.UNRUNNABLE for c in checks)
        return Diagnosis.UNRUNNABLE if unrunnable else Diagnosis.LOAD
    if _fused(failing[0], checks):
        return Diagnosis.RUNTIME_FUSION
    return failing[0].diagnosis or Diagnosis.NUMBERS


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


def known_verdict(status: Status, reason: str, why: str, kind: str) -> tuple[Status, str]:
    """The verdict of a result its config lists as a known `kind` of failure: skipped, saying why and
    what was observed; one that passed keeps its status and says to remove the entry."""
    if status == Status.PASSED:
        return status, f"listed as a {kind} ({why}) but passed: remove it from known_failures"
    return Status.SKIPPED, f"{kind}: {why} (observed {reason})"


@dataclass(frozen=True)
class Judging:
    """What decides a route's verdict besides its attempts."""

    route: str
    precision: Precision = Precision.FP32
    #: why the route's converter may leave every tensor in float32 (exporters' `Route.unreduced`)
    unreduced: str = ""
    #: a cross-check runtime that fails where the deployment runtime passes fails the route
    strict_runtimes: bool = False
    #: a vacuous comparison fails the route
    strict: bool = False
    #: the user named the route: it must pass (a default one may be unsupported for the model)
    required: bool = True
    #: why the model's config lists the route as a known failure (None: it does not)
    known_failure: str | None = None
    #: outputs whose comparison proves nothing, and why
    vacuous: Mapping[str, str] = field(default_factory=dict)
    #: a failure of the route is reported but accepted (--allow-fail)
    allow_fail: bool = False
    #: the folder the route's files are staged in: reasons name files by their place in it
    root: Path | None = None


@dataclass(frozen=True)
class Attempt:
    """One strategy of a route tried: how its export ended and its artifact's checks on every runtime."""

    exporter: str
    state: ExportState
    #: why the export was skipped or failed
    reason: str = ""
    #: the export ran past its time
    overran: bool = False
    #: None: the export wrote no artifact to check
    checks: Sequence[ArtifactCheck] | None = None
    #: how many tensors of a reduced-precision artifact's file are reduced (None: not counted)
    reduced_tensors: int | None = None
    #: the artifact left files in the route's folder (one served from a child may leave none)
    wrote: bool = True

    def checks_pass(self, strict_runtimes: bool) -> bool:
        return self.checks is not None and combine_checks(self.checks, strict_runtimes)[0] == Status.PASSED

    def ends(self, strict_runtimes: bool) -> bool:
        """The chain stops here: the strategy does not apply, or its artifact passed its checks."""
        return self.state in (ExportState.SKIPPED, ExportState.UNSUPPORTED) or self.checks_pass(
            strict_runtimes
        )


@dataclass
class Verdict:
    """A route's status, the stage that decided it, its diagnosis, reason and warnings, the cross-check
    runtimes excused, the strategies rejected, and the upstream issue its reason matches."""

    status: Status = Status.ERROR
    stage: Stage = Stage.EXPORT
    diagnosis: Diagnosis = Diagnosis.NONE
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    excused: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    allowed_failure: bool = False
    upstream: str | None = None

    def onto(self, result: RouteResult) -> RouteResult:
        """`result` with this verdict."""
        result.status, result.stage, result.diagnosis = self.status, self.stage, self.diagnosis
        result.reason, result.warnings, result.excused = self.reason, self.warnings, self.excused
        result.rejected, result.allowed_failure = self.rejected, self.allowed_failure
        if self.upstream:
            result.details.upstream = self.upstream
        return result


def _outcome(attempts: Sequence[Attempt], judging: Judging) -> Verdict:
    """The verdict of the chain as its last attempt left it."""
    verdict, strict = Verdict(), judging.strict_runtimes
    for attempt in attempts:
        if attempt.state == ExportState.SKIPPED:
            if verdict.rejected:  # a fallback that does not apply leaves the earlier failure standing
                continue
            verdict.status, verdict.stage, verdict.reason = Status.SKIPPED, Stage.EXPORT, attempt.reason
        elif attempt.state == ExportState.UNSUPPORTED:
            verdict.status, verdict.stage, verdict.diagnosis = (
                Status.UNSUPPORTED,
                Stage.EXPORT,
                Diagnosis.EXPORT,
            )
            verdict.reason = f"{judging.route} cannot be produced for this model here: {attempt.reason}"
            verdict.upstream = upstream_reference(attempt.reason)
            if verdict.upstream:
                verdict.reason += f" [upstream: {verdict.upstream}]"
        elif attempt.checks is None:
            verdict.rejected.append(
                Rejected(exporter=attempt.exporter, stage=Stage.EXPORT, reason=attempt.reason)
            )
            verdict.status, verdict.stage = Status.ERROR, Stage.EXPORT
            verdict.diagnosis = Diagnosis.TIMEOUT if attempt.overran else Diagnosis.EXPORT
        elif attempt.checks_pass(strict) and attempt.reduced_tensors == 0:
            verdict.status, verdict.stage, verdict.diagnosis = (
                Status.UNSUPPORTED,
                Stage.EXPORT,
                Diagnosis.EXPORT,
            )
            why = f" ({judging.unreduced})" if judging.unreduced else ""
            verdict.reason = (
                f"{judging.route} cannot be produced for this model here: the converter left every tensor in "
                f"float32, the file holds no {judging.precision} tensor{why}"
            )
        elif attempt.checks_pass(strict):
            verdict.status, verdict.stage, verdict.diagnosis = Status.PASSED, Stage.NONE, Diagnosis.NONE
            verdict.warnings = cross_check_warnings(attempt.checks, strict)
            verdict.excused = sorted(excused_cross_checks(attempt.checks, strict))
        else:
            status, stage, reason = combine_checks(attempt.checks, strict)
            verdict.rejected.append(Rejected(exporter=attempt.exporter, stage=stage, reason=reason))
            verdict.status, verdict.stage = status, stage
            verdict.diagnosis = diagnosis_of(attempt.checks, strict)
    rejected = verdict.rejected
    if verdict.status != Status.PASSED or not attempts[-1].wrote:
        if verdict.status not in (Status.SKIPPED, Status.UNSUPPORTED):
            verdict.reason = "; ".join(f"{r.exporter}: {r.reason}" for r in rejected)
            if len(rejected) == 1:
                verdict.reason = rejected[0].reason
    elif rejected:
        verdict.reason = "fallback used: " + "; ".join(
            f"{r.exporter} rejected at {r.stage}: {r.reason}" for r in rejected
        )
    return verdict


def route_verdict(
    attempts: Sequence[Attempt],
    judging: Judging,
    log: str = "",
    explain: Callable[[Verdict], str] | None = None,
) -> Verdict:
    """The verdict of a route from its attempts, in order, and its exporters' and runtimes' `log`.

    `explain`, given the verdict before the model's known failures and the route's defaults settle
    it, returns where the numbers part from eager's ('' for nothing to add): appended to the reason.
    """
    verdict = _outcome(attempts, judging)
    if verdict.status != Status.PASSED and (branch := data_dependent_branch(log)):
        verdict.diagnosis = Diagnosis.DATA_DEPENDENT
        verdict.reason = f"{branch}; {verdict.reason}" if verdict.reason else branch
    line = explain(verdict) if explain is not None else ""
    if line:
        verdict.reason = f"{verdict.reason}; {line}" if verdict.reason else line
    if judging.root is not None:  # the staging folder is gone once the run ends
        verdict.reason = _relative(verdict.reason, judging.root)
        for rejected in verdict.rejected:
            rejected.reason = _relative(rejected.reason, judging.root)
    if judging.known_failure is not None:
        at = f"at {verdict.stage}: {verdict.reason}" if verdict.reason else f"at {verdict.stage}"
        verdict.status, verdict.reason = known_verdict(
            verdict.status, at, judging.known_failure, "known limitation"
        )
    checks = next((a.checks for a in reversed(attempts) if a.checks is not None), [])
    _unsupported(verdict, judging, checks)
    verdict.allowed_failure = verdict.status in (Status.FAILED, Status.ERROR) and judging.allow_fail
    if verdict.status == Status.PASSED and judging.vacuous:
        lines = [
            f"output {name!r} is vacuous ({why}): its check compares nothing"
            for name, why in judging.vacuous.items()
        ]
        if judging.strict:
            verdict.status, verdict.stage, verdict.diagnosis = Status.FAILED, Stage.COMPARE, Diagnosis.NUMBERS
            verdict.reason = "; ".join(lines) + " (--strict)"
        else:
            verdict.warnings.extend(lines)
    return verdict


def _unsupported(verdict: Verdict, judging: Judging, checks: Sequence[ArtifactCheck]) -> None:
    """A default route that the toolchain cannot produce for this model is `unsupported`, not an error.

    That is: the user did not name it, and every exporter of its chain raised, overran its time (at any
    stage), or no runtime here can load what they wrote. A file that holds what no runtime here runs
    (UnrunnableContent) is unsupported whether the user named the route or not. A route whose artifact
    loads and computes wrong numbers always fails.
    """
    if verdict.status != Status.ERROR:
        return
    unloadable = (
        verdict.stage == Stage.LOAD and bool(checks) and all(c.status == Status.SKIPPED for c in checks)
    )
    # judged by what the file holds, not by whether the user named the route (validators.base)
    unrunnable = unloadable and any(c.diagnosis == Diagnosis.UNRUNNABLE for c in checks)
    if judging.required and not unrunnable:
        return
    overran = verdict.diagnosis == Diagnosis.TIMEOUT  # at any stage: a bound, not a wrong answer
    if verdict.stage == Stage.EXPORT or unloadable or overran:
        verdict.status = Status.UNSUPPORTED
        verdict.reason = f"{judging.route} cannot be produced for this model here: {verdict.reason}"
        verdict.upstream = upstream_reference(verdict.reason)
        if verdict.upstream:
            verdict.reason += f" [upstream: {verdict.upstream}]"


def _relative(text: str, root: Path) -> str:
    """`text` naming the files under `root` by their place in it."""
    return text.replace(f"{root}{os.sep}", "").replace(str(root), ".")
