"""Console tables over run and validation results."""

from __future__ import annotations

from collections.abc import Sequence

from graphmint.pipeline.run.results import ModelResult, RouteResult
from graphmint.pipeline.validate import FolderValidation
from graphmint.validators.results import NUMBERED, Status

__all__ = ["summary_table", "validation_table"]

NOTE_WIDTH = 210


def _err(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _counts(statuses: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "nothing ran"


def _note(where: str, route: RouteResult) -> str:
    text = route.reason if len(route.reason) <= NOTE_WIDTH else route.reason[: NOTE_WIDTH - 1] + "…"
    return f"- {where} × {route.route}: {text}"


def judged(route: RouteResult) -> str:
    """How the route's outputs were judged: its error against float64 as a multiple of the eager model's
    own (noise rule), or the rule's name."""
    if route.status not in NUMBERED or route.check is None:
        return "-"
    check = route.check
    multiple = check.worst("noise_multiple")
    if check.rule == "noise" and multiple is not None:
        return f"{multiple:.1f}x noise"
    return str(check.rule or "-")


def _diverges(route: RouteResult) -> str:
    """The first diverging layer and the last that matched, where the route's were compared."""
    found = route.details.divergence
    if found and not found.reproduced:
        return "the per-layer comparison does not reproduce the failure: it needs the whole graph"
    if not found or not found.first:
        return ""
    held = f"; the last that matched: {found.last_matching!r}" if found.last_matching else ""
    return f"first diverging layer {found.first!r}{held} (per-layer errors in report.md and plots/)"


def summary_table(results: Sequence[ModelResult]) -> str:
    """model × route table with status, errors, verdict and time; a star marks a fallback; reasons,
    warnings and models without a float64 reference below it."""
    header = ("model", "route", "status", "max abs", "max rel", "judged", "time")
    rows = []
    for model in results:
        for r in model.routes:
            star = "*" if r.rejected and r.status == Status.PASSED else ""
            rows.append(
                (
                    model.name,
                    r.route,
                    r.status + star,
                    _err(r.max_abs_error if r.status in NUMBERED else None),
                    _err(r.max_rel_error if r.status in NUMBERED else None),
                    judged(r),
                    f"{r.seconds:.1f}s",
                )
            )
    lines = [*_table(header, rows), "", _counts([r.status for m in results for r in m.routes])]
    if any(r.rejected and r.status == Status.PASSED for m in results for r in m.routes):
        lines.append("* passed with a fallback exporter")
    notes = [_note(m.name, r) for m in results for r in m.routes if r.reason]
    notes += [f"- {m.name} × {r.route}: {line}" for m in results for r in m.routes if (line := _diverges(r))]
    notes += [f"- {m.name} × {r.route}: warning: {w}" for m in results for r in m.routes for w in r.warnings]
    notes += [
        f"- {m.name}: scaled rule instead of noise: {m.float64_reason}" for m in results if m.float64_reason
    ]
    return "\n".join([*lines, "", *notes] if notes else lines)


def validation_table(results: Sequence[FolderValidation]) -> str:
    """folder × route table for `graphmint validate`; reasons below it."""
    header = ("folder", "route", "status", "sets", "max abs", "max rel")
    rows = [
        (
            str(f.path),
            r.route,
            r.status,
            str(len(r.check.points) if r.check else 0),
            _err(r.max_abs_error),
            _err(r.max_rel_error),
        )
        for f in results
        for r in f.routes
    ]
    lines = [*_table(header, rows), "", _counts([r.status for f in results for r in f.routes])]
    notes = [_note(str(f.path), r) for f in results for r in f.routes if r.reason]
    notes += [f"- {f.path} × {r.route}: warning: {w}" for f in results for r in f.routes for w in r.warnings]
    return "\n".join([*lines, "", *notes] if notes else lines)
