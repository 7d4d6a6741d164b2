"""Comparison of one output against its eager reference, judged by the output's rule (see tolerance)."""

from __future__ import annotations

import numpy as np

from graphmint.validators.budget import budget_values
from graphmint.validators.results import ERROR_BINS, OutputComparison
from graphmint.validators.tolerance import Criterion, Rule, Tolerance

__all__ = ["compare_output", "rms", "rmse"]

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
    result = OutputComparison(
        name=name,
        dtype=str(actual.dtype),
        expected_dtype=str(expected.dtype),
        shape=list(actual.shape),
        expected_shape=list(expected.shape),
        atol=tol.atol,
        rtol=tol.rtol,
    )
    if actual.shape != expected.shape:
        result.message = f"output {name!r} has shape {list(actual.shape)}, eager gives {list(expected.shape)}"
        return result
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    rule = criterion.rule
    usable = float64 is not None and float64.shape == expected.shape and e.dtype.kind == "f"
    if rule == Rule.NOISE and not usable:
        rule = Rule.SCALED
    classes = criterion.top1 is not None and e.ndim >= 1 and e.shape[-1] >= 2
    if rule == Rule.TOP1 and not classes:
        rule = Rule.NOISE if usable else Rule.SCALED  # no class axis: the numbers judge
    result.rule = str(rule)
    if a.dtype.kind in "fc":
        result.nan_count = int(np.isnan(a).sum())
        result.inf_count = int(np.isinf(a).sum())
    diff = np.abs(a - e)
    finite = np.isfinite(diff)
    result.max_abs_error = float(diff[finite].max()) if finite.any() else (0.0 if diff.size == 0 else None)
    # relative to each element, but never to less than float32's resolution at the output's scale: an
    # exact zero in eager's output would otherwise divide a rounding error into 1e+300
    scale = float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0))
    rel = diff / np.maximum(np.abs(e), max(_REL_FLOOR * scale, _TINY))
    result.max_rel_error = float(rel[finite].max()) if finite.any() else result.max_abs_error
    same = (a == e) | (np.isnan(a) & np.isnan(e))  # the same non-finite value on both sides is equal
    bad_elementwise = ~(diff <= tol.atol + tol.rtol * np.abs(e)) & ~same
    result.within_tolerance = not bad_elementwise.any()
    excess = diff - (tol.atol + tol.rtol * np.abs(e))
    if rule == Rule.SCALED:
        scale = float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0))
        limit = tol.atol + tol.rtol * scale
        bad = ~(diff <= limit) & ~same
        excess = diff - limit
    else:
        bad = bad_elementwise
    if usable and float64 is not None:
        r = float64.astype(np.float64)
        result.float64_error, result.eager_float64_error = rmse(a, r), rmse(e, r)
        multiplier = criterion.multiplier_for(r.size)
        floor = (tol.atol + tol.rtol * rms(r)) / 10
        result.noise_limit = multiplier * result.eager_float64_error + floor
        if result.eager_float64_error > 0:
            result.noise_multiple = result.float64_error / result.eager_float64_error
        if rule == Rule.NOISE:
            excess = np.abs(a - r) - multiplier * np.abs(e - r)
            bad = (excess > floor) & ~same
            if result.float64_error <= result.noise_limit:
                bad[...] = False
    if finite.any():
        result.mean_abs_error = float(diff[finite].mean())
        # the element named is the one that breaks the judging rule by most, not merely the largest error
        worst = np.unravel_index(int(np.argmax(np.where(np.isfinite(excess), excess, -np.inf))), diff.shape)
        result.worst_index = [int(i) for i in worst]
        result.worst_actual, result.worst_expected = float(a[worst]), float(e[worst])
        if usable and float64 is not None:
            result.worst_float64 = float(float64[worst])
        both = finite & np.isfinite(a) & np.isfinite(e)
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: the check below drops them
            na, ne = np.linalg.norm(a[both]), np.linalg.norm(e[both])
        if 0 < na < np.inf and 0 < ne < np.inf:
            result.cosine_similarity = float(np.dot(a[both] / na, e[both] / ne))
        logs = np.log10(np.maximum(diff[finite], 10.0 ** ERROR_BINS[0]))
        edges = np.array([*ERROR_BINS[:-1], np.inf])
        result.error_histogram = [int(n) for n in np.histogram(np.minimum(logs, ERROR_BINS[-1]), edges)[0]]
    if rule == Rule.TOP1 and criterion.top1 is not None:
        agree = np.argmax(a, axis=-1) == np.argmax(e, axis=-1)
        result.top1_agreement = float(agree.mean()) if agree.size else 1.0
        bad = np.broadcast_to(~agree[..., None], bad.shape) if agree.size else bad & False
    if (
        expected.dtype.kind == "f" and actual.dtype.kind == "f"
    ):  # every float output's SNR, for bench's accuracy
        result.snr_db = budget_values(a, e, 0).snr_db
    if rule == Rule.BUDGET and criterion.budget is not None:
        budget = criterion.budget
        values = budget_values(a, e, budget.topk)
        result.budget = budget.to_json()
        result.cosine_similarity, result.snr_db = values.cosine, values.snr_db
        result.scaled_max_abs, result.topk_agreement = values.max_abs, values.topk_agreement
        scale = float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0))
        bad = ~(diff <= budget.max_abs * scale) & ~same
    result.mismatch_fraction = float(bad.mean()) if bad.size else 0.0
    problems = []
    if actual.dtype != expected.dtype:
        problems.append(f"dtype {actual.dtype} where eager gives {expected.dtype}")
    if result.nan_count or result.inf_count:
        also = " (the expected output has them too)" if not np.isfinite(e).all() else ""
        problems.append(f"{result.nan_count} NaN and {result.inf_count} Inf values{also}")
    if rule == Rule.TOP1 and criterion.top1 is not None and result.top1_agreement is not None:
        if result.top1_agreement < criterion.top1:
            rows = int(np.prod(e.shape[:-1]))
            problems.append(
                f"top-1 agreement {result.top1_agreement:.3f} is below {criterion.top1:g}: "
                f"{round((1 - result.top1_agreement) * rows)} of {rows} rows pick another class than eager"
            )
    elif rule == Rule.BUDGET:
        pass  # judged over the whole grid (validators.check), this point's values are for the report
    elif bad.any() or (rule == Rule.NOISE and not result.float64_error <= (result.noise_limit or 0.0)):
        problems.append(_mismatch(result, rule, int(bad.sum()), bad.size))
    result.passed = not problems
    result.message = f"output {name!r}: " + "; ".join(problems) if problems else ""
    return result


def _mismatch(result: OutputComparison, rule: Rule, count: int, size: int) -> str:
    worst = (
        f"max abs error {result.max_abs_error:.3g}, max rel error {result.max_rel_error:.3g}, worst at "
        f"{result.worst_index}: {result.worst_actual:.6g} vs eager {result.worst_expected:.6g}"
    )
    if rule == Rule.NOISE:
        assert result.eager_float64_error is not None and result.noise_limit is not None
        multiple = f"{result.noise_multiple:.3g}x" if result.noise_multiple is not None else "above"
        return (
            f"error against the float64 model (RMSE) {result.float64_error:.3g} is {multiple} the eager "
            f"model's own ({result.eager_float64_error:.3g}), over the noise limit {result.noise_limit:.3g}; "
            f"{worst} (float64 {result.worst_float64:.6g})"
        )
    scaled = " x max|eager|" if rule == Rule.SCALED else ""
    return (
        f"{count} of {size} elements ({result.mismatch_fraction:.2%}) outside "
        f"atol={result.atol:g} rtol={result.rtol:g}{scaled}; {worst}"
    )
