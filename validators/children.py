"""Child processes: the one way graphmint runs work that could take its process down.

Exports, the eager reference, runtimes loading artifacts and the ONNX opset converter all run in a
`Child`: a process forked from the standard library's forkserver, which has imported the frameworks in
use and nothing else, so a child starts in a fraction of a second and holds nothing of this process (no
exporter objects, no framework state that earlier work changed). A child builds one *host* object
from a picklable factory and answers requests (`child.request("method", *args)`) over a pipe until it
is stopped. Whatever the work does to its process stays there: an exception comes back as one line, a
crash as the signal and the frame faulthandler saw, a hang as a timeout after which the child is
killed; every child is reaped, and what it printed (native code included) is its `log`.
`pool.call(fn, *args)` runs one function in a fresh child and returns what it returns.

The forkserver belongs to a `ChildPool`, which says what it preloads. multiprocessing keeps one
forkserver per process, so there is one pool per process (`default_pool()`). It starts with the base
modules plus the frameworks asked for; asked later for a framework it does not preload, it restarts the
forkserver preloading it too, as soon as none of its children runs (a child forked meanwhile imports
the framework itself). The forkserver runs with a fixed PYTHONHASHSEED (exports are the same bytes in
every run), and it and its children end with this process, even one killed outright
(validators._lifeline).
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib
import multiprocessing
import os
import re
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from typing import Any

from graphmint.exporters.base import first_line
from graphmint.exporters.formats import preload_for
from graphmint.validators._lifeline import forkserver_gone, run_temp_dir, start_forkserver

__all__ = ["Child", "ChildError", "ChildPool", "default_pool", "import_ref"]

#: imported once in the forkserver, so that children start warm; the first one ties the forkserver and
#: its children to this process (see validators._lifeline)
BASE_PRELOAD = (
    "graphmint.validators._lifeline",
    "numpy",
    "onnx",
    "onnx.reference",
    "onnxruntime",
    "graphmint.exporters",
    "graphmint.validators",
    "graphmint.pipeline.spec.loader",
)
#: heavy modules worth preloading, per framework (the top-level module that names it): what its
#: formats' exporters and runners import (exporters.formats)
FRAMEWORK_PRELOAD = preload_for()
#: tries to start a child when the forkserver dies under it (a SIGKILL from outside starts it again)
_START_ATTEMPTS = 3
#: the frame faulthandler names first: the one running when the signal came
_FRAME = re.compile(r'File "([^"]+)", line (\d+) in (\S+)')


def import_ref(ref: str) -> Any:
    """The object a "module:attribute" reference names, its module imported."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


class ChildError(RuntimeError):
    """A child that gave no answer: its work raised (`kind` "error", `exc_type` the exception's class
    name), it died ("died") or it did not answer in time ("timeout"). `detail` is the part after the
    child's name: "died from signal SIGSEGV (Segmentation fault) during infer, at x.py:3 in f"; `code`
    the exit code of a child that died (negative: the signal)."""

    def __init__(
        self,
        message: str,
        kind: str,
        detail: str,
        exc_type: str = "",
        text: str = "",
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.detail = detail
        self.exc_type = exc_type
        self.code = code
        #: the exception's own message (str(exc)), where the work raised
        self.text = text


class ChildPool:
    """The forkserver every child comes from, and what it preloads."""

    def __init__(
        self,
        base: Iterable[str] = BASE_PRELOAD,
        frameworks: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.base = tuple(base)
        self.heavy = dict(FRAMEWORK_PRELOAD if frameworks is None else frameworks)
        #: the frameworks the running forkserver preloads; None before it starts
        self.preloaded: frozenset[str] | None = None
        #: frameworks asked for that the running forkserver lacks, added at the next restart
        self.wanted: set[str] = set()
        self.running: set[Child] = set()
        self.restarts = 0
        self._lock = threading.RLock()

    def start(self, frameworks: Iterable[str] = ()) -> Any:
        """Make sure the forkserver runs, preloading `frameworks` (top-level names: "torch",
        "tensorflow") and those this process has imported; returns the multiprocessing context."""
        context = multiprocessing.get_context("forkserver")
        with self._lock:
            self.wanted.update(frameworks)
            self.wanted.update(top for top in self.heavy if top in sys.modules)
            missing = self.preloaded is None or bool(self.wanted - self.preloaded)
            if self.preloaded is not None and (not missing or self.running or not self._stop_forkserver()):
                start_forkserver()  # with what it preloads; a missing framework waits for the next start
                return context
            if self.preloaded is not None:
                self.restarts += 1
            self.preloaded = frozenset(self.wanted)
            modules = list(self.base)
            for top in sorted(self.preloaded):
                modules.extend(self.heavy.get(top, ()))
            context.set_forkserver_preload(modules)
            start_forkserver()
        return context

    @staticmethod
    def _stop_forkserver() -> bool:
        """Stop the running forkserver (no child of it runs); False where this Python cannot."""
        server = forkserver._forkserver
        stop = getattr(server, "_stop", None)
        if stop is None:
            return False
        stop()
        return True

    def spawn(self, host: Callable[..., Any], *args: Any, name: str, timeout_s: float | None = None) -> Child:
        """A started child whose host is `host(*args)`, built in the child at its first request."""
        return Child(self, host, args, name, timeout_s).start()

    def kill_all(self) -> None:
        """Kill every running child (an interrupted run): whoever waits on one sees it die."""
        with self._lock:
            children = list(self.running)
        for child in children:
            if child.process is not None and child.process.pid is not None and child.process.is_alive():
                with contextlib.suppress(OSError):
                    child.process.kill()

    def call(self, fn: Callable[..., Any], *args: Any, name: str, timeout_s: float | None = None) -> Any:
        """`fn(*args)` run in a fresh child (fn a module-level function); raises ChildError."""
        with self.spawn(_Caller, name=name, timeout_s=timeout_s) as child:
            return child.request("run", fn, *args)


_pool: tuple[int, ChildPool] | None = None


def default_pool() -> ChildPool:
    """This process's pool (multiprocessing has one forkserver per process)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ChildPool())
    return _pool[1]


class _Caller:
    """The host of `ChildPool.call`: runs the function it is sent."""

    @staticmethod
    def run(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


def _child_main(
    conn: Connection, host: Callable[..., Any], args: tuple[Any, ...], log_path: str, cwd: str
) -> None:
    """The child: send everything it prints to the log, then answer requests until told to close.

    It works in the parent's current folder, so that a model's module and relative paths resolve as
    they do there."""
    os.chdir(cwd)
    if "" not in sys.path:
        sys.path.insert(0, "")  # the current folder, where the parent found the model's module
    with open(log_path, "w", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        faulthandler.enable(file=log)
        served: Any = None
        try:
            while True:
                try:
                    method, payload = conn.recv()
                except EOFError:  # the parent is gone
                    return
                if method is None:
                    return
                try:
                    if served is None:
                        served = host(*args)
                    reply = getattr(served, method)(*payload)
                except (Exception, SystemExit) as exc:
                    conn.send(("error", type(exc).__name__, first_line(exc), str(exc)))
                else:
                    conn.send(("ok", reply))
        finally:
            with contextlib.suppress(Exception):
                getattr(served, "close", lambda: None)()
            conn.close()


class Child:
    """One child process of a pool, answering requests over a pipe (see the module's docstring)."""

    #: seconds a child asked to close gets before it is terminated
    close_grace_s = 10.0

    def __init__(
        self,
        pool: ChildPool,
        host: Callable[..., Any],
        args: tuple[Any, ...],
        name: str,
        timeout_s: float | None = None,
    ) -> None:
        self.pool = pool
        self.host, self.args, self.name = host, args, name
        #: seconds one request may take; None waits as long as it takes
        self.timeout_s = timeout_s
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.log_path: str | None = None
        #: what the child printed, once it has been stopped
        self.log = ""
        #: why the child can no longer answer, once it has died or hung
        self.failure: ChildError | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> Child:
        fd, self.log_path = tempfile.mkstemp(prefix="child-", suffix=".log", dir=run_temp_dir())
        os.close(fd)
        for attempt in range(1, _START_ATTEMPTS + 1):
            # counted as running before the pool may restart its forkserver for another thread's
            # child; the start also starts a forkserver again that is gone
            with self.pool._lock:
                context = self.pool.start()
                self.pool.running.add(self)
            self.conn, child_end = context.Pipe()
            self.process = context.Process(
                target=_child_main,
                args=(child_end, self.host, self.args, self.log_path, os.getcwd()),
                name=f"graphmint-{self.name}",
                daemon=True,
            )
            try:
                self.process.start()
                return self
            except (EOFError, ConnectionError) as exc:  # the forkserver died while it forked this child
                self.conn.close()
                self.process = None
                if attempt == _START_ATTEMPTS:
                    self.stop()
                    detail = (
                        f"could not be started: the forkserver that forks graphmint's child processes "
                        f"died {attempt} times ({type(exc).__name__}; killed from outside, or out of memory?)"
                    )
                    raise ChildError(f"{self.name} {detail}", "died", detail) from None
            except BaseException:
                self.stop()
                raise
            finally:
                child_end.close()
        raise AssertionError("unreachable")

    def request(self, method: str, *args: Any, timeout_s: float | None = None) -> Any:
        """Call `method(*args)` on the child's host and return its answer; raises ChildError."""
        if self.failure is not None:
            raise self.failure
        assert self.conn is not None and self.process is not None
        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            self.conn.send((method, args))
            answered = self.conn.poll(limit)
            reply = self.conn.recv() if answered else None
        except (EOFError, OSError):  # the child closed its end: it has exited
            self.failure = self._death(method)
            raise self.failure from None
        if reply is None:
            detail = f"did not answer {method} within {limit:g}s; the child was stopped"
            self.failure = ChildError(f"{self._who()} {detail}", "timeout", detail)
            self.stop()
            raise self.failure
        if reply[0] == "error":
            _, exc_type, message, text = reply
            raise ChildError(
                f"{method} failed in child process {self.pid}: {message}", "error", message, exc_type, text
            )
        return reply[1]

    def _who(self) -> str:
        return f"{self.name} in child process {self.pid}"

    def _death(self, method: str) -> ChildError:
        """How the child ended: the signal that killed it or its exit code, and where."""
        assert self.process is not None
        self.process.join(self.close_grace_s)
        code = self.process.exitcode
        if code is None:
            detail = f"closed its pipe during {method} but did not exit"
        elif code == _LOST and forkserver_gone():  # its forkserver died, and took the child with it
            detail = (
                f"was lost during {method} with the forkserver that forked it (killed from outside, "
                "or out of memory?)"
            )
        else:
            detail = f"{ended(code)} during {method}{self._crash_site()}"
        return ChildError(f"{self._who()} {detail}", "died", detail, code=code)

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

    def stop(self) -> str:
        """Ask the child to close, then terminate and kill it if it does not; always reap it.
        Returns what it printed."""
        process, conn = self.process, self.conn
        if process is not None and process.pid is not None:
            if process.is_alive() and conn is not None and self.failure is None:
                with contextlib.suppress(OSError):
                    conn.send((None, ()))
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
        with self.pool._lock:
            self.pool.running.discard(self)
        if self.log_path is not None:
            with contextlib.suppress(OSError), open(self.log_path, errors="replace") as log:
                self.log += log.read()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.log_path)
            self.log_path = None
        return self.log

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: the exit code multiprocessing gives a forkserver child whose forkserver can no longer report it
_LOST = 255


def ended(code: int) -> str:
    """ "died from signal SIGSEGV (Segmentation fault)" or "ended with exit code 3"; a SIGKILL says that
    the kernel's OOM killer is its likely sender."""
    if code < 0:
        try:
            name = f"{signal.Signals(-code).name} ({signal.strsignal(-code)})"
        except ValueError:
            return f"died from signal {-code}"
        oom = " (out of memory? the kernel's OOM killer sends it)" if -code == signal.SIGKILL else ""
        return f"died from signal {name}{oom}"
    return f"ended with exit code {code}"
