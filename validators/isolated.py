"""A runner that hosts another runner in a child process.

The child is forked from the standard library's forkserver, a clean process that has imported the
frameworks in use and nothing else (see `children_context`): it imports the inner runner's module,
loads the artifact from its path, and answers requests over a pipe.
Nothing the parent holds, such as the objects an exporter built, can reach it, and whatever the
runtime does to its process (a crash, a hang, a leak) stays there: a crash becomes a one-line error
naming the signal, a hang a timeout, and the child is always reaped. A runtime that reports itself
unavailable in the child (RuntimeUnavailable) is reported so here too.

Any runner whose artifact is a file can be hosted: `IsolatedRunner(artifact, inner="module:Class")`,
or a subclass that names its `inner` runner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import importlib
import multiprocessing
import os
import re
import signal
import sys
import tempfile
from collections.abc import Iterable, Mapping
from multiprocessing.connection import Connection
from typing import Any, ClassVar

import numpy as np

from graphmint.exporters.base import Artifact, first_line
from graphmint.validators._lifeline import run_temp_dir, start_forkserver, sweep_stale_temp
from graphmint.validators.base import Runner, RuntimeUnavailable

__all__ = ["IsolatedRunner", "children_context", "sweep_stale_temp"]

#: imported once in the forkserver, so that children start warm; the first one ties the forkserver and
#: its children to this process (see validators._lifeline)
_BASE_PRELOAD = (
    "graphmint.validators._lifeline",
    "numpy",
    "onnx",
    "onnx.reference",
    "onnxruntime",
    "graphmint.exporters",
    "graphmint.validators",
    "graphmint.pipeline.spec.loader",
)
#: heavy modules worth preloading, per framework top-level module, when the parent has imported it
_FRAMEWORK_PRELOAD = {
    "torch": ("torch", "torch.export", "torch._dynamo", "torch.onnx", "onnxscript"),
    "tensorflow": ("tensorflow", "keras", "tf2onnx"),
}
_preload: list[str] | None = None


def children_context(frameworks: Iterable[str] = ()) -> Any:
    """The multiprocessing context every graphmint child process comes from: a preloaded forkserver.

    The forkserver is started by the first call, with the frameworks this process has imported by then;
    children are forks of it, so they start in a fraction of a second, and hold nothing of this process
    (no exporter objects, no framework state that earlier work changed). `frameworks` (top-level
    names, as in _FRAMEWORK_PRELOAD) are preloaded too, imported here or not yet. It runs with a fixed
    PYTHONHASHSEED, so children export the same bytes in every run, and it and every child it forks end
    when this process ends, even when it is killed outright (validators._lifeline).
    """
    global _preload
    context = multiprocessing.get_context("forkserver")
    if _preload is None:
        _preload = list(_BASE_PRELOAD)
        for top, heavy in _FRAMEWORK_PRELOAD.items():
            if top in sys.modules or top in frameworks:
                _preload.extend(heavy)
        context.set_forkserver_preload(_preload)
    start_forkserver()
    return context


#: the frame faulthandler names first: the one running when the signal came
_FRAME = re.compile(r'File "([^"]+)", line (\d+) in (\S+)')


def _import_runner(ref: str) -> type[Runner]:
    module, _, attr = ref.partition(":")
    runner: type[Runner] = getattr(importlib.import_module(module), attr)
    return runner


def _child_main(conn: Connection, inner: str, artifact: Artifact, log_path: str, cwd: str) -> None:
    """The child: send everything it prints to the log, then serve activate / infer / close requests.

    It works in the parent's current folder, so that the model's module and relative paths resolve
    as they do there."""
    os.chdir(cwd)
    if "" not in sys.path:
        sys.path.insert(0, "")  # the current folder, where the parent found the model's module
    with open(log_path, "w", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        faulthandler.enable(file=log)
        runner: Runner | None = None
        try:
            while True:
                try:
                    request, payload = conn.recv()
                except EOFError:  # the parent is gone
                    return
                if request == "close":
                    return
                try:
                    if request == "activate":
                        for module in artifact.imports:
                            importlib.import_module(module)
                        runner = _import_runner(inner)(artifact)
                        runner.activate()
                        reply: Any = (runner.runtime, list(runner.notes))
                    elif request == "infer" and runner is not None:
                        reply, _ = runner.infer(payload)
                    else:
                        raise ValueError(f"unexpected request {request!r}")
                except RuntimeUnavailable as exc:
                    conn.send(("unavailable", str(exc)))
                except Exception as exc:
                    conn.send(("error", first_line(exc)))
                else:
                    conn.send(("ok", reply))
        finally:
            if runner is not None:
                runner.deactivate()
            conn.close()


class IsolatedRunner(Runner):
    name = "isolated"
    #: "module:Class" of the runner the child hosts
    inner: ClassVar[str] = ""
    #: seconds the child may take to answer one request (loading the artifact included)
    timeout_s: ClassVar[float] = 300.0
    #: seconds a child asked to close gets before it is terminated
    close_grace_s: ClassVar[float] = 10.0

    def __init__(self, artifact: Artifact, inner: str | None = None, timeout_s: float | None = None) -> None:
        super().__init__(artifact)
        self.inner_ref = inner or self.inner
        self.timeout = self.timeout_s if timeout_s is None else timeout_s
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.log_path: str | None = None
        #: why the child can no longer answer, once it has died or hung
        self.failure: str | None = None

    @property
    def child_pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def activate_impl(self) -> None:
        if not self.inner_ref:
            raise ValueError(f"runner {self.name} has no inner runner to host")
        context = children_context()
        fd, self.log_path = tempfile.mkstemp(prefix="isolated-", suffix=".log", dir=run_temp_dir())
        os.close(fd)
        self.failure = None
        self.conn, child_end = context.Pipe()
        # what an exporter holds in memory stays here: the child gets the artifact's path and names
        artifact = dataclasses.replace(self.artifact, in_process=None)
        self.process = context.Process(
            target=_child_main,
            args=(child_end, self.inner_ref, artifact, self.log_path, os.getcwd()),
            name=f"graphmint-{self.name}",
            daemon=True,
        )
        try:
            self.process.start()
            child_end.close()
            runtime, notes = self._request("activate", None)
        except BaseException:
            self._stop()
            raise
        self.runtime = f"{runtime} (in a child process)"  # no pid: the manifest names no run's details
        self.notes.extend(notes)

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        outputs: list[Any] = self._request("infer", {k: np.asarray(v) for k, v in feeds.items()})
        return outputs

    def deactivate_impl(self) -> None:
        self._stop()

    def _request(self, request: str, payload: Any) -> Any:
        """Send one request and wait for its answer; a dead or silent child raises RuntimeError."""
        if self.failure is not None:
            raise RuntimeError(self.failure)
        assert self.conn is not None and self.process is not None
        try:
            self.conn.send((request, payload))
            answered = self.conn.poll(self.timeout)
            status, reply = self.conn.recv() if answered else (None, None)
        except (EOFError, OSError):  # the child closed its end: it has exited
            self.failure = self._death(request)
            raise RuntimeError(self.failure) from None
        if not answered:
            self.failure = (
                f"{self.inner_ref} in child process {self.process.pid} did not answer {request} "
                f"within {self.timeout:g}s; the child was stopped"
            )
            self._stop()
            raise RuntimeError(self.failure)
        if status == "unavailable":
            raise RuntimeUnavailable(reply)
        if status == "error":
            raise RuntimeError(f"{request} failed in child process {self.process.pid}: {reply}")
        return reply

    def _death(self, request: str) -> str:
        """One line on how the child ended: the signal that killed it or its exit code, and where."""
        assert self.process is not None
        self.process.join(self.close_grace_s)
        code = self.process.exitcode
        who = f"{self.inner_ref} in child process {self.process.pid}"
        if code is None:
            return f"{who} closed its pipe during {request} but did not exit"
        if code < 0:
            try:
                what = f"died from signal {signal.Signals(-code).name} ({signal.strsignal(-code)})"
            except ValueError:
                what = f"died from signal {-code}"
        else:
            what = f"exited with code {code}"
        return f"{who} {what} during {request}{self._crash_site()}"

    def _crash_site(self) -> str:
        """', at FILE:LINE in FUNC' from the traceback faulthandler wrote on a fatal signal."""
        if self.log_path is None or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, errors="replace") as log:
            text = log.read()
        fatal = text.find("Fatal Python error")
        frame = _FRAME.search(text, fatal) if fatal >= 0 else None
        if frame is None:
            return ""
        path, line, function = frame.groups()
        return f", at {os.path.basename(path)}:{line} in {function}"

    def _stop(self) -> None:
        """Ask the child to close, then terminate and kill it if it does not; always reap it."""
        process, conn = self.process, self.conn
        if process is not None and process.pid is not None:
            if process.is_alive() and conn is not None and self.failure is None:
                with contextlib.suppress(OSError):
                    conn.send(("close", None))
                process.join(self.close_grace_s)
            if process.is_alive():
                process.terminate()
                process.join(self.close_grace_s)
            if process.is_alive():
                process.kill()
            process.join()
        if conn is not None:
            conn.close()
        self.conn = None
        if self.log_path is not None:
            with contextlib.suppress(OSError), open(self.log_path, errors="replace") as log:
                self.log += log.read()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.log_path)
            self.log_path = None
