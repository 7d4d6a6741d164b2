"""Tolerances as data: defaults per dtype, overridden per model, route and output; and the rule that
judges an output with them.

Three rules, one of which gates each output (`Criterion`):

- `noise` (the default): the artifact's error against a float64 run of the same model (RMSE) must stay
  within `multiplier` times the eager float32 model's own error against it, plus a floor of a tenth of
  the tolerance at the output's scale (atol/10 + rtol/10 * RMS of the reference). This is PyTorch's
  dynamo accuracy check: an exporter is held to the precision the eager model itself has, whatever the
  output's magnitude.
- `scaled`: where no float64 reference exists, |actual - eager| <= atol + rtol * max|eager| for every
  element: the tolerance relative to the output's magnitude instead of to each element's.
- `tolerance`: |actual - eager| <= atol + rtol * |eager| for every element (numpy's allclose). It judges
  a model whose config or command line sets a tolerance, non-float outputs, and a model configured with
  `rule = "tolerance"`; every comparison records its verdict either way.

The float outputs of a reduced-precision route (fp16, int8) are judged by their accuracy budget
instead (`budget`, validators.budget): never by float32's tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from graphmint.validators.budget import Budget, BudgetPolicy, Precision

__all__ = ["DEFAULT_TOLERANCES", "EXACT", "Criterion", "Rule", "Tolerance", "TolerancePolicy"]


class Rule(StrEnum):
    NOISE = "noise"
    SCALED = "scaled"
    TOLERANCE = "tolerance"
    #: a task-level rule for classifier outputs: the share of rows whose arg-max class agrees with eager
    TOP1 = "top1"
    #: a reduced-precision artifact's accuracy budget (cosine, SNR, max abs at scale, top-k)
    BUDGET = "budget"


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

#: the noise rule's multiplier of eager's own error: dynamo's 2, and 3 for outputs of fewer than 1000
#: elements, whose RMSE is itself noisy
NOISE_MULTIPLIER, SMALL_OUTPUT_MULTIPLIER, SMALL_OUTPUT = 2.0, 3.0, 1000


@dataclass(frozen=True)
class Criterion:
    """How one output is judged: the rule that gates, the tolerance, and the noise rule's multiplier
    (None: NOISE_MULTIPLIER, or SMALL_OUTPUT_MULTIPLIER for small outputs)."""

    rule: Rule
    tolerance: Tolerance
    multiplier: float | None = None
    #: the top-1 agreement (0..1) this output must reach; it then gates instead of the numeric rule
    top1: float | None = None
    #: the accuracy budget of a reduced-precision route's output; it then gates
    budget: Budget | None = None

    def multiplier_for(self, size: int) -> float:
        if self.multiplier is not None:
            return self.multiplier
        return SMALL_OUTPUT_MULTIPLIER if size < SMALL_OUTPUT else NOISE_MULTIPLIER


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
    #: the rule that gates float outputs; None: `tolerance` where the model sets a tolerance of its
    #: own (model, route or output level), else `noise`
    rule: Rule | None = None
    multiplier: float | None = None
    #: per output, the top-1 agreement with eager that passes it (classifier logits)
    top1: Mapping[str, float] = field(default_factory=dict)
    #: the accuracy budgets of reduced-precision routes
    budgets: BudgetPolicy = field(default_factory=BudgetPolicy)

    @property
    def gating_rule(self) -> Rule:
        if self.rule is not None:
            return self.rule
        tables = [self.model, *self.routes.values(), *self.outputs.values(), *self.route_outputs.values()]
        return Rule.TOLERANCE if any(tables) else Rule.NOISE

    def criterion(
        self, route: str, output: str, dtype: str, precision: Precision = Precision.FP32
    ) -> Criterion:
        """The rule and tolerance one output of one route is judged by (non-float outputs: tolerance;
        float outputs of a reduced-precision route: its budget)."""
        is_float = dtype.startswith(("float", "bfloat"))
        if is_float and precision != Precision.FP32:
            budget = self.budgets.resolve(route, output, precision)
            return Criterion(Rule.BUDGET, self.resolve(route, output, dtype), budget=budget)
        rule = self.gating_rule if is_float else Rule.TOLERANCE
        top1 = self.top1.get(output)
        return Criterion(
            Rule.TOP1 if top1 is not None else rule, self.resolve(route, output, dtype), self.multiplier, top1
        )

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
