"""The signal-to-noise ratio of an output against its reference: the one measure that both the accuracy
budget of a reduced-precision artifact (validators.budget) and the retries that keep a reduced file's
worst layers in float (exporters._onnx_precision, exporters.tflite_reduced) take.

SNR = 10·log10(Σ expected² / Σ (actual − expected)²) in dB, in float64, on values divided by the
largest magnitude of either side (a ratio does not depend on scale; outputs near float64's range do not
overflow their squares); an exact match is SNR_EXACT_DB, and no SNR exceeds it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["SNR_EXACT_DB", "snr_db"]

#: the SNR recorded for an exact match (finite, so that JSON holds it; float64's own rounding is ~300 dB)
SNR_EXACT_DB = 300.0

Arrays = np.ndarray | Sequence[np.ndarray]


def _arrays(x: Arrays) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float64) for a in ([x] if isinstance(x, np.ndarray) else x)]


def snr_db(expected: Arrays, actual: Arrays) -> float:
    """The SNR (dB) of `actual` against `expected`, over all their elements (arrays pairwise where
    they are sequences); -inf where a pair's shapes differ, where either side holds a NaN or an Inf,
    or where `expected` is all zeros and `actual` is not."""
    left, right = _arrays(expected), _arrays(actual)
    if len(left) != len(right) or any(x.shape != y.shape for x, y in zip(left, right, strict=True)):
        return -math.inf
    e = np.concatenate([x.ravel() for x in left]) if left else np.zeros(0)
    a = np.concatenate([y.ravel() for y in right]) if right else np.zeros(0)
    if not (np.isfinite(e).all() and np.isfinite(a).all()):
        return -math.inf
    if e.size == 0:
        return SNR_EXACT_DB
    unit = max(float(np.max(np.abs(e))), float(np.max(np.abs(a))))
    a1, e1 = (a / unit, e / unit) if unit > 0 else (a, e)
    noise, signal = float(np.sum((a1 - e1) ** 2)), float(np.sum(e1**2))
    snr = SNR_EXACT_DB if noise == 0 else (10 * np.log10(signal / noise) if signal > 0 else float("-inf"))
    return min(float(snr), SNR_EXACT_DB)
