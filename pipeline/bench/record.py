"""What `graphmint bench` leaves behind: the recommendation in each model's manifest, bench.json,
bench.md and a latency plot per model.

The recommended artifact is the deployable one (a verified file, not an in-process route) with the
lowest median latency at the first batch size asked. Recording it republishes the model folder
atomically, like a run does (pipeline.publish.staging): the manifest gains `recommended` and, where
it was made and validated, the `onnx-optimized` route with its file. A signed manifest is re-signed
with the signing key; without one it is left as it is (a rewritten manifest would no longer verify),
and bench.json says so.
"""

from __future__ import annotations

import datetime
import io
import os
import platform
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.pipeline.bench.results import BenchOptions, ModelBench, Subject
from graphmint.pipeline.bench.run import OPTIMIZED
from graphmint.pipeline.publish.manifest import (
    GRAPHMINT_VERSION,
    ModelManifest,
    Recommended,
    installed_versions,
    write_model_manifest,
)
from graphmint.pipeline.publish.staging import Staging, hash_files
from graphmint.pipeline.publish.trust import sign_manifest, signature_files
from graphmint.pipeline.run.cache import refresh as refresh_cached
from graphmint.validators.results import RouteResult

__all__ = [
    "bench_accuracy_png",
    "bench_json",
    "bench_markdown",
    "bench_plot_png",
    "console_lines",
    "recommend",
    "record",
]


def _speed(subject: Subject, batch: int) -> float:
    """How fast: the paired ratio to eager where eager was measured, else 1 / median latency."""
    figures = subject.timings[batch]
    return float(figures.get("speedup") or 1.0 / figures["p50_us"])


def recommend(bench: ModelBench, options: BenchOptions) -> tuple[Subject | None, list[str]]:
    """The fastest deployable subject at the first batch size asked, and the others as fast within the
    stability tolerance (a tie the noise could turn either way). Among ties a published route goes
    before the offline-optimized copy made here, then the smaller file."""
    batch = options.batches[0]
    # a reduced-precision artifact trades accuracy for speed: a choice for its user, never made here
    timed = [s for s in bench.subjects if s.deployable and batch in s.timings and s.precision == "fp32"]
    if not timed:
        return None, []
    best = max(_speed(s, batch) for s in timed)
    ties = [s for s in timed if _speed(s, batch) >= best * (1 - options.rule.tolerance)]
    # the optimized copy is derived from the onnx route, whether made now or recorded by an earlier bench
    # ... and a route on its own runtime before the same file on another
    chosen = min(
        ties, key=lambda s: (s.name == OPTIMIZED, s.name != s.route, s.size_bytes or 0, -_speed(s, batch))
    )
    return chosen, [s.name for s in ties if s is not chosen]


def _recommendation(subject: Subject, ties: list[str], options: BenchOptions) -> Recommended:
    batch = options.batches[0]
    timing = subject.timings[batch]
    return Recommended(
        route=subject.route,
        artifact=subject.artifact,
        runner=subject.runner,
        batch=batch,
        threads=options.threads,
        p50_us=timing["p50_us"],
        speedup=timing.get("speedup"),
        measured=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        as_fast=ties,
    )


def _optimized_entry(subject: Subject, folder: Path) -> RouteResult:
    """The manifest entry of the offline-optimized ONNX route, once its file is in `folder`."""
    assert subject.validation is not None and subject.artifact is not None
    return subject.validation.model_copy(
        update={
            "runner": subject.runner,
            "artifact": subject.artifact,
            "files": hash_files(folder, folder / subject.artifact),
        }
    )


def record(
    bench: ModelBench, manifest: ModelManifest, options: BenchOptions, signing_key: Path | None
) -> None:
    """Write the recommendation (and the validated offline-optimized ONNX route) into the model's
    published folder, atomically; `bench.recommended` and `bench.recorded` say what was done."""
    best, ties = recommend(bench, options)
    if best is None:
        bench.recorded = "nothing recommended: no verified artifact was measured"
        return
    recommendation = _recommendation(best, ties, options)
    bench.recommended = recommendation.dump()
    folder = bench.folder
    signed = any(p.is_file() for p in signature_files(folder / "manifest.json"))
    if signed and signing_key is None:
        bench.recorded = (
            "not recorded: the manifest is signed; pass --signing-key to re-sign it with the recommendation"
        )
        return
    optimized = next((s for s in bench.subjects if s.name == OPTIMIZED and s.timings and s.path), None)
    # an optimized route an earlier bench recorded is replaced by the one made now
    routes = [r for r in manifest.routes if optimized is None or r.route != OPTIMIZED]
    updated = manifest.model_copy(update={"recommended": recommendation, "routes": routes})
    before = (folder / "manifest.json").read_text()
    with Staging(folder.parent, folder.name) as staging:
        assert staging.path is not None
        shutil.copytree(folder, staging.path, symlinks=True, dirs_exist_ok=True)
        if optimized is not None and optimized.path is not None and optimized.artifact is not None:
            target = staging.path / optimized.artifact
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(optimized.path, target)
            updated.routes.append(_optimized_entry(optimized, staging.path))
        path = write_model_manifest(staging.path, updated)
        if signing_key is not None:
            sign_manifest(path, signing_key)
        else:
            for stale in signature_files(path):
                stale.unlink(missing_ok=True)
        staging.commit()
    refresh_cached(before, folder)  # a run that publishes from the cache keeps what was recorded
    bench.recorded = f"recorded in {folder / 'manifest.json'}"


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench_json(benches: Sequence[ModelBench], options: BenchOptions) -> dict[str, Any]:
    return {
        "graphmint": GRAPHMINT_VERSION,
        "host": {
            "cpu": _cpu(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": installed_versions(),
        "threads": options.threads,
        "batches": list(options.batches),
        "rule": options.rule.to_json(),
        "models": [b.to_json() for b in benches],
    }


def _rows(bench: ModelBench) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for s in bench.subjects:
        size = "" if s.size_bytes is None else f"{s.size_bytes / 2**20:.2f}"
        rss = s.memory.get("added_rss_mb")
        memory = "" if rss is None else f"{rss:.0f}"
        accuracy = (s.precision if s.kind != "eager" else "", "" if s.snr_db is None else f"{s.snr_db:.1f}")
        if not s.timings:
            rows.append((s.name, "", "", "", "", "", "", memory, size, *accuracy, s.reason))
        for batch, t in sorted(s.timings.items()):
            speedup = "" if t.get("speedup") is None else f"{t['speedup']:.2f}x"
            stable = "" if t["stable"] else f"unstable ({t['spread']:.0%})"
            row = (s.name, str(batch), f"{t['p50_us']:.0f}", f"{t['p90_us']:.0f}", f"{t['p99_us']:.0f}")
            rows.append((*row, f"{t['throughput']:.0f}", speedup, memory, size, *accuracy, stable))
        for batch, why in sorted(s.skipped.items()):
            rows.append((s.name, str(batch), "", "", "", "", "", "", "", "", "", why))
    return rows


_HEADER = (
    "route",
    "batch",
    "p50 µs",
    "p90 µs",
    "p99 µs",
    "items/s",
    "vs eager",
    "+RSS MB",
    "size MB",
    "precision",
    "SNR dB",
    "note",
)


def console_lines(bench: ModelBench) -> list[str]:
    rows = [_HEADER, *_rows(bench)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER) - 1)]
    lines = [f"{bench.name} ({bench.framework})"]
    for row in rows:
        cells = [c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))]
        lines.append("  " + "  ".join(cells) + (f"  {row[-1]}" if row[-1] else ""))
    best = bench.recommended
    if best:
        ratio = f", {best['speedup']:.1f}x eager" if best.get("speedup") else ""
        figures = f"{best['p50_us']:.0f} µs at batch {best['batch']}{ratio}"
        lines.append(f"  recommended: {best['route']} on {best['runner']} ({figures}); {bench.recorded}")
    else:
        lines.append(f"  {bench.recorded}")
    return lines


def bench_markdown(benches: Sequence[ModelBench], options: BenchOptions) -> str:
    data = bench_json([], options)
    out = [
        "# graphmint bench",
        "",
        f"{data['host']['cpu']}, {options.threads} thread(s) pinned; median of the last "
        f"{options.rule.stable_windows} windows once they agree within {options.rule.tolerance:.0%}. "
        "In-process routes (torch.compile, tf.function) are measured for reference: they leave no file "
        "to deploy, so they are never recommended.",
        "",
    ]
    for bench in benches:
        out += [
            f"## {bench.name} ({bench.framework})",
            "",
            "| " + " | ".join(_HEADER) + " |",
            "|" + "---|" * len(_HEADER),
        ]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in _rows(bench)]
        best = bench.recommended
        out += [
            "",
            f"Recommended: `{best['route']}` on `{best['runner']}` ({bench.recorded})."
            if best
            else bench.recorded,
            "",
        ]
        # what each ran on, as the runtime reported itself (OpenVINO: the precision hint in effect)
        out += [f"- `{s.name}`: {s.runtime}" for s in bench.subjects if s.runtime] + [""]
    return "\n".join(out)


def bench_plot_png(bench: ModelBench) -> bytes | None:
    """Median latency per route and batch size (log scale), with p90 as the error bar's top."""
    timed = [s for s in bench.subjects if s.timings]
    if not timed:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    batches = sorted({b for s in timed for b in s.timings})
    fig = Figure(figsize=(max(6.0, 1.2 * len(timed) * len(batches)), 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / len(batches)
    for k, batch in enumerate(batches):
        x = np.arange(len(timed)) + k * width
        p50 = np.array([s.timings.get(batch, {}).get("p50_us", np.nan) for s in timed])
        p90 = np.array([s.timings.get(batch, {}).get("p90_us", np.nan) for s in timed])
        ax.bar(x, p50, width, label=f"batch {batch}", yerr=[np.zeros_like(p50), np.nan_to_num(p90 - p50)])
    ax.set_xticks(np.arange(len(timed)) + 0.4 - width / 2, [s.name for s in timed], rotation=20, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("median latency per request, µs (log)")
    ax.set_title(f"{bench.name}: latency per route and batch size")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


#: where the accuracy plot draws an artifact whose SNR is above it (float32 routes: ~120 dB and more)
SNR_CEILING_DB = 100.0


def bench_accuracy_png(bench: ModelBench, batch: int) -> bytes | None:
    """Accuracy (SNR against eager, dB) against median latency at `batch`, a point per artifact,
    marked by precision: what each reduced-precision artifact gives up for its speed."""
    points = [s for s in bench.subjects if s.snr_db is not None and batch in s.timings]
    if not points:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    markers = {"fp32": "o", "fp16": "s", "int8": "^"}
    for precision in sorted({s.precision for s in points}):
        chosen = [s for s in points if s.precision == precision]
        x = [s.timings[batch]["p50_us"] for s in chosen]
        y = [min(float(s.snr_db or 0.0), SNR_CEILING_DB) for s in chosen]
        ax.scatter(x, y, marker=markers.get(precision, "x"), label=precision)
        for s, xi, yi in zip(chosen, x, y, strict=True):
            ax.annotate(s.name, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    eager = next((s for s in bench.subjects if s.kind == "eager" and batch in s.timings), None)
    if eager is not None:
        ax.axvline(eager.timings[batch]["p50_us"], color="grey", linestyle="--", label="eager latency")
    ax.set_xscale("log")
    ax.set_xlabel(f"median latency per request at batch {batch}, µs (log)")
    ax.set_ylabel(f"SNR against eager, dB (capped at {SNR_CEILING_DB:g})")
    ax.set_title(f"{bench.name}: accuracy against latency")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
