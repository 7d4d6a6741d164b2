"""Elementwise comparison of one output against its eager reference."""

from __future__ import annotations

import numpy as np

from graphmint.validators.results import ERROR_BINS, OutputComparison
from graphmint.validators.tolerance import Tolerance

__all__ = ["compare_output"]

_TINY = np.finfo(np.float64).tiny


def compare_output(name: str, actual: np.ndarray, expected: np.ndarray, tol: Tolerance) -> OutputComparison:
    """Pass when shapes and dtypes agree, nothing is NaN/Inf, and |a-e| <= atol + rtol*|e| everywhere."""
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
    if a.dtype.kind in "fc":
        result.nan_count = int(np.isnan(a).sum())
        result.inf_count = int(np.isinf(a).sum())
    diff = np.abs(a - e)
    finite = np.isfinite(diff)
    result.max_abs_error = float(diff[finite].max()) if finite.any() else (0.0 if diff.size == 0 else None)
    rel = diff / np.maximum(np.abs(e), _TINY)
    result.max_rel_error = float(rel[finite].max()) if finite.any() else result.max_abs_error
    if finite.any():
        result.mean_abs_error = float(diff[finite].mean())
        worst = np.unravel_index(int(np.argmax(np.where(finite, diff, -1.0))), diff.shape)
        result.worst_index = [int(i) for i in worst]
        result.worst_actual, result.worst_expected = float(a[worst]), float(e[worst])
        both = finite & np.isfinite(a) & np.isfinite(e)
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: the check below drops them
            na, ne = np.linalg.norm(a[both]), np.linalg.norm(e[both])
        if 0 < na < np.inf and 0 < ne < np.inf:
            result.cosine_similarity = float(np.dot(a[both] / na, e[both] / ne))
        logs = np.log10(np.maximum(diff[finite], 10.0 ** ERROR_BINS[0]))
        edges = np.array([*ERROR_BINS[:-1], np.inf])
        result.error_histogram = [int(n) for n in np.histogram(np.minimum(logs, ERROR_BINS[-1]), edges)[0]]
    bad = ~(diff <= tol.atol + tol.rtol * np.abs(e))
    # the same non-finite value on both sides (e.g. -inf in a mask) counts as equal
    bad &= ~((a == e) | (np.isnan(a) & np.isnan(e)))
    result.mismatch_fraction = float(bad.mean()) if bad.size else 0.0
    problems = []
    if actual.dtype != expected.dtype:
        problems.append(f"dtype {actual.dtype} where eager gives {expected.dtype}")
    if result.nan_count or result.inf_count:
        also = " (the expected output has them too)" if not np.isfinite(e).all() else ""
        problems.append(f"{result.nan_count} NaN and {result.inf_count} Inf values{also}")
    if bad.any():
        problems.append(
            f"{int(bad.sum())} of {bad.size} elements ({result.mismatch_fraction:.2%}) outside "
            f"atol={tol.atol:g} rtol={tol.rtol:g}; max abs error {result.max_abs_error:.3g}, "
            f"max rel error {result.max_rel_error:.3g}, worst at {result.worst_index}: "
            f"{result.worst_actual:.6g} vs eager {result.worst_expected:.6g}"
        )
    result.passed = not problems
    result.message = f"output {name!r}: " + "; ".join(problems) if problems else ""
    return result
