"""Child processes that end with the graphmint process, and temporary files that do not outlive it.

Every graphmint child comes from the standard library's forkserver (validators.children). Left alone,
the forkserver outlives a graphmint process killed outright: it stops when its "alive" pipe reaches
end-of-file, but each child it forks is handed a copy of that pipe's write end, and a
ProcessPoolExecutor worker whose parent is gone waits for work forever (it holds both ends of its own
call queue). The worker keeps the forkserver alive, and both keep the resource tracker alive.

Instead, each process is tied to the one above it:

- `start_forkserver` starts the forkserver with two variables in its environment only: the pid of this
  process, and PYTHONHASHSEED=HASH_SEED, so that what a child exports does not depend on Python's
  randomized string hash (TorchScript orders constants by it);
- this module is the first one the forkserver preloads: imported there, it ties the forkserver to this
  process, and registers an after-fork hook that ties every child to the forkserver before the child
  runs its target;
- the resource tracker ends by itself once none of them holds its pipe.

A tie is PR_SET_PDEATHSIG(SIGKILL) on Linux (the kernel kills the process when the thread that forked
it exits: the forkserver's only thread, or this process's main thread when that one started the
forkserver), else a thread that polls os.getppid() and exits when the parent has changed.

Files: `run_temp_dir()` is one folder per graphmint process, `graphmint-<pid>-XXXXXXXX` with a marker
file. It is removed at exit; `sweep_stale_temp()` removes those of processes that are gone (killed
before their exit handlers ran), with the multiprocessing folder (`pymp-*`) each one recorded.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing import forkserver, util
from pathlib import Path
from typing import Any

__all__ = ["HASH_SEED", "forkserver_gone", "run_temp_dir", "start_forkserver", "sweep_stale_temp"]

#: PYTHONHASHSEED of the forkserver, hence of every child: exports are byte-identical run to run
HASH_SEED = "0"
#: "<pid>:<main|other>": the process that starts the forkserver, and whether from its main thread
_PARENT_ENV = "GRAPHMINT_FORKSERVER_PARENT"
_PR_SET_PDEATHSIG = 1
#: seconds between two looks at os.getppid() where the kernel cannot tie a process to its parent
_POLL_S = 0.2
_RUN_DIR = re.compile(r"graphmint-(\d+)-[a-z0-9_]{8}")
_MARKER = "graphmint-run.json"


# -- lifelines ----------------------------------------------------------------------------------------


def _kernel_lifeline() -> bool:
    """PR_SET_PDEATHSIG(SIGKILL) on this process; False where the kernel or libc has no prctl."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    args = (ctypes.c_ulong(int(signal.SIGKILL)), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    return int(prctl(ctypes.c_int(_PR_SET_PDEATHSIG), *args)) == 0


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_POLL_S)
    os._exit(1)


def _tie_to(parent: int, kernel: bool) -> None:
    """End this process when `parent` ends: by the kernel where `kernel` (the thread that forked this
    process lives as long as `parent` does) and prctl allow it, else by a watcher thread."""
    if not (kernel and _kernel_lifeline()):
        threading.Thread(target=_watch_parent, args=(parent,), name="graphmint-lifeline", daemon=True).start()
    if os.getppid() != parent:  # the parent ended before the tie was made
        os._exit(1)


class _ChildLifeline:
    """Registered in the forkserver: every child forked from it calls `tie` before running its target."""

    def __init__(self) -> None:
        self.forkserver = os.getpid()

    def tie(self) -> None:
        _tie_to(self.forkserver, kernel=True)  # the forkserver forks from its one thread


_child_lifeline: _ChildLifeline | None = None


def _tie_forkserver() -> None:
    """In a forkserver started by `start_forkserver`: tie it to that process, and its children to it."""
    global _child_lifeline
    parent, _, thread = os.environ.get(_PARENT_ENV, "").partition(":")
    if not parent.isdigit() or sys.argv != ["-c"] or "multiprocessing.forkserver" not in sys.modules:
        return
    del os.environ[_PARENT_ENV]  # children, and what they start, are not forkservers
    _tie_to(int(parent), kernel=thread == "main")  # exits at once if that process has ended already
    _child_lifeline = _ChildLifeline()
    util.register_after_fork(_child_lifeline, _ChildLifeline.tie)


_environ_lock = threading.Lock()


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set `values` in os.environ for the block, then restore what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def start_forkserver() -> None:
    """Make sure the forkserver runs; when it has to be started, it starts tied to this process and
    with PYTHONHASHSEED=HASH_SEED. This process's environment is the same afterwards."""
    thread = "main" if threading.current_thread() is threading.main_thread() else "other"
    values = {"PYTHONHASHSEED": HASH_SEED, _PARENT_ENV: f"{os.getpid()}:{thread}"}
    # the forkserver's socket goes in multiprocessing's temporary folder, removed only at a normal exit:
    # noted before the forkserver starts, for the sweep of a later process
    _record("pymp", util.get_temp_dir())
    with _environ_lock, _environ(values):
        forkserver.ensure_running()


def forkserver_gone() -> bool:
    """The forkserver this process started has exited (read from /proc, without reaping it: the pool
    reaps and starts it again for the next child)."""
    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except OSError:
        return True


# -- temporary files ----------------------------------------------------------------------------------


@dataclasses.dataclass
class _RunDir:
    pid: int
    path: Path
    #: what the marker file says: this process's pid and start time, and its multiprocessing folder
    marker: dict[str, Any]


_run_dir: _RunDir | None = None
_run_dir_lock = threading.Lock()


def run_temp_dir() -> Path:
    """This process's temporary folder, `graphmint-<pid>-XXXXXXXX`: made on first use (after sweeping
    those of processes that are gone), removed at exit, swept by a later process if this one is killed."""
    with _run_dir_lock:
        return _current_run_dir().path


def _current_run_dir() -> _RunDir:
    global _run_dir
    pid = os.getpid()
    if _run_dir is None or _run_dir.pid != pid or not _run_dir.path.is_dir():
        sweep_stale_temp()
        path = Path(tempfile.mkdtemp(prefix=f"graphmint-{pid}-"))
        _run_dir = _RunDir(pid, path, {"pid": pid, "started": _proc_stat(pid)[1]})
        _write_marker(_run_dir)
        atexit.register(_remove_run_dir, path, pid)
    return _run_dir


def _remove_run_dir(path: Path, pid: int) -> None:
    if os.getpid() == pid:  # not in a forked copy of this process
        shutil.rmtree(path, ignore_errors=True)


def _write_marker(run_dir: _RunDir) -> None:
    partial = run_dir.path / f".{_MARKER}.partial"
    partial.write_text(json.dumps(run_dir.marker))
    os.replace(partial, run_dir.path / _MARKER)


def _record(key: str, value: str) -> None:
    """Note `value` in this process's marker, for the sweep of a later process."""
    with _run_dir_lock:
        run_dir = _current_run_dir()
        if run_dir.marker.get(key) != value:
            run_dir.marker[key] = value
            _write_marker(run_dir)


def _proc_stat(pid: int) -> tuple[str | None, int | None]:
    """(state, start time in clock ticks since boot) of a process, from /proc; Nones without /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None, None
    return fields[0], int(fields[19])


def _gone(pid: int, started: Any) -> bool:
    """Whether process `pid`, started at `started`, has ended (a zombie or a reused pid counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    state, start = _proc_stat(pid)
    return state in ("Z", "X") or (start is not None and isinstance(started, int) and start != started)


def sweep_stale_temp(root: Path | None = None) -> list[Path]:
    """Remove the temporary folders of graphmint processes that are gone, and the multiprocessing
    folder each one recorded; returns the folders removed.

    Only folders of this user named `graphmint-<pid>-XXXXXXXX` that hold graphmint's marker for that
    same pid are touched; a process killed outright (SIGKILL) leaves one behind.
    """
    root = Path(tempfile.gettempdir()) if root is None else root
    removed: list[Path] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        match = _RUN_DIR.fullmatch(entry.name)
        if match is None or int(match[1]) == os.getpid():
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if hasattr(os, "getuid") and entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            marker = json.loads((Path(entry.path) / _MARKER).read_text())
        except (OSError, ValueError):
            continue
        pid = int(match[1])
        if not isinstance(marker, dict) or marker.get("pid") != pid or not _gone(pid, marker.get("started")):
            continue
        pymp = marker.get("pymp")
        if isinstance(pymp, str) and Path(pymp).parent == root and Path(pymp).name.startswith("pymp-"):
            shutil.rmtree(pymp, ignore_errors=True)
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


_tie_forkserver()
