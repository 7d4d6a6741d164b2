"""Where a mismatch starts: the first layer whose output an artifact computes differently from eager.

The route's own exporter exports the model's probe (`Framework.probe`: the model's outputs, then every
layer's output), the route's runner runs it at the example point, and each layer is judged as an output
is: against the float64 probe by the noise rule (or the model's own rule). Layers are taken in the
order the eager model finished them, so with nested modules the innermost comes first; the first that
breaks the rule is where the graph parts from the eager model, and the last that held before it is
named beside it. Layers after the first see its error, so they are reported but not blamed.
"""

from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.exporters.base import ExportContext, Route, first_line
from graphmint.exporters.formats import FORMATS
from graphmint.models.frameworks import Framework, get_framework
from graphmint.pipeline.run.isolation import close_live, export_isolated
from graphmint.pipeline.spec.specs import ModelSpec
from graphmint.validators.check import Case, run_once
from graphmint.validators.children import default_pool
from graphmint.validators.compare import compare_output
from graphmint.validators.details import RuntimeTrace

__all__ = ["Divergence", "ExplainContext", "LayerError", "explain"]


@dataclass(frozen=True)
class LayerError:
    name: str
    kind: str
    max_abs_error: float | None
    noise_multiple: float | None
    passed: bool
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.name,
            "kind": self.kind,
            "max_abs_error": self.max_abs_error,
            "noise_multiple": self.noise_multiple,
            "passed": self.passed,
        }


@dataclass
class Divergence:
    """Each layer's error at one grid point, in the order the eager model finished them."""

    point: str
    layers: list[LayerError] = field(default_factory=list)
    #: the probe's own outputs (the model's, computed beside every layer's) part from eager as the
    #: route's did; False where the route failed but the probe's outputs agree: the per-layer
    #: comparison then cannot say where the route's failure starts
    reproduced: bool = True
    #: the runtime's own trace at the same point (Format.tracer), or why there is none ('' for a format
    #: with no tracer)
    runtime_trace: RuntimeTrace | str = ""

    @property
    def first(self) -> LayerError | None:
        return next((layer for layer in self.layers if not layer.passed), None)

    @property
    def last_matching(self) -> LayerError | None:
        first = self.first
        before = self.layers[: self.layers.index(first)] if first else self.layers
        return next((layer for layer in reversed(before) if layer.passed), None)

    def line(self) -> str:
        trace = self.runtime_trace
        said = trace.line() if isinstance(trace, RuntimeTrace) else trace
        return f"{self._layers_line()}; {said}" if said else self._layers_line()

    def _layers_line(self) -> str:
        first, last = self.first, self.last_matching
        if not self.reproduced:
            return (
                f"the per-layer comparison does not reproduce the failure: at {self.point} the model "
                f"exported again with every layer as an output computes what eager computes "
                f"({len(self.layers)} layers), so the failure needs the whole graph as the route "
                "exported it and cannot be placed at a layer"
            )
        if first is None:
            return f"at {self.point} every one of {len(self.layers)} layers agrees with eager"
        held = f"; the last layer that still matched: {last.name!r} ({last.kind})" if last else ""
        if first.noise_multiple is not None:
            size = f"{first.noise_multiple:.3g}x the eager model's own error against float64"
        else:
            size = "outside its tolerance"
        if first.max_abs_error is not None:
            error = f"max abs error {first.max_abs_error:.3g}"
        else:  # no finite difference at all: NaN or Inf where eager has numbers, or the reverse
            error = first.message.partition(": ")[2] or "no finite value to compare"
        return f"first diverging layer at {self.point}: {first.name!r} ({first.kind}), {size} ({error}){held}"

    def to_json(self) -> dict[str, Any]:
        first, last = self.first, self.last_matching
        trace = self.runtime_trace
        return {
            "point": self.point,
            "reproduced": self.reproduced,
            "first": first.name if first else None,
            "last_matching": last.name if last else None,
            "layers": [layer.to_json() for layer in self.layers],
            **({"runtime_trace": trace.dump()} if isinstance(trace, RuntimeTrace) else {}),
        }


def _float64_probe(
    framework: Framework, model: Any, names: tuple[str, ...], case: Case
) -> list[np.ndarray] | None:
    try:
        wide, _ = framework.probe(framework.float64_copy(model), names)
        return list(framework.run_float64(wide, case.feeds).values())
    except Exception:  # the noise rule steps back to the scaled one, as for the outputs
        return None


@dataclass(frozen=True)
class ExplainContext:
    """One per-layer comparison to make: strategy `index` of `route`, for the model `spec` builds, at
    `case`; exported with `base`'s context into `root`/.explain, each export and run under its bound."""

    route: Route
    index: int
    spec: ModelSpec
    base: ExportContext
    case: Case
    root: Path
    timeout_s: float | None = None
    export_timeout_s: float | None = None

    @property
    def framework(self) -> Framework:
        return get_framework(self.base.framework)


def explain(job: ExplainContext, failed: bool = True) -> Divergence | str:
    """The per-layer comparison `job` names, or why there is none. `failed`: the route failed at its
    case, so the probe's own outputs must fail too for the comparison to say where (else it says that
    it does not reproduce the failure)."""
    framework, names = job.framework, tuple(job.base.input_names)
    wide = _float64_probe(framework, job.base.model, names, job.case)  # before the probe changes the model
    try:
        probe, layers = framework.probe(job.base.model, names)
    except Exception as exc:
        return f"no per-layer comparison: {first_line(exc)}"
    try:
        found = _compare(job, probe, layers, wide)
        if isinstance(found, Divergence) and not failed:
            found.reproduced = True  # nothing to reproduce: every route is compared (graphmint explain)
    finally:
        getattr(probe, "release", lambda: None)()  # later routes get the model without the probe's hooks
    tracer = FORMATS[job.route.format].tracer
    if isinstance(found, Divergence) and tracer is not None:
        found.runtime_trace = _trace(job, tracer)
    return found


def _trace(job: ExplainContext, tracer: str) -> RuntimeTrace | str:
    """The runtime's own trace at the job's point: the model exported again at its shapes with a debug
    record, then traced by the format's tracer in a child; each step under its bound."""
    module, _, name = tracer.partition(":")
    workdir = job.root / ".explain" / f"{job.route.name}.trace"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    ctx = replace(
        job.base,
        workdir=workdir,
        route=job.route.name,
        dynamic_axes={},
        example_inputs=job.case.feeds,
        calibration=(job.case.feeds,),
        debug_record=True,
    )
    try:
        exported = export_isolated(
            job.route, job.index, ctx, job.spec.model_ref, job.spec.seed, job.export_timeout_s
        )
        if exported.artifact is None or exported.artifact.path is None:
            return f"no runtime trace: the model did not export with a debug record: {exported.reason}"
        fn = getattr(importlib.import_module(module), name)
        path, feeds = str(exported.artifact.path), dict(job.case.feeds)
        found: RuntimeTrace = default_pool().call(
            fn, path, feeds, job.case.label, name=f"{job.route.name} tracer", timeout_s=job.timeout_s
        )
        return found
    except Exception as exc:  # a ChildError (it raised, died or overran its bound) included
        return f"no runtime trace: {first_line(exc)}"
    finally:
        shutil.rmtree(workdir.parent, ignore_errors=True)


def _compare(
    job: ExplainContext, probe: Any, layers: list[tuple[str, str]], wide: list[np.ndarray] | None
) -> Divergence | str:
    """Run the probe eagerly and through the route, and judge each layer."""
    route, spec, case = job.route, job.spec, job.case
    try:
        named = job.framework.run_eager(probe, case.feeds)
    except Exception as exc:
        return f"no per-layer comparison: {first_line(exc)}"
    eager = list(named.values())
    # the modules that ran, in the order they finished (torch); else the layers' own order (Keras)
    order = list(getattr(probe, "fired", {})) or [name for name, _ in layers]
    outputs = len(eager) - len(layers)
    workdir = job.root / ".explain" / route.name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    ctx = replace(job.base, workdir=workdir, route=route.name, output_names=tuple(named))
    ctx = replace(ctx, dynamic_axes={})  # one point is compared: the probe is exported at its shapes
    try:
        exported = export_isolated(
            route, job.index, ctx, spec.model_ref, spec.seed, job.export_timeout_s, probe=True
        )
        if exported.artifact is None:
            why = exported.reason
            return f"no per-layer comparison: the model with every layer as an output did not export: {why}"
        try:
            actual = run_once(exported.artifact, case.feeds, job.timeout_s)
        finally:
            close_live(exported.artifact)
    except Exception as exc:
        return f"no per-layer comparison: the probe did not run: {first_line(exc)}"
    finally:
        shutil.rmtree(workdir.parent, ignore_errors=True)
    if len(actual) != len(eager):
        return (
            f"no per-layer comparison: the probe's artifact gives {len(actual)} outputs, eager {len(eager)}"
        )
    position = {name: outputs + i for i, (name, _) in enumerate(layers)}
    kinds = dict(layers)
    divergence = Divergence(point=case.label)
    model_outputs = [
        compare_output(
            name,
            actual[i],
            eager[i],
            spec.tolerances.criterion(route.name, name, str(eager[i].dtype)),
            wide[i] if wide else None,
        )
        for i, name in enumerate(list(named)[:outputs])
    ]
    divergence.reproduced = not all(c.passed for c in model_outputs)
    for name in order:
        at = position[name]
        expected = eager[at]
        if expected.size == 0:
            continue
        judge = spec.tolerances.criterion(route.name, name, str(expected.dtype))
        compared = compare_output(name, actual[at], expected, judge, wide[at] if wide else None)
        divergence.layers.append(
            LayerError(
                name,
                kinds[name],
                compared.max_abs_error,
                compared.noise_multiple,
                compared.passed,
                compared.message,
            )
        )
    return divergence
