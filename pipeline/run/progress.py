"""Progress as a run goes: one line per model × route on stderr."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from graphmint.pipeline.run.results import ModelResult, RouteResult
from graphmint.validators.results import Status

__all__ = ["ConsoleProgress", "Progress", "SilentProgress"]


class Progress:
    """Hooks the pipeline calls; the base class does nothing."""

    def model_started(self, model: str, framework: str, routes: list[str]) -> None: ...

    def route_started(self, model: str, route: str) -> None: ...

    def route_finished(self, model: str, result: RouteResult) -> None: ...

    def model_finished(self, result: ModelResult) -> None: ...


SilentProgress = Progress


class ConsoleProgress(Progress):
    """One line per cell. One cell at a time, a line opens as the cell starts and closes as it ends;
    with `parallel`, each cell's line is written whole as it ends, with the cells still running."""

    def __init__(self, stream: TextIO | None = None, parallel: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.parallel = parallel
        self.total = 0
        self.index = 0
        self.running: dict[tuple[str, str], None] = {}
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def model_started(self, model: str, framework: str, routes: list[str]) -> None:
        with self._lock:
            self.total = self.total + len(routes) if self.parallel else len(routes)
            self.index = self.index if self.parallel else 0
            self._write(f"{model} ({framework}): {', '.join(routes)}\n")

    def route_started(self, model: str, route: str) -> None:
        with self._lock:
            if self.parallel:
                self.running[model, route] = None
                return
            self.index += 1
            self._write(f"  [{self.index}/{self.total}] {model} × {route} ... ")

    def route_finished(self, model: str, result: RouteResult) -> None:
        line = f"{result.status} ({result.seconds:.1f}s)"
        if result.max_abs_error is not None and result.status == Status.PASSED:
            line += f" max abs err {result.max_abs_error:.2e}"
        if result.warnings:
            line += f" ({len(result.warnings)} warning{'s' * (len(result.warnings) > 1)})"
        if result.status != Status.PASSED and result.reason:
            line += f": {result.reason}"
        elif result.rejected:
            line += f" [fallback: {result.exporter}]"
        with self._lock:
            if not self.parallel:
                self._write(line + "\n")
                return
            self.running.pop((model, route := result.route), None)
            self.index += 1
            others = ", ".join(f"{m} × {r}" for m, r in self.running)
            running = f"  [running: {others}]" if others else ""
            self._write(f"  [{self.index}/{self.total}] {model} × {route} {line}{running}\n")

    def model_finished(self, result: ModelResult) -> None:
        where = f"published to {result.published}" if result.published else "not published (a route failed)"
        if result.cached:
            where += " (from the cache: nothing it depends on changed)"
        if not result.routes:
            where = "nothing ran"
        with self._lock:
            self._write(f"  {result.name}: {where}\n")
