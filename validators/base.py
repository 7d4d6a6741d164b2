"""The Runner interface: one small module per runtime behind it.

The base class owns input checks and timing; a subclass only loads its artifact (`activate`) and runs
it (`infer`). Runners load artifacts from disk: they never see an exporter's in-memory objects (the
one exception, routes without a file such as torch.compile, say so by using an in-process runner).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from graphmint.exporters.base import Artifact
from graphmint.exporters.capture import not_installed

__all__ = ["Runner", "RuntimeUnavailable", "UnrunnableContent", "UnsafeArtifactError"]


class RuntimeUnavailable(Exception):
    """Raised by `activate` when the runtime cannot run here (no CUDA device, an op it lacks).

    The check is reported as skipped with this message, never silently left out.
    """


class UnrunnableContent(RuntimeUnavailable):
    """Raised by `activate` when the file holds what no runtime here can run (a TFLite file's Select TF
    ops, which need the Flex delegate): judged by what the file holds, the route is `unsupported` on
    every path, named by the user or not, whichever stage an interpreter would have failed at."""


class UnsafeArtifactError(Exception):
    """An artifact holds content that would run code when loaded; it was refused without loading it."""


class Runner(ABC):
    name: ClassVar[str]
    #: a short label for reports, e.g. "onnxruntime 1.23 CPUExecutionProvider"
    runtime: str = ""
    #: threads the runtime may use for one inference, where it takes a number (None: its default);
    #: set before `activate`
    threads: int | None = None
    #: the modules the runtime is (without one, `activate` says it is unavailable, naming what is missing)
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.active = False
        self.notes: list[str] = []
        #: what the runtime measured while it served (e.g. recompilations), for the manifest
        self.facts: dict[str, Any] = {}
        #: what the runtime printed while it ran (filled by runners that capture it)
        self.log = ""

    @abstractmethod
    def activate_impl(self) -> None:
        """Load the artifact from disk."""

    @abstractmethod
    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        """Run one inference; return the outputs in the artifact's output order."""

    def deactivate_impl(self) -> None:
        """Release what `activate_impl` loaded."""

    def activate(self) -> None:
        missing = not_installed(self.requires)
        if missing:
            raise RuntimeUnavailable(f"{self.name}: {missing}")
        self.activate_impl()
        self.active = True

    def deactivate(self) -> None:
        if self.active:
            self.deactivate_impl()
        self.active = False

    def infer(self, feeds: Mapping[str, np.ndarray]) -> tuple[list[np.ndarray], float]:
        """Check the feeds against the artifact's inputs, run, and time it."""
        if not self.active:
            raise RuntimeError(f"runner {self.name} used before activate()")
        expected = list(self.artifact.input_names)
        if list(feeds) != expected:
            raise ValueError(f"runner {self.name} expects inputs {expected}, got {list(feeds)}")
        start = time.perf_counter()
        outputs = [np.asarray(o) for o in self.infer_impl(feeds)]
        return outputs, time.perf_counter() - start

    def __enter__(self) -> Runner:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()
