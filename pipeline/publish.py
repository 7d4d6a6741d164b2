"""Atomic publishing: a model's folder is built aside and swapped in whole, or not at all.

Files are written under `<out>/.graphmint-staging-<name>-<pid>-<rand>/`. `commit()` swaps that folder
with `<out>/<name>/` in one `renameat2(RENAME_EXCHANGE)` where the kernel has it (two renames
otherwise), so readers see the old folder or the new one, never a mix. A run that fails, raises or
is interrupted removes its staging folder; one killed outright leaves it behind, hidden, and the
next run sweeps it away.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from pipeline.results import FileEntry

__all__ = ["STAGING_PREFIX", "Staging", "hash_files", "sweep_stale"]

STAGING_PREFIX = ".graphmint-staging-"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(out: Path) -> list[Path]:
    """Remove staging folders left by runs whose process is gone."""
    removed = []
    if not out.is_dir():
        return removed
    for entry in out.iterdir():
        if not entry.name.startswith((STAGING_PREFIX, ".graphmint-old-")):
            continue
        pid_text = entry.name.rsplit("-", 2)[-2]
        if pid_text.isdigit() and _pid_alive(int(pid_text)) and int(pid_text) != os.getpid():
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where that call is not available."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: filesystem or kernel without it
            return False
        raise OSError(err, os.strerror(err), str(a))
    return True


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def hash_files(root: Path, sub: Path) -> list[FileEntry]:
    """sha256 and size of every file under `sub`, with paths relative to `root`."""
    entries = []
    for path in sorted(p for p in sub.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        entries.append(FileEntry(path.relative_to(root).as_posix(), digest.hexdigest(), path.stat().st_size))
    return entries


class Staging:
    """A private folder that becomes `<out>/<name>/` on `commit()`, and vanishes otherwise."""

    def __init__(self, out: Path, name: str) -> None:
        self.out = out
        self.name = name
        self.target = out / name
        self.path: Path | None = None
        self.committed = False

    def __enter__(self) -> Staging:
        self.out.mkdir(parents=True, exist_ok=True)
        sweep_stale(self.out)
        self.path = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{self.name}-{os.getpid()}-", dir=self.out))
        return self

    def commit(self) -> Path:
        assert self.path is not None
        _fsync_tree(self.path)
        self.path.chmod(0o755)
        if self.target.exists() and _exchange(self.path, self.target):
            shutil.rmtree(self.path)  # now holds the previous version
        else:
            old = None
            if self.target.exists():
                old = Path(
                    tempfile.mkdtemp(prefix=f".graphmint-old-{self.name}-{os.getpid()}-", dir=self.out)
                )
                os.rename(self.target, old / "prev")
            os.rename(self.path, self.target)
            if old is not None:
                shutil.rmtree(old)
        self.committed = True
        self.path = None
        return self.target

    def __exit__(self, *exc: object) -> None:
        if self.path is not None and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
