"""The record set: every result graphmint keeps, in memory and on disk, as one set of types.

A record is a pydantic model. Built in code, or validated from a file as it is
(`model_validate`, the write schema), it is strict: a key it does not declare is a bug and raises
(keys derived from others, such as a route's worst error, are declared and derived again). Read
back from a file it is lenient (`Record.read`): keys that older or newer versions of graphmint wrote
and this one does not declare are dropped, so every older manifest still loads. The codec is
validators.records; the sub-records a route holds (budgets, runtime facts, per-format details) are
validators.details.
`Record.dump()` is the JSON a manifest holds (what a process keeps only for itself, such as logs, is
left out; `full=True` keeps it, for a run's own hand-over between processes). Formatting lives
elsewhere (pipeline.reports).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field, computed_field

from graphmint.exporters.base import Precision
from graphmint.validators.details import (
    BudgetLimits,
    BudgetReached,
    DivergenceRecord,
    FileEntry,
    LayerError,
    OpsetUpgrade,
    ReducedPrecision,
    RouteDetails,
    RuntimeFacts,
)
from graphmint.validators.records import Record, RelPath, json_default

__all__ = [
    "ERROR_BINS",
    "NUMBERED",
    "ArtifactCheck",
    "BudgetLimits",
    "BudgetReached",
    "Diagnosis",
    "DivergenceRecord",
    "FileEntry",
    "LayerError",
    "OpsetUpgrade",
    "OutputComparison",
    "PointCheck",
    "Precision",
    "Record",
    "ReducedPrecision",
    "Rejected",
    "RelPath",
    "RouteDetails",
    "RouteResult",
    "RuntimeFacts",
    "Stage",
    "Status",
    "json_default",
]


class Status(StrEnum):
    """How a grid point, a check or a route ended; written to manifests and reports as its value."""

    PASSED = "passed"
    #: it ran, and the numbers are off
    FAILED = "failed"
    #: it did not run (an export, load or run that raised)
    ERROR = "error"
    #: it does not apply (a runtime missing here, a route a model cannot take), with the reason
    SKIPPED = "skipped"
    #: a default route that the toolchain cannot export for this model, with the exporter's reason
    UNSUPPORTED = "unsupported"


#: statuses whose errors mean something: the artifact ran on the whole grid
NUMBERED = frozenset({Status.PASSED, Status.FAILED})


class Stage(StrEnum):
    """The step of a route that decided a status other than passed."""

    NONE = ""
    EXPORT = "export"
    LOAD = "load"
    RUN = "run"
    COMPARE = "compare"


class Diagnosis(StrEnum):
    """What kind of failure a route or check had, for the reports to advise on (not parsed from text)."""

    NONE = ""
    #: the example shape passes but a dynamic dim fails at every other size, or the graph holds it fixed
    FROZEN_DIM = "frozen-dim"
    #: ONNX Runtime's graph optimizations change the numbers; without them the file matches eager
    RUNTIME_FUSION = "runtime-fusion"
    EXPORT = "export"
    LOAD = "load"
    RUN = "run"
    #: a stage (export, load, one inference) did not finish within its time limit and was stopped
    TIMEOUT = "timeout"
    #: an output's shape differs from eager's
    SHAPE = "shape"
    #: the forward branches on a tensor's value: a trace keeps one branch, torch.export cannot decide it
    DATA_DEPENDENT = "data-dependent-control-flow"
    #: it ran and the numbers are off
    NUMBERS = "numbers"
    #: the file holds what no runtime here runs (a TFLite file's Select TF ops): unsupported wherever
    UNRUNNABLE = "unrunnable-content"


#: edges (log10 of abs error) of the histogram every comparison keeps; exact matches fall below the
#: first edge and are counted in bin 0, errors of 1 and more in the last bin
ERROR_BINS: tuple[float, ...] = tuple(float(x) for x in range(-12, 2))


class OutputComparison(Record):
    """One output of one artifact at one grid point, against the eager output."""

    name: str
    dtype: str
    expected_dtype: str
    shape: list[int]
    expected_shape: list[int]
    atol: float
    rtol: float
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    mean_abs_error: float | None = None
    mismatch_fraction: float | None = None
    cosine_similarity: float | None = None
    nan_count: int = 0
    inf_count: int = 0
    #: the element with the largest abs error: its index, the artifact's value and the eager value
    worst_index: list[int] | None = None
    worst_actual: float | None = None
    worst_expected: float | None = None
    #: element counts per ERROR_BINS bin of log10 |actual - expected|
    error_histogram: list[int] = []
    #: the rule that judged (validators.tolerance.Rule), and the elementwise atol/rtol verdict either way
    rule: str = "tolerance"
    within_tolerance: bool | None = None
    #: against a float64 copy of the model (RMSE): the artifact's error, the eager float32 model's own
    #: (its noise), the noise rule's limit, the artifact's error as a multiple of the noise, and the
    #: float64 value at the worst element
    float64_error: float | None = None
    eager_float64_error: float | None = None
    noise_limit: float | None = None
    noise_multiple: float | None = None
    worst_float64: float | None = None
    #: where a top-1 rule applies: the share of rows whose arg-max agrees with eager
    top1_agreement: float | None = None
    #: the SNR against eager (dB), every float output's; where a budget judges (reduced precision): the
    #: budget, and the max abs error as a fraction of max|eager| and the top-k agreement reached
    budget: BudgetLimits | None = None
    snr_db: float | None = None
    scaled_max_abs: float | None = None
    topk_agreement: float | None = None
    passed: bool = False
    message: str = ""


class PointCheck(Record):
    """One grid point: status 'passed', 'failed' (numbers off) or 'error' (it did not run)."""

    label: str
    sizes: dict[str, int]
    status: Status
    seconds: float = 0.0
    outputs: list[OutputComparison] = []
    reason: str = ""
    #: it did not finish within its time limit and was stopped
    overran: bool = False


def _worst(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return max(found) if found else None


class _WorstErrors(Record):
    """A record whose worst absolute and relative errors are derived from what it holds (`worst`)."""

    def worst(self, attr: str) -> float | None:
        raise NotImplementedError

    @computed_field  # type: ignore[prop-decorator]
    @property
    def max_abs_error(self) -> float | None:
        return self.worst("max_abs_error")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def max_rel_error(self) -> float | None:
        return self.worst("max_rel_error")


class ArtifactCheck(_WorstErrors):
    """An artifact loaded by one runner and checked on the whole grid."""

    runner: str
    runtime: str
    status: Status
    stage: Stage
    reason: str = ""
    diagnosis: Diagnosis = Diagnosis.NONE
    points: list[PointCheck] = []
    notes: list[str] = []
    facts: RuntimeFacts = RuntimeFacts()
    #: the example point run a second time: bitwise identical outputs, and the largest difference
    deterministic: bool | None = None
    rerun_max_abs_diff: float | None = None
    #: per output judged by an accuracy budget (reduced precision): the budget, the values reached over
    #: the whole grid and whether they hold
    budgets: dict[str, BudgetReached] = {}
    #: what the runtime printed (its child's log), kept for the report folder, not the manifest
    log: str = Field(default="", repr=False)
    private: ClassVar[tuple[str, ...]] = ("log",)

    def worst(self, attr: str) -> float | None:
        return _worst([getattr(o, attr) for p in self.points for o in p.outputs])

    @property
    def outputs(self) -> list[OutputComparison]:
        return [o for p in self.points for o in p.outputs]

    @property
    def rule(self) -> str | None:
        """The rules that judged the outputs, over the grid ("noise", "noise+tolerance")."""
        return "+".join(sorted({o.rule for o in self.outputs})) or None

    @property
    def within_tolerance(self) -> bool | None:
        """Whether every element was within atol/rtol, over the grid (None where none was judged so)."""
        within = [o.within_tolerance for o in self.outputs if o.within_tolerance is not None]
        return all(within) if within else None


class Rejected(Record):
    """A candidate of a route's fallback chain that was tried and rejected: which exporter, at which
    stage, and why."""

    exporter: str
    stage: Stage
    reason: str


#: the order of a route's keys in a manifest; its details follow, then its checks
_ROUTE_ORDER = (
    "route",
    "status",
    "stage",
    "diagnosis",
    "exporter",
    "runner",
    "artifact",
    "files",
    "max_abs_error",
    "max_rel_error",
    "atol",
    "rtol",
    "precision",
    "budgets",
    "rule",
    "within_tolerance",
    "float64_error",
    "eager_float64_error",
    "noise_multiple",
    "reason",
    "allowed_failure",
    "warnings",
    "excused",
    "rejected",
    "seconds",
)


class RouteResult(_WorstErrors):
    """How one route went. `stage` names the step that decided a non-passing status."""

    route: str
    status: Status
    stage: Stage = Stage.NONE
    reason: str = ""
    #: what kind of failure it was, for the reports' advice (NONE for a route that passed)
    diagnosis: Diagnosis = Diagnosis.NONE
    exporter: str | None = None
    #: the runner that loads the artifact, and the artifact's path relative to the model folder
    runner: str | None = None
    artifact: RelPath | None = None
    files: list[FileEntry] = []
    #: the artifact checked on each runtime; the route's own runner first
    checks: list[ArtifactCheck] = []
    #: candidates of the fallback chain that were tried and rejected, in order
    rejected: list[Rejected] = []
    atol: float | None = None
    rtol: float | None = None
    seconds: float = 0.0
    details: RouteDetails = RouteDetails()
    #: the precision the artifact computes in; fp16 and int8 are judged by accuracy budgets
    precision: Precision = Precision.FP32
    #: failed or errored, but the run was told to accept that (--allow-fail)
    allowed_failure: bool = False
    #: what is worth knowing about a route that passed (a cross-check runtime that disagreed)
    warnings: list[str] = []
    #: cross-check runtimes whose failure is one of the warnings: their errors are not the route's
    excused: list[str] = []
    #: everything the exporters and runtimes printed, for the report folder's logs/, not the manifest
    log: str = Field(default="", repr=False)
    private: ClassVar[tuple[str, ...]] = ("log",)

    @property
    def ok(self) -> bool:
        return (
            self.status == Status.PASSED
            or (self.status in (Status.SKIPPED, Status.UNSUPPORTED) and bool(self.reason))
            or self.allowed_failure
        )

    @property
    def check(self) -> ArtifactCheck | None:
        """The check on the route's own runner."""
        return self.checks[0] if self.checks else None

    def worst(self, attr: str) -> float | None:
        """The worst of `attr` over the checks whose errors are the route's (not the excused ones)."""
        return _worst([c.worst(attr) for c in self.checks if c.runner not in self.excused])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def budgets(self) -> dict[str, BudgetReached] | None:
        """Per output of a reduced-precision route: its budget, what it reached, whether it holds."""
        return self.check.budgets if self.check and self.check.budgets else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rule(self) -> str | None:
        return self.check.rule if self.check else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def within_tolerance(self) -> bool | None:
        return self.check.within_tolerance if self.check else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def float64_error(self) -> float | None:
        return self.check.worst("float64_error") if self.check else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def eager_float64_error(self) -> float | None:
        return self.check.worst("eager_float64_error") if self.check else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def noise_multiple(self) -> float | None:
        return self.check.worst("noise_multiple") if self.check else None

    def output_tolerances(self) -> dict[str, dict[str, float]]:
        """The tolerance each output is replayed with ({} where the route recorded no check): the one it
        was checked with, and for an output that the noise or scaled rule passed outside that atol/rtol,
        atol widened to twice the largest error its validation accepted on the same (golden) inputs."""
        found: dict[str, dict[str, float]] = {}
        for output in self.check.outputs if self.check else []:
            own = found.setdefault(output.name, {"atol": output.atol, "rtol": output.rtol})
            accepted = output.max_abs_error
            judged = output.rule != "tolerance" and output.passed
            if judged and output.within_tolerance is False and accepted is not None:
                own["atol"] = max(own["atol"], 2 * accepted)
        return found

    @classmethod
    def gather(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A manifest holds the details beside the route's keys: back into `details`."""
        known = RouteDetails.model_fields
        if "details" in data or not any(k in known for k in data):
            return data
        details = {k: data[k] for k in data if k in known}
        return {**{k: v for k, v in data.items() if k not in known}, "details": details}

    def arrange(self, data: dict[str, Any]) -> dict[str, Any]:
        details = data.pop("details", {}) or {}
        if isinstance(data.get("seconds"), float):
            data["seconds"] = round(data["seconds"], 3)
        ordered = {k: data.pop(k) for k in _ROUTE_ORDER if k in data}
        checks = data.pop("checks", [])
        return {**ordered, **data, **details, "checks": checks}
