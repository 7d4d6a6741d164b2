"""Tell a real interrupt from user code that raises KeyboardInterrupt or SystemExit, and bound calls.

`install()` (the CLI calls it) makes Ctrl-C and SIGTERM set a flag before they unwind, so that code
calling a user's factory can turn a `sys.exit()`, a `KeyboardInterrupt` or any `BaseException` the
factory raised into a clear error, while a real interrupt still stops the run. `time_limit` bounds a
call with SIGALRM, in the main thread (elsewhere it does nothing): a factory stuck in a Python loop
or a sleep is stopped with `DeadlineExceeded`; one stuck inside native code only when it returns to
Python.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["DeadlineExceeded", "install", "signalled", "time_limit"]

_signalled = False


class DeadlineExceeded(BaseException):
    """Raised inside a call that ran past its `time_limit`."""


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _signalled
    _signalled = True
    raise KeyboardInterrupt


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _signalled
    _signalled = True
    raise SystemExit(128 + signum)  # unwind (and clean staging) on `kill`, as on Ctrl-C


def install() -> None:
    """Handle SIGINT and SIGTERM in this (main) thread, remembering that they came."""
    signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, _on_sigterm)


def signalled() -> bool:
    """Whether a SIGINT or SIGTERM arrived since `install()`."""
    return _signalled


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise DeadlineExceeded in the block once `seconds` have passed (main thread only)."""
    in_main = threading.current_thread() is threading.main_thread()
    if seconds is None or not math.isfinite(seconds) or not in_main:
        yield
        return

    def expired(signum: int, frame: FrameType | None) -> None:
        raise DeadlineExceeded(f"did not finish within {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
