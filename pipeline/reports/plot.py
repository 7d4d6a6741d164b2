"""One PNG per model: the distribution of |artifact − eager| per route and runtime."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from graphmint.pipeline.run.results import ModelResult
from graphmint.validators.results import ERROR_BINS

__all__ = ["error_plot_png", "layer_plot_png"]


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


def layer_plot_png(title: str, divergence: dict[str, Any]) -> bytes:
    """Each layer's error against eager, in the order the eager model finished them, as a multiple of
    the eager model's own error against float64 where known (else the max abs error); the first
    diverging layer marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layers = divergence["layers"]
    noise = all(layer["noise_multiple"] is not None for layer in layers)
    key = "noise_multiple" if noise else "max_abs_error"
    values = np.array([max(layer[key] or 0.0, 1e-12) for layer in layers])
    fig = Figure(figsize=(max(6.0, 0.28 * len(layers) + 2), 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = ["tab:blue" if layer["passed"] else "tab:red" for layer in layers]
    ax.bar(range(len(layers)), values, color=colors)
    ax.set_yscale("log")
    ax.set_xticks(range(len(layers)), [layer["layer"] for layer in layers], rotation=90, fontsize=6)
    ax.set_ylabel("error / eager's own error vs float64" if noise else "max |artifact − eager|")
    first = divergence.get("first")
    if first is not None:
        at = [layer["layer"] for layer in layers].index(first)
        ax.axvline(at, color="tab:red", linestyle="--", linewidth=1)
        ax.set_title(f"{title}: first diverging layer {first} (red: outside the rule)", fontsize=9)
    else:
        ax.set_title(f"{title}: every layer within the rule", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
