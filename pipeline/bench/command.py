"""The `graphmint bench` command: measure every published model, record, report."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from graphmint.pipeline.bench.record import (
    bench_accuracy_png,
    bench_json,
    bench_markdown,
    bench_plot_png,
    console_lines,
    record,
)
from graphmint.pipeline.bench.results import BenchOptions, ModelBench
from graphmint.pipeline.bench.run import bench_model, published_models
from graphmint.pipeline.publish.trust import signing_key_path
from graphmint.pipeline.reports import write_text_atomic

__all__ = ["run_bench"]


def run_bench(
    artifacts: Path,
    models: Sequence[str] | None,
    options: BenchOptions,
    report_dir: Path | None = None,
    signing_key: Path | None = None,
    echo: Callable[[str], None] = print,
) -> list[ModelBench]:
    """Bench every model published under `artifacts` (or those named); write bench.json, bench.md and
    plots/<model>.bench.png to `report_dir` (default: `artifacts`). UsageError for bad input, before
    anything is measured."""
    signing_key = signing_key_path(signing_key)
    published = published_models(artifacts, models)
    folder = report_dir or artifacts
    benches = []
    for path, manifest in published:
        with tempfile.TemporaryDirectory(prefix="graphmint-bench-") as work:
            bench = bench_model(path, manifest, options, Path(work))
            record(bench, manifest, options, signing_key)
        benches.append(bench)
        for line in console_lines(bench):
            echo(line)
    write_text_atomic(folder / "bench.json", json.dumps(bench_json(benches, options), indent=2) + "\n")
    write_text_atomic(folder / "bench.md", bench_markdown(benches, options))
    for bench in benches:
        png = bench_plot_png(bench)
        if png is not None:
            write_text_atomic(folder / "plots" / f"{bench.name}.bench.png", png)
        accuracy = bench_accuracy_png(bench, options.batches[0])
        if accuracy is not None:
            write_text_atomic(folder / "plots" / f"{bench.name}.accuracy.png", accuracy)
    echo(f"bench.json, bench.md and plots written to {folder}")
    return benches
