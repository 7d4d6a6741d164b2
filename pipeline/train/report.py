"""The reports of `graphmint train-check`: train.json, train.md, train-junit.xml and one plot per model
(the loss of every form per step, and each form's error as a multiple of its bound per step)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from graphmint.pipeline.publish.manifest import GRAPHMINT_VERSION
from graphmint.pipeline.reports import write_text_atomic
from graphmint.pipeline.train.check import TrainResult
from graphmint.validators.results import Status

__all__ = ["console_table", "write_train_reports"]


def _json(results: Sequence[TrainResult]) -> str:
    data = {
        "graphmint": GRAPHMINT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "ok": all(r.ok for r in results),
        "models": [r.to_json() for r in results],
    }
    return json.dumps(data, indent=2) + "\n"


def _at(values: Sequence[float], step: int) -> str:
    return f"{values[step - 1]:.6g}" if len(values) >= step else "–"


def _markdown(results: Sequence[TrainResult]) -> str:
    lines = ["# graphmint train-check", ""]
    for r in results:
        steps = r.recipe.steps
        reference = "float64 eager" if not r.reference_reason else f"eager float32 ({r.reference_reason})"
        lines += [
            f"## {r.name} ({r.framework}): {'ok' if r.ok else 'DIVERGES'}",
            "",
            f"`{r.ref}`; {r.recipe.optimizer} lr {r.recipe.lr:g}, {r.recipe.loss}, {steps} steps; "
            f"reference: {reference}"
            + (f"; dropout switched off in {', '.join(r.quieted)}" if r.quieted else ""),
            "",
            f"| form | status | loss at step 1 | loss at step {steps} | worst error / bound "
            "| first divergence |",
            "|---|---|---|---|---|---|",
        ]
        for form in ("eager", "float64"):
            if form in r.losses:
                lines.append(
                    f"| {form} | reference | {_at(r.losses[form], 1)} | {_at(r.losses[form], steps)} | | |"
                )
        for f in r.forms:
            worst = max((s.ratio for s in f.steps), default=float("nan"))
            losses = r.losses.get(f.form, [])
            where = f.divergence.line() if f.divergence else (f.reason if f.status != Status.PASSED else "")
            lines.append(
                f"| {f.form} | {f.status} | {_at(losses, 1)} | {_at(losses, steps)} | {worst:.3g} | {where} |"
            )
        lines.append("")
    return "\n".join(lines)


def _junit(results: Sequence[TrainResult]) -> str:
    root = ET.Element("testsuites", name="graphmint train-check")
    for r in results:
        suite = ET.SubElement(root, "testsuite", name=r.name)
        for f in r.forms:
            case = ET.SubElement(suite, "testcase", classname=f"graphmint.train.{r.name}", name=f.form)
            case.set("time", f"{f.seconds:.4f}")
            if f.status == Status.FAILED:
                ET.SubElement(case, "failure", message=f.reason)
            elif f.status == Status.ERROR:
                ET.SubElement(case, "error", message=f.reason)
            elif f.status == Status.SKIPPED:
                ET.SubElement(case, "skipped", message=f.reason)
    return ET.tostring(root, encoding="unicode") + "\n"


def _plot(r: TrainResult) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    loss_ax, ratio_ax = fig.subplots(1, 2)
    for form, losses in r.losses.items():
        loss_ax.plot(range(1, len(losses) + 1), losses, marker=".", label=form)
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("loss")
    loss_ax.set_title(f"{r.name}: loss per step", fontsize=9)
    loss_ax.legend(fontsize=7)
    for f in r.forms:
        if f.steps:
            ratios = np.array([max(min(s.ratio, 1e12), 1e-6) for s in f.steps])
            ratio_ax.plot([s.step for s in f.steps], ratios, marker=".", label=f.form)
        if f.divergence is not None:
            ratio_ax.axvline(f.divergence.step, color="tab:red", linestyle="--", linewidth=1)
    ratio_ax.axhline(1.0, color="black", linewidth=1)
    ratio_ax.set_yscale("log")
    ratio_ax.set_xlabel("step")
    ratio_ax.set_ylabel("worst error / its bound (above 1: diverged)")
    ratio_ax.set_title(f"{r.name}: each compiled form against float64", fontsize=9)
    if any(f.steps for f in r.forms):
        ratio_ax.legend(fontsize=7)
    for ax in (loss_ax, ratio_ax):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_train_reports(results: Sequence[TrainResult], folder: Path) -> list[Path]:
    written = [
        write_text_atomic(folder / "train.json", _json(results)),
        write_text_atomic(folder / "train.md", _markdown(results)),
        write_text_atomic(folder / "train-junit.xml", _junit(results)),
    ]
    for r in results:
        written.append(write_text_atomic(folder / "plots" / f"{r.name}.train.png", _plot(r)))
    return written


def console_table(results: Sequence[TrainResult]) -> str:
    lines = []
    for r in results:
        for f in r.forms:
            lines.append(f"{r.name:<18} {f.form:<16} {f.status:<8} {f.reason}".rstrip())
    return "\n".join(lines)
