"""The ONNX fallback chain, --allow-fail, and the reports a run leaves (JSON, Markdown, JUnit, PNG)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from graphmint.pipeline.publish.manifest import read_model_manifest
from graphmint.validators.results import ERROR_BINS

Cli = Callable[..., CompletedProcess[str]]

# Code that takes another path while torch.export traces it: the dynamo-based exporters see the tanh
# GELU approximation, eager code and tracing see the exact GELU. The numbers differ by ~3e-4.
MODEL = textwrap.dedent(
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    class ExportOnlyApproximation(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(16, 16)

        def forward(self, x):
            h = self.proj(x)
            if torch.compiler.is_exporting():
                return F.gelu(h, approximate="tanh")
            return F.gelu(h)

    def build():
        return ExportOnlyApproximation()
    """
)
ROUTES = "torchscript-trace,torch-export,onnx"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fallback")
    (folder / "approx.py").write_text(MODEL)
    return folder


@pytest.fixture(scope="module")
def failing_run(runs: Path) -> tuple[Path, CompletedProcess[str]]:
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "graphmint.pipeline",
            "export",
            "approx:build",
            "--input",
            "x:float32[batch,16]",
            "--routes",
            ROUTES,
            "--out",
            "out",
            "--report-dir",
            "reports",
        ],
        cwd=runs,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return runs, proc


def test_onnx_falls_back_and_says_why(failing_run: tuple[Path, CompletedProcess[str]]) -> None:
    folder, proc = failing_run
    assert proc.returncode == 1, proc.stderr  # torch-export really is wrong
    report = json.loads((folder / "reports" / "report.json").read_text())
    routes = {r["route"]: r for r in report["models"][0]["routes"]}
    onnx = routes["onnx"]
    assert onnx["status"] == "passed"
    assert "dynamo=False" in onnx["exporter"]
    [rejected] = onnx["rejected"]
    assert rejected["exporter"] == "dynamo" and rejected["stage"] == "compare"
    # the tanh GELU is a thousand times further from float64 than eager float32 is: the noise rule says so
    assert (
        "error against the float64 model" in rejected["reason"]
        and "x the eager model's own" in rejected["reason"]
    )
    assert routes["torch-export"]["status"] == "failed" and routes["torch-export"]["diagnosis"] == "numbers"
    assert (
        routes["torchscript-trace"]["status"] == "passed" and routes["torchscript-trace"]["diagnosis"] == ""
    )
    assert not (folder / "out" / "build").exists(), "a run with a failed route publishes nothing"


def test_reports_carry_the_numbers(failing_run: tuple[Path, CompletedProcess[str]]) -> None:
    folder, _ = failing_run
    reports = folder / "reports"
    data = json.loads((reports / "report.json").read_text())
    assert data["ok"] is False
    export = next(r for r in data["models"][0]["routes"] if r["route"] == "torch-export")
    point = export["checks"][0]["points"][0]
    output = point["outputs"][0]
    for key in (
        "max_abs_error",
        "max_rel_error",
        "mean_abs_error",
        "mismatch_fraction",
        "cosine_similarity",
        "nan_count",
        "inf_count",
        "worst_index",
        "worst_actual",
        "worst_expected",
    ):
        assert output[key] is not None, key
    assert 1e-5 < output["max_abs_error"] < 1e-2
    markdown = (reports / "report.md").read_text()
    assert "| build | torch | torch-export | failed |" in markdown
    assert "### build × torch-export: failed at compare" in markdown and "Try next:" in markdown
    png = (reports / "plots" / "build.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def _drawn_rows(fig: Any) -> list[tuple[str, str]]:
    """The row labels a plot drew, top first: (route / runtime on the left, value and status on the
    right)."""
    left, right = fig.axes

    def top_first(ax: Any) -> list[str]:
        ticks = sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])
        return [t.get_text() for t in ticks]

    return list(zip(top_first(left), top_first(right), strict=True))


def test_error_plot_has_a_row_per_route_and_runtime_farthest_first(
    failing_run: tuple[Path, CompletedProcess[str]],
) -> None:
    from graphmint.pipeline.reports.plot import error_figure, error_rows, skipped_runtimes
    from graphmint.pipeline.run.results import ModelResult

    folder, _ = failing_run
    [data] = json.loads((folder / "reports" / "report.json").read_text())["models"]
    model = ModelResult.read(data)
    rows = error_rows(model)
    # every runtime that checked an artifact is one row; the runtimes that cannot run here are named
    ran = {(r.route, c.runner) for r in model.routes for c in r.checks if c.status != "skipped"}
    assert {(row.route, row.runner) for row in rows} == ran and len(rows) == len(ran)
    assert set(skipped_runtimes(model)) == {
        c.runner for r in model.routes for c in r.checks if c.status == "skipped"
    }
    assert all("cuda" in runner for runner in skipped_runtimes(model))
    worst = [row.worst for row in rows]
    assert None not in worst and worst == sorted(worst, reverse=True)
    # torch-export's tanh GELU is the farthest from eager, failed against the noise limit it was judged by
    assert (rows[0].route, rows[0].status, rows[0].rule) == ("torch-export", "failed", "noise")
    assert rows[0].limit is not None and rows[0].worst > rows[0].limit
    trace = next(row for row in rows if row.route == "torchscript-trace")
    assert trace.exact and trace.precision == "fp32" and rows[-1].exact
    for row in rows:
        assert len(row.fractions) == len(ERROR_BINS) - 1 and abs(sum(row.fractions) - 1) < 1e-9
    # what is drawn: the same rows, top first, each with its value and status on the right
    drawn = _drawn_rows(error_figure(model))
    assert [label for label, _ in drawn] == [row.label for row in rows]
    assert drawn[0][1].endswith("failed") and "limit" in drawn[0][1]
    assert all(value.startswith("0 (exact)") for label, value in drawn if label.startswith("torchscript"))


def test_error_plot_lists_routes_without_numbers_with_their_status(tmp_path: Path) -> None:
    """SeqClassifier's torch-export and torch-compile are known limitations (an LSTM): skipped, drawn
    below the routes with numbers with their status and reason."""
    from dataclasses import replace

    from graphmint.pipeline.reports.plot import error_figure, error_rows
    from graphmint.pipeline.run.executors import run_models
    from graphmint.pipeline.run.stages import RunOptions
    from graphmint.pipeline.spec.config import load_config
    from tests.conftest import ZOO_CONFIG

    spec = next(s for s in load_config(ZOO_CONFIG) if s.name == "SeqClassifier")
    spec = replace(spec, routes=["torchscript-trace", "torch-export", "torch-compile"])
    [model] = run_models([spec], RunOptions(out=tmp_path, jobs=1))
    rows = error_rows(model)
    assert [(row.route, row.status) for row in rows] == [
        ("torchscript-trace", "passed"),
        ("torch-export", "skipped"),
        ("torch-compile", "skipped"),
    ]
    assert rows[0].numbered and not rows[1].numbered and rows[1].worst is None
    assert rows[1].reason.startswith("known limitation") and "captured no graph" in rows[2].reason
    fig = error_figure(model)
    assert [value for _, value in _drawn_rows(fig)][1:] == ["skipped", "skipped"]
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("skipped: known limitation: torch.export") for t in texts)
    assert any(t.startswith("skipped: known limitation: Dynamo does not wrap nn.LSTM") for t in texts)


def test_junit_parses_and_names_each_check(failing_run: tuple[Path, CompletedProcess[str]]) -> None:
    folder, _ = failing_run
    xml = JUnitXml.fromfile(str(folder / "reports" / "junit.xml"))
    cases = [case for suite in xml for case in suite]
    names = {(case.classname, case.name) for case in cases}
    assert ("graphmint.build.torch-export", "torch-export[example]") in names
    assert ("graphmint.build.onnx", "onnx-reference[batch=1]") in names
    failed = [c for c in cases if any(isinstance(r, Failure) for r in c.result)]
    assert failed and all(c.classname == "graphmint.build.torch-export" for c in failed)
    message = next(r for r in failed[0].result if isinstance(r, Failure)).message
    assert "error against the float64 model" in message
    skipped = [c for c in cases if any(isinstance(r, Skipped) for r in c.result)]
    assert any("cuda" in c.name for c in skipped)  # never silently absent
    assert not [c for c in cases if any(isinstance(r, Error) for r in c.result)]


def test_allow_fail_reports_but_passes(runs: Path, graphmint_cli: Cli) -> None:
    proc = graphmint_cli(
        "export",
        "approx:build",
        "--input",
        "x:float32[batch,16]",
        "--routes",
        ROUTES,
        "--allow-fail",
        "torch-export",
        "--out",
        "allowed",
        cwd=runs,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    export = read_model_manifest(runs / "allowed" / "build").route("torch-export")
    assert export.status == "failed" and export.allowed_failure is True
    assert not (runs / "allowed" / "build" / "torch-export").exists()
    assert (runs / "allowed" / "build" / "onnx" / "model.onnx").is_file()
    xml = JUnitXml.fromfile(str(runs / "allowed" / "junit.xml"))
    assert not [c for s in xml for c in s if any(isinstance(r, Failure) for r in c.result)]
