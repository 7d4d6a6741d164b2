"""Atomic publishing: a model's folder is built aside and swapped in whole, or not at all.

Files are written under `<out>/.graphmint-staging-<name>-<pid>-<rand>/`. `commit()` swaps that folder
with `<out>/<name>/` in one `renameat2(RENAME_EXCHANGE)` where the kernel has it (two renames
otherwise), so readers see the old folder or the new one, never a mix. A run that fails, raises or
is interrupted removes its staging folder; one killed outright leaves it behind, hidden, and the
next run sweeps it away. Only folders that graphmint made are swept: each holds an owner file with
the pid of its process and a random token, and a folder whose owner file is missing is left alone.
A previous version parked aside during a swap that a kill interrupted is put back.

`<out>/<name>/` is only ever replaced when it holds what graphmint published there (its manifest):
a folder of the user's own at that path is refused before any work starts, and again at commit.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from graphmint.exporters.upstream import unreproducible
from graphmint.pipeline.errors import UsageError
from graphmint.validators.details import file_sha256
from graphmint.validators.results import FileEntry

if TYPE_CHECKING:
    from graphmint.pipeline.publish.manifest import ModelManifest

__all__ = [
    "OWNER_FILE",
    "STAGING_PREFIX",
    "Staging",
    "check_target",
    "differing_files",
    "hash_files",
    "sweep_stale",
    "write_text_atomic",
]

STAGING_PREFIX = ".graphmint-staging-"
OLD_PREFIX = ".graphmint-old-"
#: written into every staging and parked-aside folder: {"pid", "token", "target"}
OWNER_FILE = ".graphmint-owner"
#: tokens of the staging folders this process holds open
_LIVE_TOKENS: set[str] = set()
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


def _owner(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def _mark(folder: Path, target: str) -> str:
    token = secrets.token_hex(8)
    (folder / OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "token": token, "target": target}))
    return token


def differing_files(folder: Path, manifest: ModelManifest) -> list[str]:
    """The files of a published model folder that differ from the sha256 its manifest records, are
    missing, or are not recorded (the manifest and its signatures aside)."""
    recorded = {f.path: f.sha256 for r in manifest.routes for f in r.files}
    recorded.update({f.path: f.sha256 for g in manifest.golden for f in g.files})
    actual = {
        f.path: f.sha256
        for f in hash_files(folder, folder)
        if f.path != "manifest.json" and not f.path.endswith(".sig")
    }
    return sorted({path for path, digest in actual.items() ^ recorded.items()})


def sweep_stale(out: Path) -> list[Path]:
    """Remove the staging folders that graphmint made in `out` for processes that are gone.

    A folder is graphmint's when it has the staging prefix and graphmint's owner file; one whose
    process is alive (or that this process holds open) is kept. A parked-aside previous version
    whose target is missing (the swap was killed halfway) is renamed back into place.
    """
    removed: list[Path] = []
    if not out.is_dir():
        return removed
    for entry in out.iterdir():
        if not entry.name.startswith((STAGING_PREFIX, OLD_PREFIX)) or not entry.is_dir():
            continue
        owner = _owner(entry)
        if owner is None:
            continue
        pid = int(owner["pid"])  # type: ignore[call-overload]
        if owner.get("token") in _LIVE_TOKENS or (pid != os.getpid() and _pid_alive(pid)):
            continue
        target = out / str(owner.get("target", ""))
        parked = entry / "prev"
        if entry.name.startswith(OLD_PREFIX) and parked.is_dir() and not target.exists():
            os.rename(parked, target)
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def write_text_atomic(path: Path, text: str | bytes) -> Path:
    """Write next to `path`, then rename over it: readers never see half a file (a report, a shard)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    os.replace(tmp, path)
    return path


def _published_here(folder: Path, owner_file: str) -> bool:
    """`folder` holds what graphmint published: its manifest file parses as a JSON object."""
    try:
        return isinstance(json.loads((folder / owner_file).read_text()), dict)
    except (OSError, ValueError):
        return False


def check_target(out: Path, name: str, owner_file: str = "manifest.json") -> Path:
    """`out/name`, if graphmint may publish there; UsageError (one line, what to do) otherwise."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is a file, not a folder: pass another --out")
    target = out / name
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UsageError(
            f"{target} exists and is not a folder that graphmint published: graphmint never replaces "
            "it; move it away or publish under another --out or --name"
        )
    if target.exists() and not _published_here(target, owner_file):
        raise UsageError(
            f"{target} exists and was not published by graphmint (it has no {owner_file}): graphmint "
            "never replaces a folder it did not write; move it away or publish under another --out or --name"
        )
    return target


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
    """sha256 and size of every file under `sub` (or of `sub`, a file), with paths relative to `root`.

    graphmint's folders hold plain files only: a symbolic link is a UsageError, never followed.
    Staging's owner file is not part of what is published, and is left out.
    """
    if sub.is_symlink():
        raise UsageError(f"{sub} is a symbolic link: graphmint's folders hold plain files only")
    paths = [sub] if sub.is_file() else []
    for folder, dirs, files in os.walk(sub):
        for name in dirs + files:
            path = Path(folder, name)
            if path.is_symlink():
                raise UsageError(f"{path} is a symbolic link: graphmint's folders hold plain files only")
        paths.extend(Path(folder, name) for name in files if name != OWNER_FILE)
    entries = []
    for path in sorted(paths):
        relative = path.relative_to(root).as_posix()
        entries.append(
            FileEntry(
                path=relative,
                sha256=file_sha256(path),
                bytes=path.stat().st_size,
                unreproducible=unreproducible(relative),
            )
        )
    return entries


class Staging:
    """A private folder that becomes `<out>/<name>/` on `commit()`, and vanishes otherwise.

    `owner_file` is the file that marks a folder graphmint published (a model's manifest.json, a
    bundle's MANIFEST.json): an existing `<out>/<name>/` without it is never replaced.
    """

    def __init__(self, out: Path, name: str, owner_file: str = "manifest.json") -> None:
        self.out = out
        self.name = name
        self.owner_file = owner_file
        self.target = out / name
        self.path: Path | None = None
        self.token: str | None = None
        self.committed = False

    def __enter__(self) -> Staging:
        check_target(self.out, self.name, self.owner_file)
        self.out.mkdir(parents=True, exist_ok=True)
        sweep_stale(self.out)
        self.path = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{self.name}-{os.getpid()}-", dir=self.out))
        self.token = _mark(self.path, self.name)
        _LIVE_TOKENS.add(self.token)
        return self

    def commit(self) -> Path:
        assert self.path is not None
        check_target(self.out, self.name, self.owner_file)
        (self.path / OWNER_FILE).unlink()
        _fsync_tree(self.path)
        self.path.chmod(0o755)
        if self.target.exists() and _exchange(self.path, self.target):
            _mark(self.path, self.name)  # now holds the previous version: swept if a kill stops rmtree
            shutil.rmtree(self.path)
        else:
            old = None
            if self.target.exists():
                old = Path(tempfile.mkdtemp(prefix=f"{OLD_PREFIX}{self.name}-{os.getpid()}-", dir=self.out))
                _mark(old, self.name)
                os.rename(self.target, old / "prev")
            os.rename(self.path, self.target)
            if old is not None:
                shutil.rmtree(old)
        self.committed = True
        self.path = None
        return self.target

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            _LIVE_TOKENS.discard(self.token)
        if self.path is not None and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
