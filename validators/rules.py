"""The rules that judge one output against eager, one object each, with a `judge()`.

`Measured` holds the numbers every rule starts from (the differences, the elementwise verdict, the
float64 reference's errors); each rule's `judge()` returns its `Finding`: the elements that break it,
by how much, the numbers it measured of its own, and what falls short ('' where it holds).
validators.compare picks the rule from the output's `Criterion` (`rule_for`) and fills the
`OutputComparison`. An exact rule is the tolerance rule at `EXACT` (atol = rtol = 0: non-float outputs
by default); top-k agreement is part of the budget rule.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from graphmint.validators.budget import Budget, budget_values
from graphmint.validators.tolerance import Criterion, Rule, Tolerance

__all__ = [
    "BudgetRule",
    "ComparisonRule",
    "Finding",
    "Measured",
    "Noise",
    "NoiseRule",
    "ScaledRule",
    "ToleranceRule",
    "Top1Rule",
    "Worst",
    "rms",
    "rmse",
    "rule_for",
]

_TINY = np.finfo(np.float64).tiny
#: the smallest denominator of a relative error, as a fraction of the output's largest magnitude
_REL_FLOOR = float(np.finfo(np.float32).eps)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    """Root mean square difference over the elements where both are finite (0 for none)."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    diff = diff[np.isfinite(diff)]
    return float(np.sqrt(np.mean(diff * diff))) if diff.size else 0.0


def rms(a: np.ndarray) -> float:
    return rmse(a, np.zeros_like(a))


@dataclass(frozen=True)
class Noise:
    """Against the float64 model's output (RMSE): the artifact's error and the eager model's own, and
    the noise rule's multiplier and floor (a tenth of the tolerance at the reference's scale)."""

    error: float
    eager_error: float
    multiplier: float
    floor: float

    @property
    def limit(self) -> float:
        return self.multiplier * self.eager_error + self.floor

    @property
    def multiple(self) -> float | None:
        return self.error / self.eager_error if self.eager_error > 0 else None


@dataclass(frozen=True)
class Worst:
    """The element that breaks a rule by most: its index, the artifact's, eager's and float64's values."""

    index: list[int]
    actual: float
    expected: float
    float64: float | None


@dataclass(frozen=True)
class Measured:
    """One output and eager's (same shape, as float64), and what every rule starts from."""

    actual: np.ndarray
    expected: np.ndarray
    tolerance: Tolerance
    #: the float64 model's output where it has eager's shape (None: no reference to judge against)
    float64: np.ndarray | None
    #: its errors, where there is one
    noise: Noise | None
    diff: np.ndarray
    finite: np.ndarray
    #: the same value on both sides (a non-finite one included): never an error
    same: np.ndarray

    @classmethod
    def of(
        cls, actual: np.ndarray, expected: np.ndarray, criterion: Criterion, float64: np.ndarray | None
    ) -> Measured:
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        tol = criterion.tolerance
        diff = np.abs(a - e)
        usable = float64 is not None and float64.shape == expected.shape
        reference = float64 if usable else None
        noise = None
        if reference is not None:
            r = reference.astype(np.float64)
            floor = (tol.atol + tol.rtol * rms(r)) / 10
            noise = Noise(rmse(a, r), rmse(e, r), criterion.multiplier_for(r.size), floor)
        same = (a == e) | (np.isnan(a) & np.isnan(e))
        return cls(a, e, tol, reference, noise, diff, np.isfinite(diff), same)

    @property
    def scale(self) -> float:
        """max|eager| over its finite elements."""
        e = self.expected
        return float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0))

    @property
    def elementwise_excess(self) -> np.ndarray:
        return self.diff - (self.tolerance.atol + self.tolerance.rtol * np.abs(self.expected))

    @property
    def outside_tolerance(self) -> np.ndarray:
        """The elements outside atol + rtol * |eager| (numpy's allclose)."""
        tol = self.tolerance
        return ~(self.diff <= tol.atol + tol.rtol * np.abs(self.expected)) & ~self.same

    @property
    def max_abs_error(self) -> float | None:
        diff, finite = self.diff, self.finite
        return float(diff[finite].max()) if finite.any() else (0.0 if diff.size == 0 else None)

    @property
    def max_rel_error(self) -> float | None:
        # relative to each element, but never to less than float32's resolution at the output's scale:
        # an exact zero in eager's output would otherwise divide a rounding error into 1e+300
        rel = self.diff / np.maximum(np.abs(self.expected), max(_REL_FLOOR * self.scale, _TINY))
        return float(rel[self.finite].max()) if self.finite.any() else self.max_abs_error

    def worst(self, excess: np.ndarray) -> Worst | None:
        """The element of largest finite `excess` (None: no element has a finite error)."""
        if not self.finite.any():
            return None
        index = np.unravel_index(
            int(np.argmax(np.where(np.isfinite(excess), excess, -np.inf))), self.diff.shape
        )
        reference = float(self.float64[index]) if self.float64 is not None else None
        return Worst(
            [int(i) for i in index], float(self.actual[index]), float(self.expected[index]), reference
        )


@dataclass
class Finding:
    """What a rule found: the elements that break it and by how much each does (the element named is
    the one that breaks it by most), the numbers it measured (OutputComparison's fields), and what
    falls short ('' where it holds)."""

    bad: np.ndarray
    excess: np.ndarray
    worst: Worst | None
    values: dict[str, Any] = field(default_factory=dict)
    problem: str = ""

    @property
    def passed(self) -> bool:
        return not self.problem

    @property
    def mismatch_fraction(self) -> float:
        return float(self.bad.mean()) if self.bad.size else 0.0


class ComparisonRule(ABC):
    """One way of judging an output against eager."""

    rule: ClassVar[Rule]

    @abstractmethod
    def judge(self, measured: Measured) -> Finding: ...

    def _elements(self, m: Measured, bad: np.ndarray, excess: np.ndarray, scaled: str = "") -> Finding:
        """A finding of elements outside a limit: a problem where any is."""
        found = Finding(bad, excess, m.worst(excess))
        if bad.any():
            found.problem = (
                f"{int(bad.sum())} of {bad.size} elements ({found.mismatch_fraction:.2%}) outside "
                f"atol={m.tolerance.atol:g} rtol={m.tolerance.rtol:g}{scaled}; {_worst_text(m, found.worst)}"
            )
        return found


def _worst_text(m: Measured, worst: Worst | None) -> str:
    if worst is None:  # no element has a finite error (a one-element output that is NaN)
        return "no element has a finite error"
    return (
        f"max abs error {m.max_abs_error:.3g}, max rel error {m.max_rel_error:.3g}, worst at "
        f"{worst.index}: {worst.actual:.6g} vs eager {worst.expected:.6g}"
    )


class ToleranceRule(ComparisonRule):
    """|actual - eager| <= atol + rtol * |eager| for every element."""

    rule = Rule.TOLERANCE

    def judge(self, measured: Measured) -> Finding:
        return self._elements(measured, measured.outside_tolerance, measured.elementwise_excess)


class ScaledRule(ComparisonRule):
    """|actual - eager| <= atol + rtol * max|eager| for every element."""

    rule = Rule.SCALED

    def judge(self, measured: Measured) -> Finding:
        limit = measured.tolerance.atol + measured.tolerance.rtol * measured.scale
        bad = ~(measured.diff <= limit) & ~measured.same
        return self._elements(measured, bad, measured.diff - limit, " x max|eager|")


class NoiseRule(ComparisonRule):
    """The artifact's RMSE against the float64 model within the multiplier times eager's own, plus
    the floor; the elements named are those past the multiplier times eager's own error there."""

    rule = Rule.NOISE

    def judge(self, measured: Measured) -> Finding:
        noise, r = measured.noise, measured.float64
        assert noise is not None and r is not None, "the noise rule judges only with a float64 reference"
        r = r.astype(np.float64)
        excess = np.abs(measured.actual - r) - noise.multiplier * np.abs(measured.expected - r)
        bad = (excess > noise.floor) & ~measured.same
        if noise.error <= noise.limit:
            bad[...] = False
        found = Finding(bad, excess, measured.worst(excess))
        if bad.any() or not noise.error <= noise.limit:
            worst = found.worst
            multiple = f"{noise.multiple:.3g}x" if noise.multiple is not None else "above"
            found.problem = (
                f"error against the float64 model (RMSE) {noise.error:.3g} is {multiple} the eager "
                f"model's own ({noise.eager_error:.3g}), over the noise limit {noise.limit:.3g}; "
                f"{_worst_text(measured, worst)}" + (f" (float64 {worst.float64:.6g})" if worst else "")
            )
        return found


@dataclass(frozen=True)
class Top1Rule(ComparisonRule):
    """The share of rows whose arg-max class agrees with eager's, at least `top1`."""

    top1: float
    rule: ClassVar[Rule] = Rule.TOP1

    def judge(self, measured: Measured) -> Finding:
        a, e = measured.actual, measured.expected
        excess = measured.elementwise_excess
        agree = np.argmax(a, axis=-1) == np.argmax(e, axis=-1)
        agreement = float(agree.mean()) if agree.size else 1.0
        shape = measured.diff.shape
        bad = np.broadcast_to(~agree[..., None], shape) if agree.size else np.zeros(shape, dtype=bool)
        found = Finding(bad, excess, measured.worst(excess), {"top1_agreement": agreement})
        if agreement < self.top1:
            rows = int(np.prod(e.shape[:-1]))
            found.problem = (
                f"top-1 agreement {agreement:.3f} is below {self.top1:g}: "
                f"{round((1 - agreement) * rows)} of {rows} rows pick another class than eager"
            )
        return found


@dataclass(frozen=True)
class BudgetRule(ComparisonRule):
    """A reduced-precision output's accuracy budget (validators.budget). It is judged over the whole
    grid (validators.check): at one point it records its values and fails nothing."""

    budget: Budget | None
    rule: ClassVar[Rule] = Rule.BUDGET

    def judge(self, measured: Measured) -> Finding:
        excess = measured.elementwise_excess
        if self.budget is None:
            return Finding(measured.outside_tolerance, excess, measured.worst(excess))
        values = budget_values(measured.actual, measured.expected, self.budget.topk)
        bad = ~(measured.diff <= self.budget.max_abs * measured.scale) & ~measured.same
        measures = {
            "budget": self.budget.to_json(),
            "cosine_similarity": values.cosine,
            "snr_db": values.snr_db,
            "scaled_max_abs": values.max_abs,
            "topk_agreement": values.topk_agreement,
        }
        return Finding(bad, excess, measured.worst(excess), measures)


def rule_for(criterion: Criterion, measured: Measured) -> ComparisonRule:
    """The rule that judges: the criterion's, where it can (the noise rule needs a float64 reference,
    else the scaled rule judges; top-1 needs a class axis, else the numbers judge)."""
    rule = criterion.rule
    if rule == Rule.NOISE and measured.noise is None:
        rule = Rule.SCALED
    e = measured.expected
    classes = criterion.top1 is not None and e.ndim >= 1 and e.shape[-1] >= 2
    if rule == Rule.TOP1 and not classes:
        rule = Rule.NOISE if measured.noise is not None else Rule.SCALED
    if rule == Rule.TOP1 and criterion.top1 is not None:
        return Top1Rule(criterion.top1)
    if rule == Rule.BUDGET:
        return BudgetRule(criterion.budget)
    return {Rule.NOISE: NoiseRule, Rule.SCALED: ScaledRule}.get(rule, ToleranceRule)()
