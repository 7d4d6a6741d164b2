"""What a model's routes are exported with: the export context, and a route's budgets as data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphmint.exporters import ExportContext, Route
from graphmint.models.frameworks import Framework
from graphmint.pipeline.spec.specs import ModelSpec
from graphmint.validators.check import Case

__all__ = ["DEFAULT_EXPORT_TIMEOUT_S", "export_context", "route_budgets"]

#: the default bound of one export (one strategy of a route, a torch.compile or tf.function compile
#: included): well above what any corpus model's slowest route that finishes takes here (torch-compile
#: of transformers' MobileNetV2, 209 s with two cells at once on two cores), and low enough that a
#: compile which would never end (transformers' Swin) stops in minutes
DEFAULT_EXPORT_TIMEOUT_S = 600.0


def export_context(spec: ModelSpec, framework: Framework, model: Any, cases: Sequence[Case]) -> ExportContext:
    dynamic_axes = {
        i.name: {
            a: (d, spec.dims[d].min, spec.dims[d].max) for a, d in enumerate(i.dims) if isinstance(d, str)
        }
        for i in spec.inputs
    }
    return ExportContext(
        model=model,
        framework=framework.name,
        workdir=Path(),
        input_names=tuple(i.name for i in spec.inputs),
        output_names=tuple(cases[0].expected),
        example_inputs=cases[0].feeds,
        dynamic_axes={k: v for k, v in dynamic_axes.items() if v},
        dtypes={i.name: i.dtype for i in spec.inputs},
        calibration=tuple(c.feeds for c in cases),
    )


def route_budgets(spec: ModelSpec, route: Route, case: Case) -> dict[str, dict[str, float]]:
    """Per float output, the budget a reduced-precision route's exporter aims for (none at fp32)."""
    criteria = {
        o: spec.tolerances.criterion(route.name, o, str(v.dtype), route.precision)
        for o, v in case.expected.items()
    }
    return {o: c.budget.to_json() for o, c in criteria.items() if c.budget is not None}
