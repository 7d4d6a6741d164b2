"""The stage sequence: build → reference outputs → export each route → check it from disk → publish."""

from __future__ import annotations

import platform
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from graphmint.exporters import (
    ROUTE_GROUPS,
    ROUTE_MODULES,
    ExportContext,
    Route,
    default_routes,
    expand_routes,
    get_route,
)
from graphmint.exporters.base import ExportState, Precision, clean_text
from graphmint.exporters.formats import packages_for
from graphmint.models.frameworks import Framework, package_versions
from graphmint.pipeline.errors import SpecError
from graphmint.pipeline.publish.golden import write_golden
from graphmint.pipeline.publish.manifest import GRAPHMINT_VERSION, write_model_manifest
from graphmint.pipeline.publish.staging import Staging, check_target, hash_files
from graphmint.pipeline.publish.trust import sign_manifest, signing_key_path
from graphmint.pipeline.run.cache import Lookup, lookup, publish_cached
from graphmint.pipeline.run.contexts import DEFAULT_EXPORT_TIMEOUT_S, export_context, route_budgets
from graphmint.pipeline.run.explain import Divergence, ExplainContext, explain
from graphmint.pipeline.run.isolation import close_live, eager_isolated, export_isolated, preload
from graphmint.pipeline.run.progress import Progress, SilentProgress
from graphmint.pipeline.run.reference import (
    cases_of,
    check_builds_agree,
    eager_run,
    output_specs,
    samples,
    vacuous_outputs,
    with_inputs,
)
from graphmint.pipeline.run.results import ModelResult, ModelSource, RouteResult
from graphmint.pipeline.run.verdicts import explainable
from graphmint.pipeline.spec.inputs import check_grid_budget
from graphmint.pipeline.spec.loader import build_model, warm
from graphmint.pipeline.spec.sources import provenance, source_of
from graphmint.pipeline.spec.specs import ModelSpec
from graphmint.validators.check import Case, check_runtimes
from graphmint.validators.content import reduced_tensors
from graphmint.validators.results import DivergenceRecord, RouteDetails, Stage, Status
from graphmint.validators.verdict import Attempt, Judging, Verdict, route_verdict

#: how a strategy ends the chain without an artifact: it does not apply, or it cannot be produced
_ENDS_CHAIN = (ExportState.SKIPPED, ExportState.UNSUPPORTED)

__all__ = ["Cell", "Prepared", "RunOptions", "finish_model", "prepare_model", "resolve_routes", "run_model"]


@dataclass(frozen=True)
class RunOptions:
    """Where results go and which routes run (None: each model's own list, else the defaults)."""

    out: Path = Path("artifacts")
    routes: tuple[str, ...] | None = None
    #: routes whose failure is reported but does not fail the model (nor block its publication)
    allow_fail: tuple[str, ...] = ()
    #: seconds a runtime may take to load an artifact or run one input before it is stopped
    timeout_s: float = 300.0
    #: a cross-check runtime (ORT without optimizations, the reference evaluator) that fails where the
    #: deployment runtime passes fails the route, instead of giving a warning
    strict_runtimes: bool = False
    #: Ed25519 private key (PEM) that signs each published manifest (default: $GRAPHMINT_SIGNING_KEY)
    signing_key: Path | None = None
    #: build and run the model eagerly in a child process first, so that a factory or forward that
    #: crashes or hangs in native code is an error, not the end of graphmint
    isolate_eager: bool = True
    #: seconds one exporter (one strategy of a route, in its child process) may take, a compile of
    #: torch.compile or tf.function included; None: no limit
    export_timeout_s: float | None = DEFAULT_EXPORT_TIMEOUT_S
    #: a vacuous comparison (an output that is zero, or the same for any input) fails the route,
    #: instead of giving a warning
    strict: bool = False
    #: compare every layer of every route whose artifact ran, not only of those that fail on numbers,
    #: and publish nothing (`graphmint explain`)
    explain: bool = False
    #: publish a model again from the cache (pipeline.run.cache) when nothing that decides it changed
    cache: bool = True
    #: cells (model × route) run at once by `run_models` (pipeline.run.executors); 1: one at a time
    jobs: int = 1
    #: where cells run: this machine, or a Ray cluster
    executor: Literal["local", "ray"] = "local"
    #: the Ray cluster to join ("auto", "ray://head:10001"); None starts one on this machine
    ray_address: str | None = None

    def cache_key_options(self) -> dict[str, Any]:
        """The options that decide a model's result (not where it goes, nor how it is signed)."""
        keep = ("routes", "allow_fail", "timeout_s", "strict_runtimes", "export_timeout_s", "strict")
        return {name: getattr(self, name) for name in keep}


def resolve_routes(
    spec: ModelSpec, framework: Framework, requested: Sequence[str] | None
) -> tuple[list[Route], list[str]]:
    """The routes to run for this model, and the requested ones that belong to another framework."""
    names = list(requested) if requested is not None else list(spec.routes or default_routes(framework.name))
    names = expand_routes(framework.name, names)
    known = [name for fw, name in ROUTE_MODULES if fw == framework.name]
    anywhere = {name for _, name in ROUTE_MODULES}
    unknown = [n for n in names if n not in anywhere]
    if unknown:
        choices = ", ".join([*sorted(anywhere), *(f"{g} (group)" for g in ROUTE_GROUPS)])
        raise SpecError(f"unknown route {', '.join(map(repr, unknown))}; choose from: {choices}")
    elsewhere = [n for n in names if n not in known]
    if elsewhere and len(elsewhere) == len(names):
        raise SpecError(
            f"route {', '.join(map(repr, elsewhere))} does not apply to a {framework.name} model "
            f"{spec.name!r}; choose from: {', '.join(known)}"
        )
    runnable = [get_route(framework.name, n) for n in dict.fromkeys(names) if n in known]
    return runnable, list(dict.fromkeys(elsewhere))


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def run_route(
    route: Route,
    spec: ModelSpec,
    base: ExportContext,
    cases: Sequence[Case],
    root: Path,
    options: RunOptions,
    judging: Judging,
) -> RouteResult:
    """Try the route's strategies in order until one's artifact passes its check from disk; the
    route's verdict (validators.verdict) from what they did."""
    timeout_s, strict_runtimes = options.timeout_s, options.strict_runtimes
    export_timeout_s = options.export_timeout_s
    start = time.perf_counter()
    workdir = root / route.name
    ctx = replace(base, workdir=workdir, route=route.name, budgets=route_budgets(spec, route, cases[0]))
    first_output, first_dtype = next(iter((k, str(v.dtype)) for k, v in cases[0].expected.items()))
    tol = spec.tolerances.resolve(route.name, first_output, first_dtype)
    result = RouteResult(
        route=route.name,
        status=Status.ERROR,
        stage=Stage.EXPORT,
        atol=tol.atol,
        rtol=tol.rtol,
        precision=route.precision,
    )

    def tolerance_for(output: str, dtype: str) -> Any:
        return spec.tolerances.criterion(route.name, output, dtype, route.precision)

    attempts: list[Attempt] = []
    passed = False
    for index, (label, _) in enumerate(route.strategies):
        _fresh(workdir)
        exported = export_isolated(route, index, ctx, spec.model_ref, spec.seed, export_timeout_s)
        result.log += _log_section(f"export: {label}", exported.log)
        if exported.state in _ENDS_CHAIN or exported.artifact is None:
            state = exported.state if exported.state in _ENDS_CHAIN else ExportState.FAILED
            attempts.append(Attempt(label, state, exported.reason, exported.overran))
            if state in _ENDS_CHAIN:
                break
            continue
        artifact = replace(exported.artifact, imports=source_of(spec.model_ref).imports(spec.model_ref))
        try:
            result.checks = check_runtimes(artifact, cases, tolerance_for, timeout_s)
        finally:
            close_live(artifact)
        result.log += "".join(_log_section(f"{label} on {c.runner}", c.log) for c in result.checks)
        result.exporter = artifact.exporter
        facts = result.checks[0].facts.dump() if result.checks else {}
        made = {k: v for k, v in artifact.details.items() if v is not None}
        result.details = RouteDetails(**made, **facts)
        attempt = Attempt(label, ExportState.EXPORTED, checks=result.checks, wrote=any(workdir.iterdir()))
        # counted from disk: none reduced is unsupported, unless the runtime itself reports computing in
        # the route's precision (OpenVINO's bf16 hint applies to a float32 IR)
        applied = result.checks[0].facts.inference_precision if result.checks else None
        reduced = route.precision != Precision.FP32 and applied != route.precision
        if attempt.checks_pass(strict_runtimes) and reduced and artifact.path:
            held = reduced_tensors(artifact.path)
            result.details.reduced_tensors = held
            attempt = replace(attempt, reduced_tensors=held)
        attempts.append(attempt)
        passed = attempt.checks_pass(strict_runtimes) and attempt.reduced_tensors != 0
        if passed:
            result.runner = artifact.runner
            result.artifact = artifact.path.relative_to(root).as_posix() if artifact.path else None
            result.files = hash_files(root, workdir)
        if attempt.ends(strict_runtimes):
            break

    def explained(verdict: Verdict) -> str:
        """Where the numbers part: the first diverging layer."""
        if not explainable(verdict, result.check, route.name in spec.known_failures, options.explain):
            return ""
        job = ExplainContext(
            route, len(attempts) - 1, spec, base, cases[0], root, timeout_s, export_timeout_s
        )
        found = explain(job, failed=verdict.status == Status.FAILED)
        if isinstance(found, Divergence):
            result.details.divergence = DivergenceRecord.model_validate(found.to_json())
        return found.line() if isinstance(found, Divergence) else found

    if not passed or not any(workdir.iterdir()):
        shutil.rmtree(workdir, ignore_errors=True)
    verdict = route_verdict(attempts, replace(judging, root=root), result.log, explained)
    result.seconds = time.perf_counter() - start
    return verdict.onto(result)


def _log_section(title: str, text: str) -> str:
    return f"===== {title} =====\n{clean_text(text).rstrip()}\n\n" if text.strip() else ""


@dataclass
class Cell:
    """One (model, route): the route's export and every check of it, with all they need. With no model
    in `base` it is picklable, so that any executor can run it where it likes (pipeline.run.executors).
    Every route, in-process ones (torch.compile, tf.function) included, exports in a child of its own:
    the model here is only the per-layer probe's eager side."""

    route: str
    framework: str
    spec: ModelSpec
    base: ExportContext
    cases: list[Case]
    vacuous: dict[str, str]
    #: a route the user named must pass; a default one may be unsupported for the model
    required: bool

    def portable(self) -> Cell:
        """The cell without the eager model (rebuilt from the spec's reference and seed if needed)."""
        return replace(self, base=replace(self.base, model=None))

    def run(self, root: Path, options: RunOptions) -> RouteResult:
        """Export and check the route into `root/<route>`; the route's verdict."""
        route = get_route(self.framework, self.route)
        judging = Judging(
            route=route.name,
            precision=route.precision,
            unreduced=route.unreduced,
            strict_runtimes=options.strict_runtimes,
            strict=options.strict,
            required=self.required,
            known_failure=self.spec.known_failures.get(route.name),
            vacuous=self.vacuous,
            allow_fail=route.name in options.allow_fail,
        )
        return run_route(route, self.spec, self.base, self.cases, root, options, judging)


@dataclass
class Prepared:
    """A model built and run eagerly, its cells ready to run into a staging folder the caller opens
    (`with Staging(options.out, name) as staged:`) and hands to `finish_model`."""

    result: ModelResult
    cells: list[Cell]
    #: the grid points' inputs and eager outputs: the golden data published with the model
    cases: list[Case]
    #: routes named that belong to the other framework: reported as skipped
    elsewhere: list[str]
    #: the cache's answer for the model (pipeline.run.cache.lookup): where its published run is kept
    cached: Lookup
    signing_key: Path | None


def prepare_model(
    spec: ModelSpec, options: RunOptions, progress: Progress, cached: Lookup | None = None
) -> ModelResult | Prepared:
    """Check the spec, build the model and run it eagerly: its cells, or its result where the cache
    holds it (`cached`: the cache's answer, asked here where not given), published already.

    Raises `UsageError` subclasses for a model or spec the user must fix.
    """
    if spec.inputs:
        check_grid_budget(spec)
        samples(spec)  # a sample that does not fit the inputs: one line before anything is built
    check_target(options.out, spec.name)
    signing_key = signing_key_path(options.signing_key)
    cached = lookup(spec, options) if cached is None else cached
    if cached.hit is not None:
        return publish_cached(spec.name, *cached.hit, options.out, progress, signing_key)
    eager = None
    if options.isolate_eager:  # a factory or forward that crashes takes a child down, not graphmint
        preload([spec.model_ref])  # the forkserver imports the framework while the model's module does
        warm(spec.model_ref)  # its module and framework imported first: children start warm
        eager = eager_isolated(spec, options.timeout_s)
        spec = eager.spec
    framework, model = build_model(spec.model_ref, spec.seed, options.timeout_s)
    if eager is not None:  # every child rebuilds the model: this build must be the child's
        check_builds_agree(spec, framework, model, eager.weights_digest, options.timeout_s)
    spec = with_inputs(spec, framework, model)
    routes, elsewhere = resolve_routes(spec, framework, options.routes)
    eager = eager or eager_run(spec, framework, model, options.timeout_s)
    cases = cases_of(spec, eager)
    versions = {"graphmint": GRAPHMINT_VERSION, "python": platform.python_version()}
    versions |= package_versions(*packages_for(framework.name))  # what decides its formats
    result = ModelResult(
        name=spec.name,
        framework=framework.name,
        inputs=[i.to_json() for i in spec.inputs],
        outputs=output_specs(spec, cases),
        versions=versions,
        dims={d: {"min": r.min, "max": r.max, "example": r.example} for d, r in spec.dims.items()},
        rule=spec.tolerances.gating_rule,
        noise=eager.noise(),
        float64_reference=eager.float64_reason or "ok",
        vacuous=vacuous_outputs(eager, cases, lambda o, d: spec.tolerances.criterion("", o, d)),
        model=ModelSource(seed=spec.seed, **provenance(spec.model_ref, model)),
        routes=[],
    )
    base = export_context(spec, framework, model, cases)
    required = set(options.routes or spec.routes or ())
    cells = [
        Cell(r.name, framework.name, spec, base, list(cases), result.vacuous, r.name in required)
        for r in routes
    ]
    progress.model_started(spec.name, framework.name, [r.name for r in routes])
    return Prepared(result, cells, list(cases), elsewhere, cached, signing_key)


def finish_model(prepared: Prepared, staged: Staging, options: RunOptions, progress: Progress) -> ModelResult:
    """Given every cell's result (their files in `staged`, open): publish the model's folder if no route
    failed, keep it in the cache."""
    result = prepared.result
    for name in prepared.elsewhere:
        reason = f"route {name!r} is not one of a {result.framework} model's routes"
        result.routes.append(
            RouteResult(route=name, status=Status.SKIPPED, stage=Stage.EXPORT, reason=reason)
        )
    if result.ok and not options.explain:
        assert staged.path is not None
        result.golden = write_golden(staged.path, prepared.cases)
        manifest = write_model_manifest(staged.path, result)
        if prepared.signing_key is not None:
            sign_manifest(manifest, prepared.signing_key)
        result.published = staged.commit()
    prepared.cached.keep(result)
    progress.model_finished(result)
    return result


def run_model(
    spec: ModelSpec,
    options: RunOptions = RunOptions(),
    progress: Progress | None = None,
    cached: Lookup | None = None,
) -> ModelResult:
    """Build one model, run its cells one after the other, publish the passing artifacts if no route
    failed (pipeline.run.executors runs the cells of many models at once).

    Raises `UsageError` subclasses for a model or spec the user must fix; route failures are results.
    """
    progress = progress or SilentProgress()
    prepared = prepare_model(spec, options, progress, cached)
    if isinstance(prepared, ModelResult):
        return prepared
    with Staging(options.out, spec.name) as staged:  # gone on any exit, unless published
        assert staged.path is not None
        for cell in prepared.cells:
            progress.route_started(spec.name, cell.route)
            route_result = cell.run(staged.path, options)
            prepared.result.routes.append(route_result)
            progress.route_finished(spec.name, route_result)
        return finish_model(prepared, staged, options, progress)
