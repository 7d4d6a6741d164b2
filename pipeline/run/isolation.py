"""Run each exporter in a process of its own, so that routes cannot change each other's results.

Exporters keep process-wide state: after torch.export fails on an LSTM, for instance, torch.onnx's
dynamo exporter in the same process freezes that LSTM's sequence length, while in a fresh process it
keeps it dynamic. A report that depends on which route ran first cannot be trusted, so every route
that writes a file exports in a fresh child: it rebuilds the model from its reference and seed (the
same weights), exports, and hands back the `ExportResult`. A child that crashes becomes an export
error; the run goes on.

Children are validators.children's: forks of the pool's forkserver, preloaded with the frameworks in
use, so a child starts in about a tenth of a second instead of re-importing them; an export and the
eager reference have a time limit like every request to a child. A process killed outright leaves its
temporary folder behind: `sweep_stale_temp`, called when a run starts, removes those of processes that
are gone.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from dataclasses import fields, replace
from typing import Any

from graphmint.exporters.base import ExportContext, ExportResult, Route, first_line
from graphmint.pipeline.spec.inputs import shape_grid
from graphmint.pipeline.spec.sources import ModelRef, frameworks_of
from graphmint.validators._lifeline import sweep_stale_temp
from graphmint.validators.children import ChildError, default_pool, ended
from graphmint.validators.isolated import Live, RunnerHost

__all__ = ["close_live", "eager_isolated", "export_isolated", "preload", "sweep_stale_temp"]


def preload(refs: Iterable[str | ModelRef] | None = None) -> None:
    """Start the forkserver, preloading every framework this process has imported so far.

    With `refs`, only where those references name their frameworks (a model's module by its imports,
    a model folder or file by its kind), which it then preloads too: it imports them while this
    process imports the modules. Where they name none, it is left to start later (call `preload()`
    once the modules are imported)."""
    frameworks = set() if refs is None else frameworks_of(refs)
    if refs is None or frameworks:
        default_pool().start(frameworks)


def _export_job(
    ref: str | ModelRef,
    seed: int,
    framework: str,
    route: str,
    index: int,
    ctx: dict[str, Any],
    probe: bool = False,
) -> ExportResult:
    """In the child: build the model afresh, run one strategy of one route, return its result (its
    artifact's in-process object included)."""
    from graphmint.exporters import get_route
    from graphmint.pipeline.spec.loader import build_model

    built, model = build_model(ref, seed)
    if probe:  # the model with every layer's output after its own (pipeline.run.explain)
        model, _ = built.probe(model, ctx["input_names"])
    _, strategy = get_route(framework, route).strategies[index]
    return strategy(ExportContext(model=model, **ctx))


#: environment variables that put a compiler's own cache under graphmint's cache folder, so that a run
#: after a small change compiles again only what changed (Inductor's FX graph and AOTAutograd caches)
COMPILER_CACHES = {"TORCHINDUCTOR_CACHE_DIR": "inductor"}


class _Exporting(RunnerHost):
    """The host of an export child. The object an in-process route makes (a torch.compile'd module, a
    concrete tf.function) stays in the child, which then serves it to the route's runner."""

    def __init__(self, compiler_cache: str | None = None) -> None:
        super().__init__("", None)
        if compiler_cache:  # this child's own environment: read by the compilers when they first run
            for variable, folder in COMPILER_CACHES.items():
                os.environ[variable] = os.path.join(compiler_cache, folder)

    def run(self, *job: Any) -> ExportResult:
        result = _export_job(*job)
        if result.artifact is not None:
            self.artifact = result.artifact
            result.artifact = replace(result.artifact, in_process=None)
        return result


def _compiler_cache() -> str | None:
    from graphmint.pipeline.run.cache import COMPILERS, cache_root

    root = cache_root()
    return None if root is None else str(root / COMPILERS)


def export_isolated(
    route: Route,
    index: int,
    ctx: ExportContext,
    ref: str | ModelRef,
    seed: int,
    timeout_s: float | None = None,
    probe: bool = False,
) -> ExportResult:
    """Run strategy `index` of `route` in a fresh child process; never raises for the exporter's sake.
    A child still exporting after `timeout_s` is killed and the strategy failed. With `probe`, the
    child exports the model's per-layer probe (Framework.probe) instead of the model. What native code
    printed in the child is appended to the result's log.

    An in-process route (no file) makes its object in the child, and its artifact's `in_process` is
    then that child (`Live`), kept running for the runner: the caller closes it when it is checked."""
    state = {f.name: getattr(ctx, f.name) for f in fields(ctx) if f.name != "model"}
    job = (ref, seed, route.framework, route.name, index, state, probe)
    child = default_pool().spawn(
        _Exporting, _compiler_cache(), name=f"{route.name} exporter", timeout_s=timeout_s
    )
    live = False
    try:
        result: ExportResult = child.request("run", *job)
        live = route.in_process and result.artifact is not None
    except ChildError as exc:
        return ExportResult.failed(_export_failure(route, exc, timeout_s), overran=exc.kind == "timeout")
    except Exception as exc:
        return ExportResult.failed(first_line(exc))
    finally:
        printed = "" if live else child.stop()
    if live:
        assert result.artifact is not None
        result.artifact.in_process = Live(child)
    if printed.strip():
        result.log = f"{result.log.rstrip()}\n--- native output ---\n{printed}".lstrip()
    return result


def close_live(artifact: Any) -> None:
    """Stop the child an in-process route's object lives in, where it still runs."""
    if isinstance(artifact.in_process, Live):
        artifact.in_process.close()


def _export_failure(route: Route, exc: ChildError, timeout_s: float | None) -> str:
    """Why an export child gave no result: its time ran out, it died (and how), or it failed."""
    if exc.kind == "timeout":
        doing = "compiling" if route.in_process else "exporting"
        return (
            f"{route.name} did not finish {doing} within {timeout_s:g}s (stage: export) and was "
            "stopped: raise --export-timeout"
        )
    if exc.kind == "died":
        signalled = exc.code is not None and exc.code < 0 and exc.code != -signal.SIGKILL
        native = " (a crash in native code?)" if signalled else ""
        return f"the exporter's process {exc.detail}{native}"
    return exc.detail


#: seconds the eager child may take beyond its own limits (starting, sending the outputs back)
EAGER_GRACE_S = 60.0


def _eager_job(spec: Any, timeout_s: float | None) -> tuple[str, Any]:
    """In the child: build the model and run it eagerly on the whole grid; the spec (with the inputs
    read off the model) and the outputs, or the UsageError / error that stopped it."""
    from graphmint.pipeline.errors import UsageError
    from graphmint.pipeline.run.reference import eager_reference

    try:
        return ("ok", eager_reference(spec, timeout_s))
    except UsageError as exc:
        return ("usage", str(exc))
    except BaseException as exc:  # a bug of graphmint's, reported in the parent
        return ("error", first_line(exc))


def eager_isolated(spec: Any, timeout_s: float | None) -> Any:
    """The model built and run eagerly on its grid in a child process first: its EagerRun.

    A factory or forward that kills its process (a segfault, an abort, `os._exit`) or hangs in native
    code past its time would take graphmint down with it; in the child it is a ModelLoadError (exit
    2) naming the signal or the time. UsageErrors raised in the child are raised here as they were.
    """
    from graphmint.pipeline.errors import ModelLoadError, UsageError

    points = len(shape_grid(spec)) if spec.inputs else 8
    limit = None if timeout_s is None else timeout_s * (2 + points) + EAGER_GRACE_S
    try:
        status, payload = default_pool().call(_eager_job, spec, timeout_s, name="eager", timeout_s=limit)
    except ChildError as exc:
        if exc.kind == "timeout":
            raise ModelLoadError(
                f"building and running {spec.ref!r} eagerly did not finish within {limit:g}s "
                "(stuck in native code?): fix the model, or raise --timeout"
            ) from None
        if exc.kind == "died":
            raise ModelLoadError(
                f"building or running {spec.ref!r} eagerly {ended(exc.code or 0)}: the model's "
                "code crashed its process (graphmint runs it in a child first, so nothing else was affected)"
            ) from None
        raise RuntimeError(f"the eager reference failed in its child process: {exc.detail}") from None
    if status == "usage":
        raise UsageError(payload)
    if status == "error":
        raise RuntimeError(f"the eager reference failed in its child process: {payload}")
    return payload
