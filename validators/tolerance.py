"""Tolerances as data: defaults per dtype, overridden per model, route and output."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["DEFAULT_TOLERANCES", "EXACT", "Tolerance", "TolerancePolicy"]


@dataclass(frozen=True)
class Tolerance:
    """Elementwise pass rule: |actual - expected| <= atol + rtol * |expected|."""

    atol: float
    rtol: float

    def to_json(self) -> dict[str, float]:
        return {"atol": self.atol, "rtol": self.rtol}


DEFAULT_TOLERANCES: Mapping[str, Tolerance] = {
    "float64": Tolerance(atol=1e-7, rtol=1e-6),
    "float32": Tolerance(atol=1e-5, rtol=1e-4),
    "float16": Tolerance(atol=1e-3, rtol=1e-3),
    "bfloat16": Tolerance(atol=1e-2, rtol=1e-2),
}
EXACT = Tolerance(atol=0.0, rtol=0.0)


@dataclass(frozen=True)
class TolerancePolicy:
    """Resolves the tolerance of one output of one route.

    Precedence, most specific first: route+output, output, route, model, dtype default. A partial
    override (only `atol`) keeps the other field from the next level down.
    """

    model: Mapping[str, float] = field(default_factory=dict)
    routes: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    outputs: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    route_outputs: Mapping[tuple[str, str], Mapping[str, float]] = field(default_factory=dict)
    defaults: Mapping[str, Tolerance] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))

    def resolve(self, route: str, output: str, dtype: str) -> Tolerance:
        values = self.defaults.get(dtype, EXACT).to_json()
        for layer in (
            self.model,
            self.routes.get(route, {}),
            self.outputs.get(output, {}),
            self.route_outputs.get((route, output), {}),
        ):
            values.update({k: float(v) for k, v in layer.items()})
        return Tolerance(atol=values["atol"], rtol=values["rtol"])
