"""Judge each form of the step, step by step, against the float64 reference: the first divergence.

The noise rule of inference (validators.tolerance), applied per step to every quantity: the loss, each
parameter's gradient norm, and each parameter and float buffer after the update. A form's error
against the float64 run (RMSE) must stay within `multiplier` times the eager float32 step's own error
against it (the largest so far: one step's may be small by chance), plus a floor of a tenth of
float32's tolerance at the quantity's scale. Training compounds rounding over the steps; the bound
grows with it, since eager's own error grows the same way.
Where no float64 run could be made, each form is held to eager float32 with float32's tolerance at the
quantity's scale (the `scaled` rule).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphmint.pipeline.train.steps import Trace
from graphmint.validators.results import Status
from graphmint.validators.tolerance import DEFAULT_TOLERANCES, Criterion, Rule

__all__ = ["Divergence", "FormResult", "StepCheck", "judge"]

_FLOAT32 = DEFAULT_TOLERANCES["float32"]
_GRADIENT = "gradient norm of "


@dataclass
class StepCheck:
    """One step of one form: its loss, and its worst quantity's error against its bound."""

    step: int
    loss: float
    worst: str
    error: float
    bound: float

    @property
    def ratio(self) -> float:
        if not np.isfinite(self.error):  # NaN or Inf: as far out as it gets
            return float("inf")
        return self.error / self.bound if self.bound > 0 else (0.0 if self.error == 0 else float("inf"))

    @property
    def passed(self) -> bool:
        return bool(self.error <= self.bound)  # a NaN error is no pass


@dataclass
class Divergence:
    """Where a form first left its bound: the step (from 1) and the quantity (a parameter's name)."""

    step: int
    quantity: str
    error: float
    bound: float

    @property
    def parameter(self) -> str:
        """The parameter (or buffer) the quantity belongs to; "" for the loss."""
        return "" if self.quantity == "loss" else self.quantity.removeprefix(_GRADIENT)

    def line(self) -> str:
        return (
            f"diverges at step {self.step} in {self.quantity}: error {self.error:.3g} against a bound "
            f"of {self.bound:.3g}"
        )


@dataclass
class FormResult:
    form: str
    status: Status
    reason: str = ""
    seconds: float = 0.0
    steps: list[StepCheck] = field(default_factory=list)
    divergence: Divergence | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "status": str(self.status),
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "divergence": None
            if self.divergence is None
            else {**vars(self.divergence), "parameter": self.divergence.parameter},
            "steps": [{**vars(s), "ratio": s.ratio} for s in self.steps],
        }


def _rms(a: np.ndarray | float) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(a, dtype=np.float64))))) if np.size(a) else 0.0


def _quantities(trace: Trace, step: int) -> Iterator[tuple[str, np.ndarray]]:
    yield "loss", np.asarray(trace.loss[step])
    for name, value in trace.grad_norms[step].items():
        yield f"{_GRADIENT}{name}", np.asarray(value)
    yield from trace.state[step].items()


def _bound(
    form: np.ndarray, eager: np.ndarray, reference: np.ndarray | None, noise_so_far: float
) -> tuple[float, float, float]:
    """(error, bound, eager's noise so far) of one quantity at one step. The noise is the largest of
    eager's own errors up to this step: one step's may be small by chance (a scalar's is one sample)."""
    if reference is None:  # the scaled rule against eager float32
        error = float(np.max(np.abs(form.astype(np.float64) - eager))) if form.size else 0.0
        return error, _FLOAT32.atol + _FLOAT32.rtol * float(np.max(np.abs(eager), initial=0.0)), 0.0
    multiplier = Criterion(Rule.NOISE, _FLOAT32).multiplier_for(form.size)
    noise = max(noise_so_far, _rms(eager.astype(np.float64) - reference))
    floor = _FLOAT32.atol / 10 + _FLOAT32.rtol / 10 * _rms(reference)
    return _rms(form.astype(np.float64) - reference), multiplier * noise + floor, noise


def judge(form: Trace, eager: Trace, reference: Trace | None) -> FormResult:
    """The form's verdict: every step within its bound, or the first step and quantity that is not."""
    result = FormResult(form.form, Status.PASSED, seconds=form.seconds)
    if form.error:
        result.status, result.reason = Status.ERROR, form.error
        return result
    noise: dict[str, float] = {}
    for step in range(len(eager.loss)):
        eager_values = dict(_quantities(eager, step))
        reference_values = dict(_quantities(reference, step)) if reference is not None else {}
        checks: list[StepCheck] = []
        for name, value in _quantities(form, step):
            if name not in eager_values or value.shape != eager_values[name].shape:
                result.status = Status.FAILED
                result.reason = f"step {step + 1}: {name} is not what the eager step has"
                return result
            error, bound, noise[name] = _bound(
                value, eager_values[name], reference_values.get(name), noise.get(name, 0.0)
            )
            checks.append(StepCheck(step + 1, float(form.loss[step]), name, error, bound))
        worst = max(checks, key=lambda c: c.ratio)
        result.steps.append(worst)
        failing = [c for c in checks if not c.passed]
        if failing and result.divergence is None:  # named by the parameter that is furthest out
            named = max([c for c in failing if c.worst != "loss"] or failing, key=lambda c: c.ratio)
            result.status = Status.FAILED
            result.divergence = Divergence(named.step, named.worst, named.error, named.bound)
            result.reason = result.divergence.line()
    return result
