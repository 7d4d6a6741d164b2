"""Typed validation results. They serialize to JSON; formatting lives elsewhere."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ERROR_BINS",
    "NUMBERED",
    "ArtifactCheck",
    "Diagnosis",
    "FileEntry",
    "OutputComparison",
    "PointCheck",
    "Rejected",
    "RouteResult",
    "Stage",
    "Status",
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


#: edges (log10 of abs error) of the histogram every comparison keeps; exact matches fall below the
#: first edge and are counted in bin 0, errors of 1 and more in the last bin
ERROR_BINS: tuple[float, ...] = tuple(float(x) for x in range(-12, 2))


@dataclass
class OutputComparison:
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
    error_histogram: list[int] = field(default_factory=list)
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
    budget: dict[str, float] | None = None
    snr_db: float | None = None
    scaled_max_abs: float | None = None
    topk_agreement: float | None = None
    passed: bool = False
    message: str = ""


@dataclass
class PointCheck:
    """One grid point: status 'passed', 'failed' (numbers off) or 'error' (it did not run)."""

    label: str
    sizes: dict[str, int]
    status: Status
    seconds: float = 0.0
    outputs: list[OutputComparison] = field(default_factory=list)
    reason: str = ""
    #: it did not finish within its time limit and was stopped
    overran: bool = False


class _WorstErrors:
    """The worst absolute and relative error over what a result holds (`_worst`)."""

    def _worst(self, attr: str) -> float | None:
        raise NotImplementedError

    @property
    def max_abs_error(self) -> float | None:
        return self._worst("max_abs_error")

    @property
    def max_rel_error(self) -> float | None:
        return self._worst("max_rel_error")


@dataclass
class ArtifactCheck(_WorstErrors):
    """An artifact loaded by one runner and checked on the whole grid."""

    runner: str
    runtime: str
    status: Status
    stage: Stage
    reason: str = ""
    diagnosis: Diagnosis = Diagnosis.NONE
    points: list[PointCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: what the runtime measured while it served (a runner's `facts`)
    facts: dict[str, Any] = field(default_factory=dict)
    #: the example point run a second time: bitwise identical outputs, and the largest difference
    deterministic: bool | None = None
    rerun_max_abs_diff: float | None = None
    #: per output judged by an accuracy budget (reduced precision): the budget, the values reached over
    #: the whole grid (cosine, snr_db, max_abs, topk_agreement) and whether they hold
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: what the runtime printed (its child's log), kept for the report folder, not the manifest
    log: str = field(default="", repr=False)

    def _worst(self, attr: str) -> float | None:
        values = [getattr(o, attr) for p in self.points for o in p.outputs if getattr(o, attr) is not None]
        return max(values) if values else None

    @property
    def verdict(self) -> dict[str, Any]:
        """How the outputs were judged, over the grid: the rules that judged, whether every element was
        within atol/rtol, and the worst float64 error, eager's own, and their ratio."""
        outputs = [o for p in self.points for o in p.outputs]
        within = [o.within_tolerance for o in outputs if o.within_tolerance is not None]
        return {
            "rule": "+".join(sorted({o.rule for o in outputs})) or None,
            "within_tolerance": all(within) if within else None,
            "float64_error": self._worst("float64_error"),
            "eager_float64_error": self._worst("eager_float64_error"),
            "noise_multiple": self._worst("noise_multiple"),
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("log")
        data["max_abs_error"] = self.max_abs_error
        data["max_rel_error"] = self.max_rel_error
        return data


@dataclass
class Rejected:
    """A candidate of a route's fallback chain that was tried and rejected: which exporter, at which
    stage, and why."""

    exporter: str
    stage: Stage
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"exporter": self.exporter, "stage": self.stage, "reason": self.reason}


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str
    bytes: int
    #: why two builds of the same inputs cannot give this file's bytes again (None: they do)
    unreproducible: str | None = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "sha256": self.sha256, "bytes": self.bytes}
        if self.unreproducible:
            entry["unreproducible"] = self.unreproducible
        return entry


@dataclass
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
    artifact: str | None = None
    files: list[FileEntry] = field(default_factory=list)
    #: the artifact checked on each runtime; the route's own runner first
    checks: list[ArtifactCheck] = field(default_factory=list)
    #: candidates of the fallback chain that were tried and rejected, in order
    rejected: list[Rejected] = field(default_factory=list)
    atol: float | None = None
    rtol: float | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    #: the precision the artifact computes in; fp16 and int8 are judged by accuracy budgets
    precision: str = "fp32"
    #: failed or errored, but the run was told to accept that (--allow-fail)
    allowed_failure: bool = False
    #: what is worth knowing about a route that passed (a cross-check runtime that disagreed)
    warnings: list[str] = field(default_factory=list)
    #: cross-check runtimes whose failure is one of the warnings: their errors are not the route's
    excused: list[str] = field(default_factory=list)
    #: everything the exporters and runtimes printed, for the report folder's logs/, not the manifest
    log: str = field(default="", repr=False)

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

    def _worst(self, attr: str) -> float | None:
        values = [
            v for c in self.checks if c.runner not in self.excused and (v := getattr(c, attr)) is not None
        ]
        return max(values) if values else None

    def to_json(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "status": self.status,
            "stage": self.stage,
            "diagnosis": self.diagnosis,
            "exporter": self.exporter,
            "runner": self.runner,
            "artifact": self.artifact,
            "files": [f.to_json() for f in self.files],
            "max_abs_error": self.max_abs_error,
            "max_rel_error": self.max_rel_error,
            "atol": self.atol,
            "rtol": self.rtol,
            "precision": self.precision,
            "budgets": self.check.budgets if self.check and self.check.budgets else None,
            **(self.check.verdict if self.check else {}),
            "reason": self.reason,
            "allowed_failure": self.allowed_failure,
            "warnings": self.warnings,
            "rejected": [r.to_json() for r in self.rejected],
            "seconds": round(self.seconds, 3),
            **self.details,
            "checks": [c.to_json() for c in self.checks],
        }
