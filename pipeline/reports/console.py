"""The console of a run: graphmint's lines on the terminal, the frameworks' own output in a log file.

TensorFlow, absl, transformers and Dynamo print banners and warnings from Python and from native
code, straight to file descriptors 1 and 2, in this process and in every child it starts. During a
run those descriptors point at a log file; graphmint writes its progress and summary to copies of the
terminal's descriptors, so the display stays one line per model × route.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["Console", "native_output_to"]


@dataclass(frozen=True)
class Console:
    out: TextIO
    err: TextIO


@contextlib.contextmanager
def native_output_to(log_path: Path) -> Iterator[Console]:
    """Point descriptors 1 and 2 at `log_path` for the block; yield streams to the real terminal.

    Where the descriptors cannot be duplicated (closed), or sys.stdout/sys.stderr are not them (a caller
    that captures output in-process), output is left where it goes.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        if (sys.stdout.fileno(), sys.stderr.fileno()) != (1, 2):
            raise OSError("the console streams are not descriptors 1 and 2")
        saved = os.dup(1), os.dup(2)
    except (OSError, ValueError, AttributeError):  # closed, or replaced (a caller capturing output)
        yield Console(sys.stdout, sys.stderr)
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8", errors="replace")
    err = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")
    with open(log_path, "wb") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield Console(out, err)
        finally:
            for stream in (sys.stdout, sys.stderr, out, err):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            out.close()
            err.close()
