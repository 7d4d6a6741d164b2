"""One PNG per model: how far each route × runtime is from eager, one row each, and each route's
per-layer errors where a divergence was located."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from graphmint.pipeline.run.results import ModelResult, RouteResult
from graphmint.validators.results import ERROR_BINS, NUMBERED, ArtifactCheck, OutputComparison, Status
from graphmint.validators.tolerance import Rule

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ErrorRow", "error_figure", "error_plot_png", "error_rows", "layer_plot_png", "skipped_runtimes"]

#: a route's colour is its precision's
PRECISION_COLORS = {"fp32": "tab:blue", "fp16": "tab:orange", "int8": "tab:purple"}
#: the colour a row's label and status are written in
STATUS_COLORS = {
    Status.PASSED: "black",
    Status.FAILED: "tab:red",
    Status.ERROR: "tab:red",
    Status.UNSUPPORTED: "darkgoldenrod",
    Status.SKIPPED: "dimgray",
}
#: where rows without numbers are listed, below the numbered ones
_STATUS_ORDER = (Status.FAILED, Status.ERROR, Status.UNSUPPORTED, Status.SKIPPED, Status.PASSED)
#: the x axis: an "exact" band left of the first histogram edge, then the histogram's decades
_EXACT_X = 10.0 ** (ERROR_BINS[0] - 0.8)
_X_RANGE = (10.0 ** (ERROR_BINS[0] - 1.6), 10.0 ** ERROR_BINS[-1])
_REASON_CHARS = 110


@dataclass(frozen=True)
class ErrorRow:
    """One row of the plot: an artifact checked on one runtime (its numbers over the whole grid), or a
    route or runtime that produced no numbers (its status and reason)."""

    route: str
    #: the runtime that checked it; "" for a route that produced no artifact to check
    runner: str
    precision: str
    status: Status
    #: the largest |artifact − eager| over the grid; None where nothing ran
    worst: float | None = None
    #: what the worst output was judged against, in the same units where the rule has one: the budget's
    #: max abs × max|eager| (fp16, int8), atol (tolerance rules), or the noise limit (an RMSE against
    #: the float64 model, the noise rule's own scale)
    limit: float | None = None
    rule: str = ""
    #: the share of output elements per ERROR_BINS bin, over the grid
    fractions: tuple[float, ...] = ()
    reason: str = ""
    #: a cross-check runtime's failure that the route reports as a warning only
    excused: bool = False

    @property
    def label(self) -> str:
        return f"{self.route} / {self.runner}" if self.runner else self.route

    @property
    def numbered(self) -> bool:
        return self.worst is not None

    @property
    def exact(self) -> bool:
        """Below the histogram's first edge: an exact match, or as good as one."""
        return self.worst is not None and self.worst < 10.0 ** ERROR_BINS[0]


def _outputs(check: ArtifactCheck) -> list[OutputComparison]:
    return [o for p in check.points for o in p.outputs]


def _limit(output: OutputComparison) -> float | None:
    """The limit `output` was judged against, as an abs error where the rule gives one."""
    if output.rule == Rule.BUDGET and output.budget and output.scaled_max_abs and output.max_abs_error:
        return output.budget.max_abs * output.max_abs_error / output.scaled_max_abs
    if output.rule == Rule.NOISE and output.noise_limit is not None:
        return output.noise_limit
    if output.rule in (Rule.TOLERANCE, Rule.SCALED):
        return output.atol
    return None


def _check_row(route: RouteResult, check: ArtifactCheck) -> ErrorRow:
    outputs = [o for o in _outputs(check) if o.max_abs_error is not None]
    base: dict[str, Any] = {"route": route.route, "runner": check.runner, "precision": route.precision}
    if check.status not in NUMBERED or not outputs:
        return ErrorRow(**base, status=check.status, reason=check.reason)
    worst = max(outputs, key=lambda o: o.max_abs_error or 0.0)
    counts = np.sum([o.error_histogram for o in outputs if o.error_histogram], axis=0)
    total = float(np.sum(counts)) if np.ndim(counts) else 0.0
    return ErrorRow(
        **base,
        status=check.status,
        worst=worst.max_abs_error,
        limit=_limit(worst),
        rule=worst.rule,
        fractions=tuple(float(c) / total for c in counts) if total else (),
        reason=check.reason,
        excused=check.runner in route.excused,
    )


def error_rows(model: ModelResult) -> list[ErrorRow]:
    """Every route × runtime of `model` as a row, in the order the plot draws them from the top: those
    with numbers by worst error, largest first; then routes and runtimes without numbers, by status
    (failed, error, unsupported, skipped). A runtime skipped on a route that ran elsewhere (no GPU here)
    is left to `skipped_runtimes`."""
    rows = []
    for route in model.routes:
        if route.status not in NUMBERED or not route.checks:
            rows.append(ErrorRow(route.route, "", route.precision, route.status, reason=route.reason))
            continue
        rows.extend(_check_row(route, c) for c in route.checks if c.status != Status.SKIPPED)
    numbered = sorted((r for r in rows if r.numbered), key=lambda r: -(r.worst or 0.0))
    rest = sorted((r for r in rows if not r.numbered), key=lambda r: _STATUS_ORDER.index(r.status))
    return numbered + rest


def skipped_runtimes(model: ModelResult) -> dict[str, str]:
    """Runtimes skipped on routes that ran on others: runner → the first reason given."""
    skipped: dict[str, str] = {}
    for route in model.routes:
        if route.status in NUMBERED:
            for c in route.checks:
                if c.status == Status.SKIPPED:
                    skipped.setdefault(c.runner, c.reason)
    return skipped


def _shorten(text: str, chars: int = _REASON_CHARS) -> str:
    line = " ".join(text.split())
    return line if len(line) <= chars else line[: chars - 1] + "…"


def _value_label(row: ErrorRow) -> str:
    """The text right of a row: its worst error, its limit and rule, and its status."""
    if not row.numbered:
        return str(row.status)
    worst = "0 (exact)" if row.worst == 0 else f"{row.worst:.1e}"
    limit = f" / limit {row.limit:.1e} {row.rule}" if row.limit is not None else f" / {row.rule}"
    status = f"{row.status} (warning only)" if row.excused else str(row.status)
    return f"{worst}{limit}  {status}"


def _draw_row(ax: Any, y: float, row: ErrorRow) -> None:
    color = PRECISION_COLORS.get(row.precision, "tab:gray")
    if not row.numbered:
        text = f"{row.status}: {_shorten(row.reason) or 'no reason given'}"
        ax.text(_EXACT_X, y, text, va="center", fontsize=7, color=STATUS_COLORS[row.status], style="italic")
        return
    # the error distribution: each decade of the histogram shaded by the share of elements in it
    for k, share in enumerate(row.fractions):
        if share > 0:
            lo, hi = 10.0 ** ERROR_BINS[k], 10.0 ** ERROR_BINS[k + 1]
            ax.broken_barh([(lo, hi - lo)], (y - 0.3, 0.6), facecolors=color, alpha=0.1 + 0.45 * share)
    if row.limit is not None:
        ax.plot([row.limit] * 2, [y - 0.42, y + 0.42], color="black", linewidth=1.6, zorder=3)
    x = _EXACT_X if row.exact else row.worst
    if row.status == Status.FAILED:
        ax.scatter([x], [y], marker="X", s=90, color=color, edgecolors="tab:red", linewidths=1.5, zorder=4)
    else:
        ax.scatter([x], [y], marker="o", s=42, color=color, edgecolors="black", linewidths=0.6, zorder=4)


def _legend(fig: Figure, rows: list[ErrorRow]) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    present = [p for p in PRECISION_COLORS if any(r.precision == p and r.numbered for r in rows)]
    handles: list[Any] = [
        Line2D([], [], marker="o", linestyle="", color=PRECISION_COLORS[p], markeredgecolor="black", label=p)
        for p in present
    ]
    if any(r.status == Status.FAILED and r.numbered for r in rows):
        handles.append(
            Line2D([], [], marker="X", linestyle="", color="white", markeredgecolor="tab:red", label="failed")
        )
    if any(r.limit is not None for r in rows):
        handles.append(Line2D([], [], marker="|", linestyle="", color="black", markersize=12, label="limit"))
    handles.append(Patch(facecolor="tab:gray", alpha=0.4, label="share of elements per decade"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)


def error_figure(model: ModelResult) -> Figure | None:
    """The plot of `error_rows`: one row per route × runtime, worst error at the top; a dot at the
    row's largest |artifact − eager| over the grid (log axis; exact matches in the band at the left),
    coloured by precision, a cross for a failed one; the limit it was judged against as a tick; the
    shares of its elements per decade of error shaded behind it; rows without numbers with their
    status and reason. None where no route produced numbers."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = error_rows(model)
    if not any(r.numbered for r in rows):
        return None
    fig = Figure(figsize=(11, 1.9 + 0.3 * len(rows)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ys = [len(rows) - 1 - i for i in range(len(rows))]
    for y, row in zip(ys, rows, strict=True):
        if y % 2:
            ax.axhspan(y - 0.5, y + 0.5, color="0.95", zorder=0)
        _draw_row(ax, y, row)
    ax.set_xscale("log")
    ax.set_xlim(*_X_RANGE)
    ax.set_ylim(-0.5, len(rows) - 0.5)
    ax.axvspan(_X_RANGE[0], 10.0 ** ERROR_BINS[0], color="tab:green", alpha=0.08, zorder=0)
    decades = [10.0**e for e in ERROR_BINS[::2]]
    ax.set_xticks([_EXACT_X, *decades], ["exact", *(f"1e{e:g}" for e in ERROR_BINS[::2])], fontsize=8)
    ax.set_yticks(ys, [r.label for r in rows], fontsize=8)
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(ys, [_value_label(r) for r in rows], fontsize=7)
    for labels in (ax.get_yticklabels(), right.get_yticklabels()):
        for label, row in zip(labels, rows, strict=True):
            label.set_color(STATUS_COLORS[row.status])
    numbered = sum(r.numbered for r in rows)
    if numbered < len(rows):
        ax.axhline(len(rows) - numbered - 0.5, color="0.5", linewidth=0.8)
    ax.grid(alpha=0.3, axis="x", which="major")
    xlabel = (
        "max |artifact − eager| over the grid (log); histogram's first decade: below 1e-11, exact included"
    )
    skipped = skipped_runtimes(model)
    if skipped:
        first = _shorten(next(iter(skipped.values())), 70)
        xlabel += f"\nnot run here: {', '.join(sorted(skipped))} ({first})"
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_title(f"{model.name}: each route × runtime against eager, farthest first", fontsize=10)
    _legend(fig, rows)
    return fig


def error_plot_png(model: ModelResult) -> bytes | None:
    """`error_figure` as PNG bytes, or None when no route produced numbers."""
    fig = error_figure(model)
    if fig is None:
        return None
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
