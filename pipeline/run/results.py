"""Typed results of a run: one per route, one per model. Formatting lives in pipeline.reports."""

from __future__ import annotations

import dataclasses
import enum
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphmint.validators import results as typed
from graphmint.validators.results import FileEntry, Rejected, RouteResult

__all__ = ["FileEntry", "ModelResult", "Rejected", "RouteResult"]


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
    #: the model's `module:callable` and seed: what rebuilds the eager model (graphmint bench)
    ref: str = ""
    seed: int = 0
    #: published again from the cache: nothing that decides the result changed since it was run
    cached: bool = False

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.routes)

    def to_json(self, logs: bool = True) -> dict[str, Any]:
        """Every field, as JSON values (`from_json` reads it back); without the logs unless `logs`."""
        data = dataclasses.asdict(self)
        data["published"] = str(self.published) if self.published else None
        if not logs:
            for route in data["routes"]:
                route["log"] = ""
                for check in route["checks"]:
                    check["log"] = ""
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelResult:
        result: ModelResult = _typed(cls, data)
        result.published = Path(data["published"]) if data.get("published") else None
        return result

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
            **({"model": {"ref": self.ref, "seed": self.seed}} if self.ref else {}),
            "routes": [r.to_json() for r in self.routes],
        }


def _typed(cls: Any, value: Any) -> Any:
    """`value` (from JSON) as an instance of the annotated type `cls`: dataclasses, lists of them, enums."""
    origin = typing.get_origin(cls)
    if dataclasses.is_dataclass(cls) and isinstance(value, dict):
        hints = typing.get_type_hints(cls, vars(typed) | vars(sys.modules[cls.__module__]))
        kwargs = {
            f.name: _typed(hints[f.name], value[f.name]) for f in dataclasses.fields(cls) if f.name in value
        }
        return cls(**kwargs)
    if origin is list and isinstance(value, list):
        (item,) = typing.get_args(cls)
        return [_typed(item, v) for v in value]
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return cls(value)
    return value
