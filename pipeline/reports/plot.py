"""One PNG per model: the distribution of |artifact − eager| per route and runtime."""

from __future__ import annotations

import io

import numpy as np

from graphmint.pipeline.run.results import ModelResult
from graphmint.validators.results import ERROR_BINS

__all__ = ["error_plot_png"]


def _histogram(check: object) -> np.ndarray | None:
    rows = [o.error_histogram for p in check.points for o in p.outputs if o.error_histogram]  # type: ignore[attr-defined]
    return np.sum(rows, axis=0) if rows else None


def error_plot_png(model: ModelResult) -> bytes | None:
    """PNG bytes, or None when no route produced numbers. Uses matplotlib's Agg canvas directly."""
    series = [
        (f"{r.route} / {c.runner}", h)
        for r in model.routes
        for c in r.checks
        if (h := _histogram(c)) is not None and h.sum() > 0
    ]
    if not series:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    centers = np.array(ERROR_BINS[:-1]) + 0.5
    for label, counts in series:
        ax.step(centers, counts / counts.sum(), where="mid", label=label)
    ax.set_xlabel("log10 |artifact − eager| (first bin: exact or below 1e-12)")
    ax.set_ylabel("fraction of output elements")
    ax.set_title(f"{model.name}: error distribution per route / runtime")
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
