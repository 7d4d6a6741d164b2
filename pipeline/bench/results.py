"""What `graphmint bench` measured: per model, one Subject per thing measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphmint.pipeline.bench.measure import StabilityRule
from graphmint.validators.results import RouteResult

__all__ = ["BenchOptions", "ModelBench", "Subject"]


@dataclass(frozen=True)
class BenchOptions:
    batches: tuple[int, ...] = (1,)
    threads: int = 1
    rule: StabilityRule = field(default_factory=StabilityRule)
    #: seconds one request to a child (loading, or measuring one batch size) may take
    timeout_s: float = 300.0
    trust: bool = False
    verify_key: Path | None = None


@dataclass
class Subject:
    """One thing measured for a model: the eager model, or one route's artifact on one runtime."""

    #: the route, or `route@runner` for an artifact measured on a runtime other than its route's
    name: str
    #: "eager", "artifact" (a published file), "in-process" (a route without a file), "optimized"
    kind: str
    runner: str = ""
    runtime: str = ""
    artifact: str | None = None
    size_bytes: int | None = None
    load_s: float | None = None
    #: batch size -> Timing.to_json(), with "speedup" over eager at that batch where eager was measured
    timings: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: batch size -> why it was not measured
    skipped: dict[int, str] = field(default_factory=dict)
    memory: dict[str, float | None] = field(default_factory=dict)
    #: why nothing was measured (refused, failed to load or run, did not validate)
    reason: str = ""
    error: bool = False
    #: the replay of an artifact made here (the offline-optimized ONNX model) against the golden data
    validation: RouteResult | None = None
    #: the file, while it lives in a temporary folder (the offline-optimized ONNX model)
    path: Path | None = None
    #: the precision it computes in, and its accuracy as validation measured it: the worst SNR (dB)
    #: of its outputs against eager over the grid
    precision: str = "fp32"
    snr_db: float | None = None
    #: the route whose artifact it is (the name, unless the name says the runtime too)
    route: str = ""

    def __post_init__(self) -> None:
        self.route = self.route or self.name

    @property
    def deployable(self) -> bool:
        """A verified file that may be recommended."""
        return self.kind in ("artifact", "optimized") and bool(self.timings) and not self.error

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "subject": self.name,
            "route": self.route,
            "kind": self.kind,
            "runner": self.runner,
            "runtime": self.runtime,
            "artifact": self.artifact,
            "size_bytes": self.size_bytes,
            "load_s": self.load_s,
            "memory": self.memory,
            "batches": {str(b): t for b, t in sorted(self.timings.items())},
            "skipped": {str(b): r for b, r in sorted(self.skipped.items())},
            "reason": self.reason,
            "error": self.error,
            "precision": self.precision,
            "snr_db": self.snr_db,
        }
        if self.validation is not None:
            data["validation"] = {
                "status": self.validation.status,
                "reason": self.validation.reason,
                "max_abs_error": self.validation.max_abs_error,
                "warnings": self.validation.warnings,
            }
        return data


@dataclass
class ModelBench:
    name: str
    framework: str
    folder: Path
    subjects: list[Subject] = field(default_factory=list)
    #: the fastest deployable subject at the first batch size, once chosen
    recommended: dict[str, Any] | None = None
    #: where the recommendation was recorded, or why it was not
    recorded: str = ""

    @property
    def errors(self) -> list[Subject]:
        return [s for s in self.subjects if s.error]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "framework": self.framework,
            "folder": self.folder.as_posix(),
            "subjects": [s.to_json() for s in self.subjects],
            "recommended": self.recommended,
            "recorded": self.recorded,
        }
