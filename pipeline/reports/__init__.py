"""Reports over a run's results: report.json, report.md, junit.xml and error plots.

Every report is a formatter over the same `ModelResult` data; none of them computes a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from graphmint.pipeline.publish.staging import write_text_atomic
from graphmint.pipeline.run.results import ModelResult

__all__ = ["layer_plot_name", "write_reports", "write_text_atomic"]


def layer_plot_name(model: str, route: str) -> str:
    """The file, under plots/, of a route's per-layer errors."""
    return f"{model}.{route}.layers.png"


def write_reports(results: Sequence[ModelResult], folder: Path) -> list[Path]:
    """Write every report into `folder`; returns their paths."""
    from graphmint.pipeline.reports.json_report import json_report
    from graphmint.pipeline.reports.junit import junit_xml
    from graphmint.pipeline.reports.markdown import markdown_report
    from graphmint.pipeline.reports.plot import error_plot_png, layer_plot_png

    written = [
        write_text_atomic(folder / "report.json", json_report(results)),
        write_text_atomic(folder / "report.md", markdown_report(results)),
        write_text_atomic(folder / "junit.xml", junit_xml(results)),
    ]
    for model in results:
        png = error_plot_png(model)
        if png is not None:
            written.append(write_text_atomic(folder / "plots" / f"{model.name}.png", png))
        for route in model.routes:
            divergence = route.details.divergence
            if divergence and divergence.layers:
                png = layer_plot_png(f"{model.name} × {route.route}", divergence.dump())
                written.append(
                    write_text_atomic(folder / "plots" / layer_plot_name(model.name, route.route), png)
                )
            if route.log:
                path = folder / "logs" / model.name / f"{route.route}.log"
                written.append(write_text_atomic(path, route.log))
    return written
