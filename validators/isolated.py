"""A runner that hosts another runner in a child process (validators.children).

The child imports the inner runner's module, loads the artifact from its path, and answers activate /
infer requests. Nothing the parent holds, such as the objects an exporter built, can reach it, and
whatever the runtime does to its process (a crash, a hang, a leak) stays there: a crash becomes a
one-line error naming the signal, a hang a timeout, and the child is always reaped. A runtime that
reports itself unavailable in the child (RuntimeUnavailable) is reported so here too.

Any runner whose artifact is a file can be hosted: `IsolatedRunner(artifact, inner="module:Class")`,
or a subclass that names its `inner` runner. A route without a file (torch.compile, tf.function) makes
its object in a child of its own (pipeline.run.isolation): that child's host is a `RunnerHost` too, and
the artifact it hands back names it (`Live`), so the runner serves from the object where it was made.
What the runner measured (`facts`) comes back when it is deactivated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import multiprocessing
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from graphmint.exporters.base import Artifact
from graphmint.validators._lifeline import sweep_stale_temp
from graphmint.validators.base import Runner, RuntimeUnavailable, UnrunnableContent
from graphmint.validators.children import Child, ChildError, ChildPool, default_pool, import_ref

__all__ = ["IsolatedRunner", "Live", "Overrun", "RunnerHost", "sweep_stale_temp"]


class Overrun(RuntimeError):
    """A request to a child that did not answer within its time limit (the child was stopped)."""


@dataclasses.dataclass(eq=False)
class Live:
    """An artifact's `in_process` in the parent where the object lives in a child: the child itself.
    Whoever made it stops it (`close`); a runner that served from it has done so already."""

    child: Child

    def close(self) -> None:
        self.child.stop()


class RunnerHost:
    """In the child: the inner runner (by default its artifact's own), built and activated on request."""

    def __init__(self, inner: str, artifact: Artifact | None) -> None:
        self.inner, self.artifact = inner, artifact
        self.runner: Runner | None = None

    def activate(self) -> tuple[str, list[str]]:
        from graphmint.validators import RUNNERS

        if self.artifact is None:
            raise ValueError("activate before the artifact was made")
        for module in self.artifact.imports:
            importlib.import_module(module)
        self.runner = import_ref(self.inner or RUNNERS[self.artifact.runner])(self.artifact)
        self.runner.activate()
        return self.runner.runtime, list(self.runner.notes)

    def infer(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        if self.runner is None:
            raise ValueError("infer before activate")
        outputs, _ = self.runner.infer(feeds)
        return outputs

    def deactivate(self) -> dict[str, Any]:
        """Release the runner; what it measured."""
        if self.runner is None:
            return {}
        self.runner.deactivate()
        facts = dict(self.runner.facts)
        self.runner = None
        return facts

    def close(self) -> None:
        self.deactivate()


class IsolatedRunner(Runner):
    name = "isolated"
    #: "module:Class" of the runner the child hosts
    inner: ClassVar[str] = ""
    #: seconds the child may take to answer one request (loading the artifact included)
    timeout_s: ClassVar[float] = 300.0

    def __init__(
        self,
        artifact: Artifact,
        inner: str | None = None,
        timeout_s: float | None = None,
        pool: ChildPool | None = None,
    ) -> None:
        super().__init__(artifact)
        self.inner_ref = inner or self.inner
        self.timeout = self.timeout_s if timeout_s is None else timeout_s
        self.pool = pool
        self.child: Child | None = None

    @property
    def child_pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    @property
    def process(self) -> multiprocessing.process.BaseProcess | None:
        return self.child.process if self.child is not None else None

    @property
    def log_path(self) -> str | None:
        return self.child.log_path if self.child is not None else None

    def activate_impl(self) -> None:
        if not self.inner_ref and not isinstance(self.artifact.in_process, Live):
            raise ValueError(f"runner {self.name} has no inner runner to host")
        live = self.artifact.in_process
        if isinstance(live, Live):  # the object lives in the child that made it: serve from there
            self.child = live.child
        else:  # what an exporter holds in memory stays here: the child gets the artifact's path and names
            artifact = dataclasses.replace(self.artifact, in_process=None)
            pool = self.pool or default_pool()
            self.child = pool.spawn(RunnerHost, self.inner_ref, artifact, name=self.inner_ref)
        try:
            runtime, notes = self._request("activate")
        except BaseException:
            self.deactivate_impl()
            raise
        self.runtime = f"{runtime} (in a child process)"  # no pid: the manifest names no run's details
        self.notes.extend(notes)

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        outputs: list[Any] = self._request("infer", {k: np.asarray(v) for k, v in feeds.items()})
        return outputs

    def deactivate_impl(self) -> None:
        if self.child is not None:
            if self.child.failure is None:
                with contextlib.suppress(RuntimeError, RuntimeUnavailable):
                    self.facts.update(self._request("deactivate"))
            self.log += self.child.stop()
            self.child.log = ""

    def _request(self, method: str, *args: Any) -> Any:
        """One request to the child; a dead or silent child raises RuntimeError, an unavailable
        runtime RuntimeUnavailable."""
        assert self.child is not None
        try:
            return self.child.request(method, *args, timeout_s=self.timeout)
        except ChildError as exc:
            if exc.exc_type == "UnrunnableContent":
                raise UnrunnableContent(exc.text) from None
            if exc.exc_type == "RuntimeUnavailable":
                raise RuntimeUnavailable(exc.text) from None
            if exc.kind == "timeout":
                raise Overrun(str(exc)) from None
            raise RuntimeError(str(exc)) from None
