"""`graphmint bench`: which verified artifact of each published model is fastest, by how much, at what cost.

For each model folder under ARTIFACTS, every route that passed validation is loaded with its deployment
runner in a child process of its own (validators.children), next to the eager model rebuilt from the
code the manifest names, and measured at each batch size by pipeline.bench.measure's stability rule.
For an ONNX route, ONNX Runtime's offline-optimized model (`SessionOptions.optimized_model_filepath`)
is made, replayed against the golden data like any artifact, and measured as route `onnx-optimized`.
The fastest verified file is the model's `recommended` artifact (pipeline.bench.record writes it).

Loading TorchScript, .pt2, AOTInductor and SavedModel files, and the model's own code (the eager
baseline, torch.compile and tf.function), runs code: as in `graphmint validate`, only with --trust or a
manifest whose signature verifies; otherwise those are skipped with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.exporters.base import Artifact
from graphmint.exporters.formats import FORMATS
from graphmint.pipeline.bench.measure import BenchHost, StabilityRule, p50, spread, stable, timing
from graphmint.pipeline.bench.results import BenchOptions, ModelBench, Subject
from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.manifest import ModelManifest, inside, read_model_manifest
from graphmint.pipeline.publish.trust import TrustDecision, folder_trust
from graphmint.pipeline.validate import published_cases, published_tolerance
from graphmint.validators.check import Case
from graphmint.validators.children import Child, ChildError, default_pool
from graphmint.validators.replay import replay
from graphmint.validators.results import RouteResult as RouteEntry
from graphmint.validators.results import Status
from graphmint.validators.tolerance import Tolerance

__all__ = ["OPTIMIZED", "batch_feeds", "bench_model", "published_models"]

#: the route name of ONNX Runtime's offline-optimized copy of a model's ONNX file
OPTIMIZED = "onnx-optimized"
#: the optimization level the offline model is written at: ORT_ENABLE_ALL adds layout changes for the
#: CPU it runs on, which ONNX Runtime's documentation advises against saving
OPTIMIZATION = "ORT_ENABLE_EXTENDED"


def published_models(artifacts: Path, names: Sequence[str] | None) -> list[tuple[Path, ModelManifest]]:
    """The published model folders under `artifacts` (those named, in the order named); UsageError
    for a folder that is none, or a name that is not published there."""
    if not artifacts.is_dir():
        raise UsageError(f"{artifacts} is not a folder: pass the folder models were published to")
    found = {
        p.name: p
        for p in sorted(artifacts.iterdir())
        if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").is_file()
    }
    if not found:
        raise UsageError(
            f"no published model under {artifacts}: run `graphmint run` or `graphmint export` first"
        )
    missing = [n for n in names or () if n not in found]
    if missing:
        raise UsageError(
            f"--models names {', '.join(missing)}, not published under {artifacts} ({', '.join(found)})"
        )
    return [(found[n], read_model_manifest(found[n])) for n in (names or list(found))]


def _batch_dim(manifest: ModelManifest) -> str | None:
    """The dynamic dim every input starts with, where there is one: the batch."""
    firsts = {str(t.shape[0]) if t.shape else "" for t in manifest.inputs}
    dim = next(iter(firsts)) if len(firsts) == 1 else None
    return dim if dim and dim in manifest.dims else None


def batch_feeds(
    manifest: ModelManifest, template: Mapping[str, np.ndarray], batch: int
) -> dict[str, np.ndarray] | str:
    """The golden example's inputs with `batch` rows (its rows repeated or cut), or why there are none."""
    dim = _batch_dim(manifest)
    if dim is None:
        rows = {int(a.shape[0]) for a in template.values() if a.ndim}
        if rows == {batch}:
            return dict(template)
        return f"the model's inputs have no dynamic first dim to set to {batch}"
    bounds = manifest.dims[dim]
    if not bounds.min <= batch <= bounds.max:
        return f"batch {batch} is outside {dim}'s range {bounds.min}..{bounds.max}"
    feeds = {}
    for name, array in template.items():
        rows = np.arange(batch) % array.shape[0]
        feeds[name] = np.ascontiguousarray(np.take(array, rows, axis=0))
    return feeds


def _size(entry: RouteEntry) -> int | None:
    return sum(f.bytes for f in entry.files) if entry.files else None


def _snr_db(entry: RouteEntry) -> float | None:
    """The route's accuracy as validation measured it: its outputs' worst SNR against eager (dB),
    over the grid where a budget judged, else the worst grid point's."""
    if entry.budgets:
        values = [b.snr_db for b in entry.budgets.values()]
    else:
        values = [o.snr_db for o in entry.check.outputs] if entry.check else []
    found = [float(v) for v in values if v is not None]
    return min(found) if found else None


def _export_context(
    manifest: ModelManifest, template: Mapping[str, np.ndarray], route: str
) -> dict[str, Any]:
    """What the route's exporter needs, read off the manifest (ExportContext's fields but the model)."""
    dynamic = {
        t.name: {
            a: (d, manifest.dims[d].min, manifest.dims[d].max)
            for a, d in enumerate(t.shape)
            if isinstance(d, str)
        }
        for t in manifest.inputs
    }
    return {
        "framework": manifest.framework,
        "workdir": Path(),
        "input_names": tuple(t.name for t in manifest.inputs),
        "output_names": tuple(t.name for t in manifest.outputs),
        "example_inputs": dict(template),
        "dynamic_axes": {k: v for k, v in dynamic.items() if v},
        "dtypes": {t.name: t.dtype for t in manifest.inputs},
        "route": route,
    }


def _artifact(folder: Path, manifest: ModelManifest, entry: RouteEntry) -> Artifact:
    assert entry.artifact is not None and entry.runner is not None
    model = manifest.model
    return Artifact(
        route=entry.route,
        exporter=entry.exporter or "",
        runner=entry.runner,
        path=inside(folder, entry.artifact),
        input_names=tuple(t.name for t in manifest.inputs),
        output_names=tuple(t.name for t in manifest.outputs),
        dynamic_axes={
            t.name: {a: d for a, d in enumerate(t.shape) if isinstance(d, str)} for t in manifest.inputs
        },
        imports=(model.ref.partition(":")[0],) if model is not None else (),
    )


def _optimize(source: Path, dest: Path) -> str:
    """In a child: ONNX Runtime's offline-optimized copy of `source` written to `dest`; its label."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION)
    options.optimized_model_filepath = str(dest)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return f"onnxruntime {ort.__version__} offline optimization ({OPTIMIZATION})"


def _optimized(
    folder: Path,
    manifest: ModelManifest,
    entry: RouteEntry,
    cases: Sequence[Case],
    work: Path,
    timeout_s: float,
) -> Subject:
    """The offline-optimized copy of the ONNX route's file, replayed against the golden data."""
    subject = Subject(OPTIMIZED, "optimized", runner="onnxruntime", artifact=f"{OPTIMIZED}/model.onnx")
    if len(entry.files) != 1:
        subject.reason = "the ONNX file keeps external data: not optimized offline"
        return subject
    dest = work / OPTIMIZED / "model.onnx"
    dest.parent.mkdir(parents=True)
    artifact = _artifact(folder, manifest, entry)
    try:
        label = default_pool().call(
            _optimize, artifact.path, dest, name="onnxruntime optimizer", timeout_s=timeout_s
        )
    except ChildError as exc:
        subject.reason, subject.error = (
            f"ONNX Runtime could not write its optimized model: {exc.detail}",
            True,
        )
        return subject
    known = {n: Tolerance(**t) for n, t in entry.output_tolerances().items()}
    optimized = replace(artifact, route=OPTIMIZED, exporter=label, path=dest)
    subject.validation = replay(
        OPTIMIZED, optimized, cases, published_tolerance(known, None, None), timeout_s
    )
    subject.size_bytes, subject.path = dest.stat().st_size, dest
    if subject.validation.status != Status.PASSED:
        subject.reason = f"did not validate, so it is not measured: {subject.validation.reason}"
    return subject


def _plan(
    folder: Path,
    manifest: ModelManifest,
    decision: TrustDecision,
    cases: Sequence[Case],
    work: Path,
    timeout_s: float,
) -> Iterator[tuple[Subject, str, tuple[Any, ...]]]:
    """(subject, the host's load method, its arguments) for each thing to measure; subjects that
    cannot be measured come with an empty method and their reason."""
    template = cases[0].feeds
    eager = Subject("eager", "eager", runner="eager")
    code = None if decision.may_execute else f"it runs the model's code, and {decision.basis}"
    if manifest.model is None:
        code = "the manifest names no model code (published before graphmint recorded it): publish it again"
    if code:
        eager.reason = code
        yield eager, "", ()
    else:
        assert manifest.model is not None
        yield eager, "load_eager", (manifest.model.ref, manifest.model.seed)
    for entry in manifest.routes:
        if entry.status != Status.PASSED or entry.runner is None:
            continue
        if entry.artifact is None:  # torch.compile, tf.function: rebuilt from the model's code
            subject = Subject(entry.route, "in-process", runner=entry.runner)
            if code:
                subject.reason = code
                yield subject, "", ()
                continue
            assert manifest.model is not None
            ctx = _export_context(manifest, template, entry.route)
            yield (
                subject,
                "load_in_process",
                (manifest.model.ref, manifest.model.seed, manifest.framework, entry.route, ctx),
            )
            continue
        subject = Subject(
            entry.route,
            "artifact",
            runner=entry.runner,
            artifact=entry.artifact,
            size_bytes=_size(entry),
            precision=entry.precision,
            snr_db=_snr_db(entry),
        )
        refusal = decision.refusal(entry.artifact, entry.runner)
        if refusal:
            subject.reason = refusal
            yield subject, "", ()
            continue
        yield subject, "load_artifact", (entry.runner, _artifact(folder, manifest, entry))
        # the same file on every other runtime it deploys on that verified it (OpenVINO for ONNX)
        for runner in _other_deployments(entry):
            other = Subject(
                f"{entry.route}@{runner}",
                "artifact",
                runner=runner,
                artifact=entry.artifact,
                size_bytes=subject.size_bytes,
                precision=entry.precision,
                snr_db=subject.snr_db,
                route=entry.route,
            )
            refusal = decision.refusal(entry.artifact, runner)
            if refusal:
                other.reason = refusal
                yield other, "", ()
            else:
                yield other, "load_artifact", (runner, _artifact(folder, manifest, entry))
        if (
            entry.route == "onnx"
            and entry.runner == "onnxruntime"
            and not any(r.route == OPTIMIZED for r in manifest.routes)
        ):
            optimized = _optimized(folder, manifest, entry, cases, work, timeout_s)
            if optimized.reason:
                yield optimized, "", ()
            else:
                artifact = replace(_artifact(folder, manifest, entry), route=OPTIMIZED, path=optimized.path)
                yield optimized, "load_artifact", ("onnxruntime", artifact)


def _other_deployments(entry: RouteEntry) -> list[str]:
    """The runtimes besides the route's own that an artifact may be deployed on and that passed it."""
    others = []
    for check in entry.checks:
        spec = FORMATS.runner_spec(check.runner)
        if check.runner != entry.runner and check.status == Status.PASSED and spec and spec.deploys:
            others.append(check.runner)
    return others


def _load(
    subject: Subject, load: str, args: tuple[Any, ...], options: BenchOptions, model: str
) -> Child | None:
    """A child of its own with `subject` loaded in it; None (the subject says why) where it failed."""
    child = default_pool().spawn(
        BenchHost, options.threads, name=f"bench {model} {subject.name}", timeout_s=options.timeout_s
    )
    try:
        loaded = child.request(load, *args)
    except ChildError as exc:
        _failed(subject, exc)
        child.stop()
        return None
    subject.runtime, subject.load_s = loaded["runtime"], loaded["load_s"]
    return child


def _failed(subject: Subject, exc: ChildError) -> None:
    subject.reason, subject.error = exc.detail if exc.kind == "error" else str(exc), True


def _interleaved(
    loaded: list[tuple[Subject, Child]], feeds: dict[str, np.ndarray], batch: int, rule: StabilityRule
) -> None:
    """Measure every loaded subject at one batch size in rounds, one window each per round, until the
    figures of all are stable (or out of rounds or time); see pipeline.bench.measure."""
    active = []
    for subject, child in loaded:
        if subject.error:
            continue
        try:
            child.request("warmup", feeds, rule)
            active.append((subject, child))
        except ChildError as exc:
            _failed(subject, exc)
    windows: dict[str, list[list[float]]] = {subject.name: [] for subject, _ in active}
    estimates: dict[str, list[float]] = {subject.name: [] for subject, _ in active}
    deadline = time.monotonic() + rule.max_s * max(len(active), 1)
    rounds = 0
    while active and rounds < rule.max_windows and time.monotonic() < deadline:
        rounds += 1
        for subject, child in list(active):
            try:
                windows[subject.name].append(child.request("window", feeds, rule))
            except ChildError as exc:
                _failed(subject, exc)
                active.remove((subject, child))
                continue
            estimates[subject.name].append(p50(windows[subject.name]))
        if all(stable(estimates[s.name], rule) for s, _ in active):
            break
    eager = windows.get("eager")
    for subject, _ in loaded:
        own = windows.get(subject.name)
        if subject.error or not own:
            continue
        recent = estimates[subject.name][-rule.stable_windows :]
        figures = timing(own, batch, stable(estimates[subject.name], rule), spread(recent)).to_json()
        figures["speedup"] = None
        if eager:  # paired: eager's window and this one's of the same round, so drift cancels
            ratios = [float(np.median(e) / np.median(w)) for e, w in zip(eager, own, strict=False)]
            figures["speedup"] = round(float(np.median(ratios)), 3)
        subject.timings[batch] = figures


def bench_model(folder: Path, manifest: ModelManifest, options: BenchOptions, work: Path) -> ModelBench:
    """Measure the eager model and every verified artifact of one published model."""
    result = ModelBench(manifest.name, manifest.framework, folder)
    decision = folder_trust(folder / "manifest.json", trust=options.trust, verify_key=options.verify_key)
    cases = published_cases(folder, manifest)
    feeds = {b: batch_feeds(manifest, cases[0].feeds, b) for b in options.batches}
    default_pool().start({"torch" if manifest.framework == "torch" else "tensorflow"})
    loaded: list[tuple[Subject, Child]] = []
    try:
        for subject, load, args in _plan(folder, manifest, decision, cases, work, options.timeout_s):
            result.subjects.append(subject)
            child = _load(subject, load, args, options, manifest.name) if load else None
            if child is not None:
                loaded.append((subject, child))
        for batch, batch_input in feeds.items():
            if isinstance(batch_input, str):
                for subject, _ in loaded:
                    subject.skipped[batch] = batch_input
                continue
            _interleaved(loaded, batch_input, batch, options.rule)
        for subject, child in loaded:
            if not subject.error:
                subject.memory = child.request("memory")
    finally:
        for _, child in loaded:
            child.stop()
    return result
