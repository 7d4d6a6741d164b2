"""Console summary table over run results."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.results import ModelResult

__all__ = ["summary_table"]


def _err(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def summary_table(results: Sequence[ModelResult], width: int = 70) -> str:
    """model × route table with status, exporter fallback, errors and time; reasons below it."""
    header = ("model", "route", "status", "max abs", "max rel", "time")
    rows = []
    notes = []
    for model in results:
        for r in model.routes:
            status = r.status + ("*" if r.rejected and r.status == "passed" else "")
            rows.append(
                (
                    model.name,
                    r.route,
                    status,
                    _err(r.max_abs_error),
                    _err(r.max_rel_error),
                    f"{r.seconds:.1f}s",
                )
            )
            if r.reason:
                text = r.reason if len(r.reason) <= width * 3 else r.reason[: width * 3 - 1] + "…"
                notes.append(f"- {model.name} × {r.route}: {text}")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts: dict[str, int] = {}
    for model in results:
        for r in model.routes:
            counts[r.status] = counts.get(r.status, 0) + 1
    lines.append("")
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()) or "no routes ran")
    if any(r.rejected and r.status == "passed" for m in results for r in m.routes):
        lines.append("* passed with a fallback exporter")
    return "\n".join([*lines, "", *notes] if notes else lines)
