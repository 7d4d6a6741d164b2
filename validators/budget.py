"""Accuracy budgets of reduced-precision artifacts (fp16, int8), as data.

A float32 artifact is held to the eager model's own rounding noise (validators.tolerance); an fp16
or int8 artifact cannot be: it is held instead to a budget of how much it may part from eager, in
measures that mean the same at any output scale:

- `cosine`: the cosine similarity of the output with eager's, at least this;
- `snr_db`: the signal-to-noise ratio, 10·log10(Σ eager² / Σ (artifact − eager)²), at least this (dB;
  exporters.snr);
- `max_abs`: the largest |artifact − eager| as a fraction of max|eager|, at most this;
- `topk` / `topk_agreement`: for classifier outputs, the share of rows whose eager arg-max class is
  among the artifact's `topk` largest, at least `topk_agreement` (gated only where set).

Defaults per precision (`DEFAULT_BUDGETS`), overridden per model, route, output and route+output in
config (`[models.budget]`), as tolerances are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from graphmint.exporters.base import Precision
from graphmint.exporters.snr import SNR_EXACT_DB, snr_db

__all__ = [
    "BUDGET_KEYS",
    "DEFAULT_BUDGETS",
    "SNR_EXACT_DB",
    "Budget",
    "BudgetPolicy",
    "BudgetValues",
    "Precision",
    "budget_values",
    "pooled_budget_values",
]


@dataclass(frozen=True)
class Budget:
    """What a reduced-precision output must reach against eager (see the module's text)."""

    cosine: float
    snr_db: float
    max_abs: float
    topk: int = 1
    topk_agreement: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


#: the budget keys a config table may set
BUDGET_KEYS = ("cosine", "snr_db", "max_abs", "topk", "topk_agreement")

#: fp16 keeps ~3.3 decimal digits: an output within 1% of its scale and 40 dB; bf16 keeps float32's
#: exponent but 8 significant bits (fp16 11): each rounding is 8x coarser than fp16's, 18 dB less SNR
#: for the same graph, so 30 dB (fp16's typical ~55 dB, less 18, with margin) and 4%; int8's 256
#: levels per tensor leave ~1/100 of a tensor's range per step, compounded over the layers: 20 dB, 15%
DEFAULT_BUDGETS: Mapping[Precision, Budget] = {
    Precision.FP16: Budget(cosine=0.9999, snr_db=40.0, max_abs=0.01),
    Precision.BF16: Budget(cosine=0.999, snr_db=30.0, max_abs=0.04),
    Precision.INT8: Budget(cosine=0.99, snr_db=20.0, max_abs=0.15),
}


@dataclass(frozen=True)
class BudgetPolicy:
    """Resolves the budget of one output of one route: route+output, output, route, model, then the
    precision's default; a partial table keeps the other keys from the level below."""

    model: Mapping[str, float] = field(default_factory=dict)
    routes: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    outputs: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    route_outputs: Mapping[tuple[str, str], Mapping[str, float]] = field(default_factory=dict)
    defaults: Mapping[Precision, Budget] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))

    def resolve(self, route: str, output: str, precision: Precision) -> Budget:
        values: dict[str, Any] = asdict(self.defaults[precision])
        for layer in (
            self.model,
            self.routes.get(route, {}),
            self.outputs.get(output, {}),
            self.route_outputs.get((route, output), {}),
        ):
            values.update(layer)
        values["topk"] = int(values["topk"])
        return Budget(**values)


@dataclass
class BudgetValues:
    """What one output reached: the measures a budget judges (None where they do not apply)."""

    cosine: float | None
    snr_db: float | None
    max_abs: float | None
    topk_agreement: float | None = None
    #: elements that are NaN or Inf where eager's are finite (none may be)
    nonfinite: int = 0

    def to_json(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def misses(self, budget: Budget) -> list[str]:
        """What falls short of `budget`, one phrase each ([] when it holds)."""
        out = []
        if self.nonfinite:
            out.append(f"{self.nonfinite} NaN or Inf values where eager's are finite")
        if self.cosine is not None and self.cosine < budget.cosine:
            out.append(f"cosine similarity {self.cosine:.6f} is below {budget.cosine:g}")
        if self.snr_db is not None and self.snr_db < budget.snr_db:
            out.append(f"SNR {self.snr_db:.1f} dB is below {budget.snr_db:g} dB")
        if self.max_abs is not None and self.max_abs > budget.max_abs:
            out.append(f"max abs error {self.max_abs:.3g} x max|eager| is over {budget.max_abs:g}")
        if (
            budget.topk_agreement is not None
            and self.topk_agreement is not None
            and self.topk_agreement < budget.topk_agreement
        ):
            out.append(
                f"top-{budget.topk} agreement {self.topk_agreement:.3f} is below {budget.topk_agreement:g}"
            )
        return out


def budget_values(actual: np.ndarray, expected: np.ndarray, topk: int = 1) -> BudgetValues:
    """The budget's measures of `actual` against `expected` (float64 inside; finite elements only);
    `topk` 0 skips the top-k agreement."""
    a = actual.astype(np.float64).ravel()
    e = expected.astype(np.float64).ravel()
    keep = np.isfinite(a) & np.isfinite(e)
    nonfinite = int(np.sum(~np.isfinite(a) & np.isfinite(e)))
    a, e = a[keep], e[keep]
    if a.size == 0:
        return BudgetValues(None, None, None, nonfinite=nonfinite)
    # SNR and cosine do not depend on scale: measured on values scaled to at most 1, so that outputs
    # near float64's range do not overflow their squares
    scale = float(np.max(np.abs(e)))
    unit = max(scale, float(np.max(np.abs(a))))
    a1, e1 = (a / unit, e / unit) if unit > 0 else (a, e)
    snr = snr_db(e, a)  # the retries of exporters._onnx_precision and tflite_reduced measure it too
    na, ne = float(np.linalg.norm(a1)), float(np.linalg.norm(e1))
    cosine = float(np.dot(a1, e1) / (na * ne)) if na > 0 and ne > 0 else (1.0 if na == ne else 0.0)
    with np.errstate(over="ignore"):  # |a - e| past float64's range: an infinite error
        worst = float(np.max(np.abs(a - e)))
    max_abs = worst / scale if scale > 0 else (0.0 if worst == 0 else float("inf"))
    agreement = None
    if topk and expected.ndim >= 2 and expected.shape[-1] >= 2 and actual.shape == expected.shape:
        k = min(topk, expected.shape[-1])
        rows_a = actual.reshape(-1, actual.shape[-1])
        rows_e = expected.reshape(-1, expected.shape[-1])
        top = np.argsort(-rows_a, axis=-1, kind="stable")[:, :k]
        agreement = float(np.mean(np.any(top == np.argmax(rows_e, axis=-1)[:, None], axis=-1)))
    return BudgetValues(cosine, float(snr), max_abs, agreement, nonfinite)


def pooled_budget_values(pairs: Sequence[tuple[np.ndarray, np.ndarray]], topk: int = 1) -> BudgetValues:
    """The budget's measures over many (actual, expected) pairs at once (an output over a grid):
    every pair's rows together, so the class axis keeps its meaning for top-k."""

    def rows(x: np.ndarray) -> np.ndarray:
        return x.reshape(-1, x.shape[-1])

    widths = {e.shape[-1] if e.ndim >= 2 else None for _, e in pairs}
    if len(widths) == 1 and None not in widths:
        return budget_values(
            np.concatenate([rows(a) for a, _ in pairs]), np.concatenate([rows(e) for _, e in pairs]), topk
        )
    flat = budget_values(
        np.concatenate([a.ravel() for a, _ in pairs]), np.concatenate([e.ravel() for _, e in pairs])
    )
    flat.topk_agreement = None
    return flat
