"""Run the cells (model × route) of many models at once: on this machine, or as tasks of a Ray cluster.

The main thread prepares the models one after the other (the eager run in its child, the model built
here, the staging folder opened) and hands their cells to an executor; a model is published
(atomically, pipeline.publish.staging) as soon as every cell of it is done, while the next models run.

- `LocalExecutor` runs `jobs` cells at once. A cell's work happens in fresh child processes
  (validators.children: one per export strategy, one per runtime check, each gone after its request),
  forked from a forkserver that preloads the frameworks: a cell starts in a tenth of a second, and
  memory is bounded by the children alive at once. The threads that drive the cells only wait on their
  pipes and compare numbers. Routes without a file (torch.compile, tf.function) compile and are
  checked in a child of their own too, under the same time limits: no framework is ever driven from
  two threads, and no compile can hang the run.
- `RayExecutor` makes each cell a Ray task in a fresh worker process (max_calls=1), retried when its
  worker is lost, with one CPU, and a GPU where the route has a CUDA runner and the cluster has GPUs.
  The worker rebuilds what the cell needs (the model from its reference and seed), runs it into a
  temporary folder and sends its files back as one archive, unpacked into the model's staging folder.
  The models' modules must be importable on the workers (installed, or on a shared path).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import traceback
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from graphmint.exporters import get_route
from graphmint.exporters.base import first_line
from graphmint.exporters.formats import FORMATS
from graphmint.pipeline import interrupts
from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.staging import Staging
from graphmint.pipeline.run.cache import lookup
from graphmint.pipeline.run.isolation import preload
from graphmint.pipeline.run.progress import Progress, SilentProgress
from graphmint.pipeline.run.results import ModelResult, RouteResult
from graphmint.pipeline.run.stages import Cell, Prepared, RunOptions, finish_model, prepare_model, run_model
from graphmint.pipeline.spec.loader import warm
from graphmint.pipeline.spec.specs import ModelSpec
from graphmint.validators.children import default_pool
from graphmint.validators.results import Stage, Status

__all__ = ["LocalExecutor", "RayExecutor", "available_cores", "run_models"]


def available_cores() -> int:
    """The CPUs this process may run on: the default number of cells at once."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _run_cell(cell: Cell, root: Path, options: RunOptions, progress: Progress) -> RouteResult:
    progress.route_started(cell.spec.name, cell.route)
    try:
        result = cell.run(root, options)
    except Exception as exc:  # graphmint's own fault: this route is an error, the model and the run go on
        if interrupts.signalled():
            raise
        shutil.rmtree(root / cell.route, ignore_errors=True)  # nothing half-written is published
        result = RouteResult(
            route=cell.route,
            status=Status.ERROR,
            reason=f"graphmint raised {type(exc).__name__} while checking this route: {first_line(exc)} "
            "(a bug in graphmint, not in the model: the traceback is in the route's log)",
            log=traceback.format_exc(),
        )
    progress.route_finished(cell.spec.name, result)
    return result


class LocalExecutor:
    """`jobs` cells at once on this machine (see the module's docstring)."""

    def __init__(self, jobs: int) -> None:
        self.threads = ThreadPoolExecutor(max(1, jobs), thread_name_prefix="graphmint-cell")

    def submit(self, cell: Cell, root: Path, options: RunOptions, progress: Progress) -> Future[RouteResult]:
        return self.threads.submit(_run_cell, cell, root, options, progress)

    def close(self, cancel: bool = False) -> None:
        if cancel:  # stop the children the cells wait on, so that their threads return at once
            default_pool().kill_all()
        self.threads.shutdown(wait=True, cancel_futures=cancel)


def _cell_task(cell: Cell, options: RunOptions, cwd: str) -> tuple[RouteResult, bytes]:
    """In a Ray worker: run the cell into a temporary folder; its result and its files as a tar archive."""
    if os.path.isdir(cwd):  # where the driver found the model's module (on its own machine)
        os.chdir(cwd)
        sys.path.insert(0, cwd)
    preload([cell.spec.model_ref])
    warm(cell.spec.model_ref)
    with tempfile.TemporaryDirectory(prefix="graphmint-cell-") as folder:
        result = cell.run(Path(folder), options)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            if (Path(folder) / cell.route).is_dir():
                tar.add(Path(folder) / cell.route, arcname=cell.route)
    return result, archive.getvalue()


class RayExecutor:
    """Each cell a Ray task (see the module's docstring); `jobs` cells in flight at once."""

    def __init__(self, jobs: int, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise UsageError(
                "--executor ray needs Ray, which is not installed: pip install 'graphmint[ray]'"
            ) from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            try:
                ray.init(
                    address=address,
                    num_cpus=jobs if address is None else None,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    configure_logging=False,
                )
            except ConnectionError as exc:
                raise UsageError(
                    f"--ray-address {address}: {exc}: start the cluster or fix the address"
                ) from None
        resources = ray.cluster_resources()
        self.gpus = resources.get("GPU", 0) > 0
        self.task = ray.remote(max_calls=1, max_retries=2)(_cell_task)
        self.threads = ThreadPoolExecutor(max(1, jobs), thread_name_prefix="graphmint-ray")

    def _wants_gpu(self, cell: Cell) -> bool:
        """Whether the cell's format has a runner on a CUDA device (exporters.formats)."""
        return self.gpus and FORMATS[get_route(cell.framework, cell.route).format].wants_gpu

    def _gather(self, cell: Cell, root: Path, options: RunOptions, progress: Progress) -> RouteResult:
        progress.route_started(cell.spec.name, cell.route)
        gpus = 1 if self._wants_gpu(cell) else 0
        ref = self.task.options(num_cpus=1, num_gpus=gpus).remote(cell.portable(), options, os.getcwd())
        try:
            result, archive = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            reason = f"the cell's Ray task failed: {str(exc).strip().splitlines()[-1]}"
            result, archive = (
                RouteResult(route=cell.route, status=Status.ERROR, stage=Stage.EXPORT, reason=reason),
                b"",
            )
        if archive:
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(root, filter="data")
        progress.route_finished(cell.spec.name, result)
        return result

    def submit(self, cell: Cell, root: Path, options: RunOptions, progress: Progress) -> Future[RouteResult]:
        return self.threads.submit(self._gather, cell, root, options, progress)

    def close(self, cancel: bool = False) -> None:
        self.threads.shutdown(wait=True, cancel_futures=cancel)
        if self.started:
            self.ray.shutdown()


def _executor(options: RunOptions) -> LocalExecutor | RayExecutor:
    if options.executor == "ray":
        return RayExecutor(options.jobs, options.ray_address)
    return LocalExecutor(options.jobs)


@dataclass
class _Running:
    """A model whose cells run: its staging folder, open while `closing` is, and the cells' futures."""

    prepared: Prepared
    staged: Staging
    closing: ExitStack
    futures: list[Future[RouteResult]]

    def done(self) -> bool:
        return all(f.done() for f in self.futures)

    def finish(self, options: RunOptions, progress: Progress) -> ModelResult:
        with self.closing:  # the staging folder goes once the model is published, or is not
            self.prepared.result.routes.extend(f.result() for f in self.futures)
            return finish_model(self.prepared, self.staged, options, progress)


def run_models(
    specs: Sequence[ModelSpec], options: RunOptions | None = None, progress: Progress | None = None
) -> list[ModelResult]:
    """Run several models, `options.jobs` cells at once (one after the other with 1), on
    `options.executor`. The forkserver starts first, preloading the frameworks the models' modules
    name, while their modules are imported here: children start warm. Models the cache holds need
    neither: they are published without importing anything of theirs."""
    options = options or RunOptions()
    progress = progress or SilentProgress()
    cached = {spec.name: lookup(spec, options) for spec in specs}  # each model's hit or miss, once
    to_run = [spec for spec in specs if cached[spec.name].hit is None]
    if to_run:
        preload(spec.model_ref for spec in to_run)
        for spec in to_run:
            warm(spec.model_ref)
        preload()  # where the modules named no framework: now that they are imported
    if options.jobs <= 1 and options.executor == "local":
        return [run_model(spec, options, progress, cached[spec.name]) for spec in specs]
    results: dict[str, ModelResult] = {}
    running: list[_Running] = []
    with ExitStack() as folders:  # every staging folder still open: gone once the executor stops
        executor = _executor(options) if to_run else None
        try:
            for spec in specs:
                prepared = prepare_model(spec, options, progress, cached[spec.name])
                if isinstance(prepared, ModelResult):
                    results[spec.name] = prepared
                    continue
                assert executor is not None
                closing = folders.enter_context(ExitStack())
                staged = closing.enter_context(Staging(options.out, spec.name))
                assert staged.path is not None
                futures = [executor.submit(cell, staged.path, options, progress) for cell in prepared.cells]
                running.append(_Running(prepared, staged, closing, futures))
                for done in [r for r in running if r.done()]:  # publish as soon as done
                    results[done.prepared.result.name] = done.finish(options, progress)
                    running.remove(done)
            while running:
                first = running.pop(0)
                wait(first.futures)
                results[first.prepared.result.name] = first.finish(options, progress)
        except BaseException:
            if executor is not None:  # its cells stop writing before their folders go
                executor.close(cancel=True)
                executor = None
            raise
        finally:
            if executor is not None:
                executor.close()
    return [results[spec.name] for spec in specs]
