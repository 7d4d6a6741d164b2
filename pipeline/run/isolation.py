"""Run each exporter in a process of its own, so that routes cannot change each other's results.

Exporters keep process-wide state: after torch.export fails on an LSTM, for instance, torch.onnx's
dynamo exporter in the same process freezes that LSTM's sequence length, while in a fresh process it
keeps it dynamic. A report that depends on which route ran first cannot be trusted, so every route
that writes a file exports in a fresh child: it rebuilds the model from its reference and seed (the
same weights), exports, and hands back the `ExportResult`. A child that crashes becomes an export
error; the run goes on.

Children come from validators.isolated.children_context: forks of a forkserver preloaded with the
frameworks in use, so a child starts in about a tenth of a second instead of re-importing them. The
forkserver runs with a fixed PYTHONHASHSEED (an export is the same bytes in every run), and it and its
children end with this process, even one killed outright. Such a process leaves its temporary folder
behind: `sweep_stale_temp`, called when a run starts, removes those of processes that are gone.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import sys
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import fields
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from graphmint.exporters.base import ExportContext, ExportResult, Route, first_line
from graphmint.pipeline.spec.inputs import shape_grid
from graphmint.validators.isolated import children_context, sweep_stale_temp

__all__ = ["eager_isolated", "export_isolated", "preload", "sweep_stale_temp"]


#: top-level modules whose import in a model's module means its framework: torch or tensorflow
_FRAMEWORK_OF = {
    "torch": "torch",
    "transformers": "torch",
    "tensorflow": "tensorflow",
    "keras": "tensorflow",
    "keras_hub": "tensorflow",
    "tf_keras": "tensorflow",
}
_IMPORTS = re.compile(r"^\s*(?:import|from)\s+(\w+)", re.MULTILINE)


def frameworks_named_in(refs: Iterable[str]) -> set[str]:
    """The frameworks that the modules of `module:callable` references import by name, read from their
    source without running it (its parent packages are imported, as loading the model would anyway).
    A module that cannot be found, or is not a plain source file, tells nothing."""
    found: set[str] = set()
    for ref in refs:
        try:
            spec = importlib.util.find_spec(ref.partition(":")[0])
        except (Exception, SystemExit):  # a parent package that fails: loading the model will say so
            continue
        if spec is None or not (spec.origin or "").endswith(".py"):
            continue
        with contextlib.suppress(OSError, UnicodeDecodeError):
            source = Path(spec.origin).read_text()  # type: ignore[arg-type]
            found.update(fw for top in _IMPORTS.findall(source) if (fw := _FRAMEWORK_OF.get(top)))
    return found


def preload(refs: Iterable[str] | None = None) -> None:
    """Start the forkserver, preloading every framework this process has imported so far.

    With `refs`, only where the modules of those references name their frameworks, which it then
    preloads too: it imports them while this process imports the modules. Where they name none, it is
    left to start later (call `preload()` once the modules are imported)."""
    frameworks = set() if refs is None else frameworks_named_in(refs)
    if refs is None or frameworks:
        children_context(frameworks)


def _export_job(
    ref: str,
    seed: int,
    framework: str,
    route: str,
    index: int,
    ctx: dict[str, Any],
    cwd: str,
    probe: bool = False,
) -> ExportResult:
    """In the child: build the model afresh, run one strategy of one route, return its result.

    It works in the parent's current folder (the forkserver's may be another one): the model's
    module is found, and relative paths mean, what they mean in the parent."""
    from graphmint.exporters import get_route
    from graphmint.pipeline.spec.loader import build_model

    os.chdir(cwd)

    with tempfile.TemporaryFile() as native:
        with _descriptors_to(native.fileno()):
            built, model = build_model(ref, seed)
            if probe:  # the model with every layer's output after its own (pipeline.run.explain)
                model, _ = built.probe(model, ctx["input_names"])
            _, strategy = get_route(framework, route).strategies[index]
            result = strategy(ExportContext(model=model, **ctx))
        native.seek(0)
        printed = native.read().decode(errors="replace")
    if printed.strip():
        result.log = f"{result.log.rstrip()}\n--- native output ---\n{printed}".lstrip()
    if result.artifact is not None:
        result.artifact.in_process = None
    return result


@contextlib.contextmanager
def _descriptors_to(fd: int) -> Iterator[None]:
    """Point descriptors 1 and 2 at `fd` for the block: what native code prints goes to the route's log."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def export_isolated(
    route: Route,
    index: int,
    ctx: ExportContext,
    ref: str,
    seed: int,
    timeout_s: float | None = None,
    probe: bool = False,
) -> ExportResult:
    """Run strategy `index` of `route` in a fresh child process; never raises for the exporter's sake.
    A child still exporting after `timeout_s` is killed and the strategy failed. With `probe`, the
    child exports the model's per-layer probe (Framework.probe) instead of the model."""
    state = {f.name: getattr(ctx, f.name) for f in fields(ctx) if f.name != "model"}
    executor = ProcessPoolExecutor(max_workers=1, mp_context=children_context())
    try:
        future = executor.submit(
            _export_job, ref, seed, route.framework, route.name, index, state, os.getcwd(), probe
        )
        return future.result(timeout=timeout_s)
    except FutureTimeout:
        for process in list(getattr(executor, "_processes", {}).values()):
            process.kill()
        return ExportResult.failed(
            f"the exporter did not finish within {timeout_s:g}s and was stopped: raise --export-timeout"
        )
    except BrokenProcessPool:
        return ExportResult.failed(
            "the exporter's process died abruptly (a crash in native code, or out of memory)"
        )
    except Exception as exc:
        return ExportResult.failed(first_line(exc))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


#: seconds the eager child may take beyond its own limits (starting, sending the outputs back)
EAGER_GRACE_S = 60.0


def _eager_job(conn: Connection, spec: Any, timeout_s: float | None, cwd: str) -> None:
    """In the child: build the model and run it eagerly on the whole grid; send back the spec (with
    the inputs read off the model) and the outputs, or the UsageError / error that stopped it."""
    from graphmint.pipeline.errors import UsageError
    from graphmint.pipeline.run.reference import eager_reference

    os.chdir(cwd)  # build_model finds the model's module there, as in the parent
    reply: tuple[str, Any]
    with tempfile.TemporaryFile() as native, _descriptors_to(native.fileno()):
        try:
            reply = ("ok", eager_reference(spec, timeout_s))
        except UsageError as exc:
            reply = ("usage", str(exc))
        except BaseException as exc:  # a bug of graphmint's, reported in the parent
            reply = ("error", first_line(exc))
    conn.send(reply)
    conn.close()


def eager_isolated(spec: Any, timeout_s: float | None) -> Any:
    """The model built and run eagerly on its grid in a child process first: its EagerRun.

    A factory or forward that kills its process (a segfault, an abort, `os._exit`) or hangs in native
    code past its time would take graphmint down with it; in the child it is a ModelLoadError (exit
    2) naming the signal or the time. UsageErrors raised in the child are raised here as they were.
    """
    from graphmint.pipeline.errors import ModelLoadError, UsageError

    context = children_context()
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=_eager_job, args=(send, spec, timeout_s, os.getcwd()), name="graphmint-eager", daemon=True
    )
    process.start()
    send.close()
    points = len(shape_grid(spec)) if spec.inputs else 8
    limit = None if timeout_s is None else timeout_s * (2 + points) + EAGER_GRACE_S
    try:
        if not receive.poll(limit):
            raise ModelLoadError(
                f"building and running {spec.ref!r} eagerly did not finish within {limit:g}s "
                "(stuck in native code?): fix the model, or raise --timeout"
            )
        status, payload = receive.recv()
    except EOFError:
        process.join(10)
        raise ModelLoadError(
            f"building or running {spec.ref!r} eagerly {_ended(process.exitcode)}: the model's code "
            "crashed its process (graphmint runs it in a child first, so nothing else was affected)"
        ) from None
    finally:
        receive.close()
        if process.is_alive():
            process.join(10)
        if process.is_alive():
            process.kill()
            process.join()
    if status == "usage":
        raise UsageError(payload)
    if status == "error":
        raise RuntimeError(f"the eager reference failed in its child process: {payload}")
    return payload


def _ended(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed its process with {signal.Signals(-code).name} ({signal.strsignal(-code)})"
        except ValueError:
            return f"killed its process with signal {-code}"
    return f"ended its process with exit code {code}"
