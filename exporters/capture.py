"""What an exporter printed, warned and logged while it ran, captured for the route's report."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator

__all__ = ["CapturedLog", "captured_output", "native_output", "not_installed"]


class CapturedLog(io.StringIO):
    """What an exporter printed, warned and logged; the log records themselves in `records`."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def messages(self, logger: str) -> list[str]:
        """The messages `logger` and its children logged."""
        return [r.getMessage() for r in self.records if r.name == logger or r.name.startswith(f"{logger}.")]


class _Keeping(logging.StreamHandler):
    def __init__(self, log: CapturedLog) -> None:
        super().__init__(log)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log.records.append(record)
        super().emit(record)


@contextlib.contextmanager
def captured_output(loggers: tuple[str, ...] = ()) -> Iterator[CapturedLog]:
    """Collect what an exporter prints, warns and logs, for the report instead of the console.

    Local to the block: warning filters, stdout/stderr and logger levels are restored on exit.
    """
    buffer = CapturedLog()
    handler = _Keeping(buffer)
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
            buffer.write(f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})\n")
    finally:
        for logger, propagate, handlers in saved:
            logger.handlers = handlers
            logger.propagate = propagate


def not_installed(modules: Iterable[str]) -> str:
    """Why a strategy or runtime cannot run here for want of a package ('' where every one of
    `modules` can be imported): each missing one, with what installs it."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return ""
    hint = " ".join(m.split(".")[0].replace("_", "-") for m in missing)
    return f"{', '.join(missing)} is not installed here (pip install {hint})"


@contextlib.contextmanager
def native_output(buffer: io.StringIO, fds: tuple[int, ...] = (1, 2)) -> Iterator[None]:
    """Send what native code writes to the file descriptors `fds` (stdout and stderr) into `buffer`,
    for the block only: TensorFlow's C++ logging, the TFLite converter's MLIR diagnostics and
    ExecuTorch's runtime log bypass sys.stdout/stderr. Where the descriptors cannot be duplicated
    (closed), output is left where it goes."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    try:
        saved = [os.dup(fd) for fd in fds]
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        try:
            for fd in fds:
                os.dup2(sink.fileno(), fd)
            yield
        finally:
            for fd, copy in zip(fds, saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            buffer.write(sink.read().decode(errors="replace"))
