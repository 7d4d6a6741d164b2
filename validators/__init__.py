"""Validators: one runner module per runtime, the comparison, tolerance policy and result types."""

from __future__ import annotations

import importlib

from graphmint.exporters.formats import FORMATS, Role
from graphmint.validators.base import Runner
from graphmint.validators.tolerance import DEFAULT_TOLERANCES, Tolerance, TolerancePolicy

__all__ = [
    "CROSS_CHECK_RUNTIMES",
    "DEFAULT_TOLERANCES",
    "RUNNERS",
    "RUNTIMES",
    "Runner",
    "Tolerance",
    "TolerancePolicy",
    "get_runner",
    "runtimes_for",
]

#: runner name -> "module:class"; modules import their runtime lazily (a view of exporters.formats)
RUNNERS: dict[str, str] = FORMATS.runners()

#: every runtime an artifact is checked on, by the runner its route names (the first is that runner)
RUNTIMES: dict[str, tuple[str, ...]] = {f.runner: f.runtimes() for f in FORMATS}

#: runtimes that cross-check an artifact instead of deploying it: a second opinion on the file. Where
#: one cannot run a graph, or disagrees while the deployment runtime agrees with the eager model, that
#: is a warning about the cross-check runtime, not a failure of the artifact (unless strict).
CROSS_CHECK_RUNTIMES: frozenset[str] = frozenset(
    r.name for f in FORMATS for r in f.runners if r.role == Role.CROSS_CHECK
)


def runtimes_for(runner: str) -> tuple[str, ...]:
    return RUNTIMES.get(runner, (runner,))


def get_runner(name: str) -> type[Runner]:
    module, _, attr = RUNNERS[name].partition(":")
    runner: type[Runner] = getattr(importlib.import_module(module), attr)
    return runner
