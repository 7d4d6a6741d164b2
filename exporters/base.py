"""What every exporter shares: the export context, the artifact it writes, and the route it serves.

An exporter is a *strategy*: a function from an `ExportContext` to an `ExportResult` that returns its
failure instead of raising it. A `Route` is an ordered fallback chain of strategies; the pipeline tries
them in turn and records why each rejected candidate was rejected.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Artifact",
    "ExportContext",
    "ExportResult",
    "Route",
    "Strategy",
    "captured_output",
    "first_line",
]


@dataclass(frozen=True)
class ExportContext:
    """The eager model and what an exporter needs to know about its inputs and outputs."""

    model: Any
    framework: str
    workdir: Path
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    example_inputs: Mapping[str, np.ndarray]
    #: per input, per axis: (dim name, min, max) for every dynamic dim
    dynamic_axes: Mapping[str, Mapping[int, tuple[str, int, int]]]
    dtypes: Mapping[str, str]
    route: str = ""

    def artifact(
        self,
        *,
        exporter: str,
        runner: str,
        path: Path | None,
        in_process: Any = None,
        details: dict[str, Any] | None = None,
    ) -> Artifact:
        """An artifact of this context's route, carrying its input/output names and dynamic axes."""
        return Artifact(
            route=self.route,
            exporter=exporter,
            runner=runner,
            path=path,
            input_names=self.input_names,
            output_names=self.output_names,
            dynamic_axes={n: {a: d[0] for a, d in axes.items()} for n, axes in self.dynamic_axes.items()},
            in_process=in_process,
            details=details or {},
        )


@dataclass
class Artifact:
    """A static form of the model, as an exporter left it.

    `path` is the file (or folder) a runner loads; `in_process` holds an object for routes that have
    no file (torch.compile). Validators only ever read `path`, never exporter objects, otherwise.
    """

    route: str
    exporter: str
    runner: str
    path: Path | None
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    #: per input, per axis: the name of each declared dynamic dim
    dynamic_axes: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    in_process: Any = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExportResult:
    """An artifact, or the reason there is none. `skipped` marks 'does not apply', not 'broke'."""

    artifact: Artifact | None = None
    error: str | None = None
    skipped: bool = False
    log: str = ""


Strategy = Callable[[ExportContext], ExportResult]


@dataclass(frozen=True)
class Route:
    """A named static form: its framework, fallback chain of strategies, and the runner that checks it."""

    name: str
    framework: str
    strategies: tuple[tuple[str, Strategy], ...]
    runner: str
    default: bool = True
    description: str = ""
    #: True for routes that leave no file and are checked on the object the exporter made; they run in
    #: the pipeline's process. Every other route exports in a fresh process of its own.
    in_process: bool = False


def first_line(exc: BaseException | str, limit: int = 300) -> str:
    """A one-line reason: the first non-empty line of an exception message, with its type."""
    if isinstance(exc, BaseException):
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        text = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    else:
        text = exc.strip().splitlines()[0] if exc.strip() else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def captured_output(loggers: tuple[str, ...] = ()) -> Iterator[io.StringIO]:
    """Collect what an exporter prints, warns and logs, for the report instead of the console.

    Local to the block: warning filters, stdout/stderr and logger levels are restored on exit.
    """
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    saved = []
    for name in loggers:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, logger.handlers[:]))
        logger.handlers = [handler]
        logger.propagate = False
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stdout(buffer),
            contextlib.redirect_stderr(buffer),
        ):
            warnings.simplefilter("always")
            yield buffer
        for w in caught:
            buffer.write(f"{w.category.__name__}: {w.message}\n")
    finally:
        for logger, propagate, handlers in saved:
            logger.handlers = handlers
            logger.propagate = propagate
