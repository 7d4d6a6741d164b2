"""Comparison of one output against its eager reference, judged by the output's rule (validators.rules)."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphmint.validators.budget import budget_values
from graphmint.validators.results import ERROR_BINS, OutputComparison
from graphmint.validators.rules import Finding, Measured, rms, rmse, rule_for
from graphmint.validators.tolerance import Criterion, Rule, Tolerance

__all__ = ["compare_output", "rms", "rmse"]


def compare_output(
    name: str,
    actual: np.ndarray,
    expected: np.ndarray,
    judge: Criterion | Tolerance,
    float64: np.ndarray | None = None,
) -> OutputComparison:
    """Pass when shapes and dtypes agree, nothing is NaN/Inf that eager has finite, and the rule holds.

    `float64` is the output of a float64 copy of the model on the same inputs: with it the noise rule
    judges; without it, the noise rule falls back to the scaled one. Every comparison records the
    elementwise tolerance verdict, and the float64 errors where there is a reference.
    """
    criterion = judge if isinstance(judge, Criterion) else Criterion(Rule.TOLERANCE, judge)
    tol = criterion.tolerance
    head: dict[str, Any] = {
        "name": name,
        "dtype": str(actual.dtype),
        "expected_dtype": str(expected.dtype),
        "shape": list(actual.shape),
        "expected_shape": list(expected.shape),
        "atol": tol.atol,
        "rtol": tol.rtol,
    }
    if actual.shape != expected.shape:
        message = f"output {name!r} has shape {list(actual.shape)}, eager gives {list(expected.shape)}"
        return OutputComparison(**head, message=message)
    measured = Measured.of(actual, expected, criterion, float64)
    rule = rule_for(criterion, measured)
    found = rule.judge(measured)
    values = {**_common(measured, found), **found.values}
    problems = []
    if actual.dtype != expected.dtype:
        problems.append(f"dtype {actual.dtype} where eager gives {expected.dtype}")
    if values["nan_count"] or values["inf_count"]:
        also = " (the expected output has them too)" if not np.isfinite(measured.expected).all() else ""
        problems.append(f"{values['nan_count']} NaN and {values['inf_count']} Inf values{also}")
    if found.problem:
        problems.append(found.problem)
    if expected.dtype.kind == "f" and actual.dtype.kind == "f" and "snr_db" not in found.values:
        values["snr_db"] = budget_values(measured.actual, measured.expected, 0).snr_db  # for bench
    return OutputComparison(
        **head,
        **values,
        rule=str(rule.rule),
        passed=not problems,
        message=f"output {name!r}: " + "; ".join(problems) if problems else "",
    )


def _common(m: Measured, found: Finding) -> dict[str, Any]:
    """What every comparison records whatever its rule: the errors, the elementwise verdict, the
    float64 reference's errors, and where the rule's worst element lies."""
    a, e, diff, finite = m.actual, m.expected, m.diff, m.finite
    values: dict[str, Any] = {
        "nan_count": int(np.isnan(a).sum()),
        "inf_count": int(np.isinf(a).sum()),
        "max_abs_error": m.max_abs_error,
        "max_rel_error": m.max_rel_error,
        "within_tolerance": not m.outside_tolerance.any(),
        "mismatch_fraction": found.mismatch_fraction,
    }
    if m.noise is not None:
        values |= {"float64_error": m.noise.error, "eager_float64_error": m.noise.eager_error}
        values |= {"noise_limit": m.noise.limit, "noise_multiple": m.noise.multiple}
    if finite.any():
        values["mean_abs_error"] = float(diff[finite].mean())
        worst = found.worst
        assert worst is not None
        values |= {"worst_index": worst.index, "worst_actual": worst.actual, "worst_expected": worst.expected}
        if m.float64 is not None:
            values["worst_float64"] = worst.float64
        both = finite & np.isfinite(a) & np.isfinite(e)
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: the check below drops them
            na, ne = np.linalg.norm(a[both]), np.linalg.norm(e[both])
        if 0 < na < np.inf and 0 < ne < np.inf:
            values["cosine_similarity"] = float(np.dot(a[both] / na, e[both] / ne))
        logs = np.log10(np.maximum(diff[finite], 10.0 ** ERROR_BINS[0]))
        edges = np.array([*ERROR_BINS[:-1], np.inf])
        values["error_histogram"] = [int(n) for n in np.histogram(np.minimum(logs, ERROR_BINS[-1]), edges)[0]]
    return values
