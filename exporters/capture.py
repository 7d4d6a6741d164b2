"""What an exporter printed, warned and logged while it ran, captured for the route's report."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

__all__ = ["CapturedLog", "captured_output"]


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
