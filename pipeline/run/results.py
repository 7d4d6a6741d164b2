"""Typed results of a run: one per route, one per model. Formatting lives in pipeline.reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphmint.validators.results import ArtifactCheck, Diagnosis, Stage, Status

__all__ = ["FileEntry", "ModelResult", "RouteResult"]


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
class RouteResult:
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
    rejected: list[dict[str, str]] = field(default_factory=list)
    atol: float | None = None
    rtol: float | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
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

    @property
    def max_abs_error(self) -> float | None:
        return self._worst("max_abs_error")

    @property
    def max_rel_error(self) -> float | None:
        return self._worst("max_rel_error")

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
            **(self.check.verdict if self.check else {}),
            "reason": self.reason,
            "allowed_failure": self.allowed_failure,
            "warnings": self.warnings,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            **self.details,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass
class ModelResult:
    """A model's run: its interface, the versions it ran with, every route's result."""

    name: str
    framework: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    versions: dict[str, str]
    #: every dynamic dim's range: {"batch": {"min": 1, "max": 64, "example": 2}}
    dims: dict[str, dict[str, int]] = field(default_factory=dict)
    routes: list[RouteResult] = field(default_factory=list)
    #: golden data sets: {"path": "test_data_set_N", "label": grid point, "sizes": dynamic dim sizes}
    golden: list[dict[str, Any]] = field(default_factory=list)
    published: Path | None = None
    #: the rule that gates float outputs, and per output the eager model's own error against a float64
    #: copy (RMSE; empty, with the reason, where none could be made)
    rule: str = "noise"
    noise: dict[str, float] = field(default_factory=dict)
    float64_reason: str = ""
    #: outputs whose comparison proves nothing, and why
    vacuous: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.routes)

    def manifest(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "framework": self.framework,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "dims": self.dims,
            "versions": self.versions,
            "golden": self.golden,
            "rule": self.rule,
            "noise": self.noise,
            "float64_reference": self.float64_reason or "ok",
            "vacuous": self.vacuous,
            "routes": [r.to_json() for r in self.routes],
        }
