"""A content-addressed cache of published models: nothing is redone that did not change.

A model's run is keyed by a hash of everything that decides its result: graphmint's own source, the
versions of the packages it runs with, the source of the model's callable (the part of its module it
can depend on: another model in the same file is left out) and of the project modules it imports (not
installed packages: their versions are in the key), the model's spec (inputs, dims,
ranges, seed, routes, tolerances, generator, the bytes of its --data folder), and the run's options
that change a verdict. A hit publishes the cached folder again, after checking every file against the
sha256 its manifest records (a file that differs makes it a miss, and the entry is dropped); a miss
runs the model and stores its published folder (the result is read back from its manifest).
`graphmint bench`, which records into a published folder, refreshes the entry that published it.
Entries are written to a temporary folder and renamed into place, so an interrupted run leaves no
half entry.

The cache lives in $GRAPHMINT_CACHE, else $XDG_CACHE_HOME/graphmint, else ~/.cache/graphmint;
GRAPHMINT_CACHE=off (or `--no-cache`) turns it off. A cache holds artifacts that can run code when
loaded: keep it where only you can write, like the virtual environment graphmint runs in.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from graphmint.pipeline.publish.manifest import GRAPHMINT_VERSION, installed_versions, read_model_manifest
from graphmint.pipeline.publish.staging import Staging, differing_files
from graphmint.pipeline.publish.trust import sign_manifest
from graphmint.pipeline.run.progress import Progress
from graphmint.pipeline.run.results import ModelResult
from graphmint.pipeline.spec.sources import ModelRef, files_digest, source_of

__all__ = [
    "CACHE_ENV",
    "COMPILERS",
    "Lookup",
    "cache_info",
    "cache_root",
    "clear_cache",
    "load",
    "lookup",
    "model_key",
    "publish_cached",
    "refresh",
    "store",
]

CACHE_ENV = "GRAPHMINT_CACHE"
#: the folder under the cache root where compilers keep their own caches (Inductor's FX graph and
#: AOTAutograd caches), so that a run after a small change compiles again only what changed
COMPILERS = "compilers"
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.MULTILINE)


def cache_root() -> Path | None:
    """The cache folder, or None where the cache is off."""
    configured = os.environ.get(CACHE_ENV, "")
    if configured.lower() in ("off", "0", "false", "no"):
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphmint"


def _digest(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(set(paths)):
        digest.update(str(path).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _graphmint_source() -> str:
    """graphmint's own source (an editable install changes without a version change). The zoo and
    corpus model modules are left out: each is the source of its own models, so a changed zoo model
    runs only its own models again; the framework adapters under models/frameworks stay in."""
    files: list[Path] = []
    for package in ("exporters", "validators", "pipeline", "models"):
        spec = importlib.util.find_spec(f"graphmint.{package}")
        for root in spec.submodule_search_locations or [] if spec else []:
            for path in Path(root).rglob("*.py"):
                relative = path.relative_to(root).parts
                if "__pycache__" in relative:
                    continue
                if package == "models" and len(relative) == 1 and relative[0] != "__init__.py":
                    continue
                files.append(path)
    return _digest(files)


def _installed(path: Path) -> bool:
    """A file of an installed package or of the standard library, whose version the key holds."""
    text = str(path)
    return "site-packages" in text or "dist-packages" in text or text.startswith(sys.base_prefix)


def _project_files(module: str) -> tuple[Path | None, set[Path]]:
    """The model's module file, and the project modules it imports, transitively (their source)."""
    found: set[Path] = set()
    pending = [module]
    own: Path | None = None
    while pending:
        name = pending.pop()
        try:
            spec = importlib.util.find_spec(name)
        except (Exception, SystemExit):  # a module that cannot be found: loading the model will say so
            continue
        origin = Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None
        if origin is None or origin in found or _installed(origin):
            continue
        found.add(origin)
        own = own or origin
        for a, b in _IMPORT.findall(origin.read_text(errors="replace")):
            imported = a or b
            if imported.startswith("."):
                continue
            pending.append(imported)
    return own, found - {own}


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _callable_slice(path: Path, name: str) -> str:
    """The part of a module's source that the callable `name` can depend on: every top-level statement
    that is not a function or class definition (imports, constants, code run at import), and the
    top-level functions and classes reached from `name` and from those statements by the names they use,
    transitively. Another model defined in the same file is left out: changing it runs this one again
    only if this one uses it. A module that does not parse counts whole."""
    source = path.read_text(errors="replace")
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    defined = {node.name: node for node in tree.body if isinstance(node, _DEFINITIONS)}
    kept: list[ast.stmt] = [node for node in tree.body if not isinstance(node, _DEFINITIONS)]
    pending = [name.split(".")[0]]
    pending += [n.id for node in kept for n in ast.walk(node) if isinstance(n, ast.Name)]
    reached: set[str] = set()
    while pending:
        current = pending.pop()
        if current in defined and current not in reached:
            reached.add(current)
            pending.extend(n.id for n in ast.walk(defined[current]) if isinstance(n, ast.Name))
    kept += [node for node in tree.body if isinstance(node, _DEFINITIONS) and node.name in reached]
    return "\n".join(ast.get_source_segment(source, node) or "" for node in kept)


def _source_digest(ref: str) -> str:
    """The model's own source (its callable's slice of its module, or the whole module of `module:`)
    and its project modules' source."""
    module, _, name = ref.partition(":")
    own, imported = _project_files(module)
    digest = hashlib.sha256(_digest(imported).encode())
    if own is not None:
        code = _callable_slice(own, name) if name else own.read_text(errors="replace")
        digest.update(str(own).encode() + b"\0" + code.encode())
    return digest.hexdigest()


def _model_digest(ref: ModelRef) -> str:
    """The user's code the model is built by, and the bytes of its folder or file and weights."""
    source = source_of(ref)
    files = source.files(ref) + ([Path(ref.weights)] if ref.weights and Path(ref.weights).is_file() else [])
    parts = [_source_digest(code) for code in source.code(ref)] + [files_digest(files)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def model_key(spec: Any, options: Mapping[str, Any]) -> str:
    """The hash of everything that decides the model's published folder and result."""
    data_files: list[Path] = []
    if spec.data:
        data_files = [p for p in Path(spec.data).rglob("*") if p.is_file()]
    parts = {
        "graphmint": GRAPHMINT_VERSION,
        "graphmint_source": _graphmint_source(),
        "versions": installed_versions(),
        "python": sys.version.split()[0],
        "source": _model_digest(spec.model_ref),
        "data": _digest(data_files),
        "spec": repr(spec),
        "options": dict(options),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def load(root: Path, key: str) -> tuple[ModelResult, Path] | None:
    """The cached result and folder of `key`, every file checked against its recorded sha256; None on
    a miss (an entry whose files differ is dropped)."""
    entry = root / "models" / key
    folder = entry / "folder"
    try:
        manifest = read_model_manifest(folder)
    except Exception:  # no entry, or one this graphmint cannot read: run the model
        return None
    if differing_files(folder, manifest):
        shutil.rmtree(entry, ignore_errors=True)
        return None
    result: ModelResult = ModelResult.read(manifest.dump())
    return result, folder


def store(root: Path, key: str, result: ModelResult) -> None:
    """Keep the published folder and result of a model under `key` (atomically; an existing entry stays)."""
    if result.published is None:
        return
    models = root / "models"
    models.mkdir(parents=True, exist_ok=True)
    if (models / key).exists():
        return
    work = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=models))
    try:
        shutil.copytree(result.published, work / "folder", symlinks=True)
        for signature in (work / "folder").glob("*.sig"):  # signed again where it is published
            signature.unlink()
        os.rename(work, models / key)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)


def refresh(published: str, folder: Path) -> bool:
    """After a published folder changed in place (graphmint bench recorded into it): the entry that
    published the manifest text `published` now holds `folder` as it is, so that the next run that
    publishes from the cache publishes what bench recorded too. False where no entry published it."""
    root = cache_root()
    if root is None:
        return False
    for entry in _entries(root):
        try:
            held = (entry / "folder" / "manifest.json").read_text()
        except OSError:
            continue
        if held != published:
            continue
        work = Path(tempfile.mkdtemp(prefix=f".{entry.name[:16]}-", dir=entry.parent))
        old = entry.with_name(f".{entry.name}.replaced")
        try:
            shutil.copytree(folder, work / "folder", symlinks=True)
            for signature in (work / "folder").glob("*.sig"):  # signed again where it is published
                signature.unlink()
            os.rename(entry, old)
            os.rename(work, entry)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)
            return False
        shutil.rmtree(old, ignore_errors=True)
        return True
    return False


class CacheOptions(Protocol):
    """What of a run's options the cache reads (pipeline.run.stages.RunOptions, frozen: read-only)."""

    @property
    def cache(self) -> bool: ...

    @property
    def explain(self) -> bool: ...

    def cache_key_options(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Lookup:
    """The cache's answer for one model's run, asked once: where the run is kept (`key` under `root`;
    no root: the run goes around the cache) and, on a hit, the result and folder kept there."""

    root: Path | None = None
    key: str = ""
    #: the cached result and published folder, every file checked against its manifest; None: a miss
    hit: tuple[ModelResult, Path] | None = None

    def keep(self, result: ModelResult) -> None:
        """Keep a published model's folder and result under the key (where the run is cached)."""
        if self.root is not None and result.published is not None:
            store(self.root, self.key, result)


def lookup(spec: Any, options: CacheOptions) -> Lookup:
    """The one place that decides whether a model's run goes through the cache (on, and not
    `graphmint explain`) and whether the cache holds it: a hit or a miss."""
    root = cache_root() if options.cache and not options.explain else None
    if root is None:
        return Lookup()
    key = model_key(spec, options.cache_key_options())
    return Lookup(root, key, load(root, key))


def publish_cached(
    name: str, result: ModelResult, folder: Path, out: Path, progress: Progress, signing_key: Path | None
) -> ModelResult:
    """Publish a cached model folder again as `out/name`, atomically and signed as a run would."""
    progress.model_started(name, result.framework, [r.route for r in result.routes])
    with Staging(out, name) as staging:
        assert staging.path is not None
        shutil.copytree(folder, staging.path, symlinks=True, dirs_exist_ok=True)
        if signing_key is not None:
            sign_manifest(staging.path / "manifest.json", signing_key)
        result.published = staging.commit()
    result.cached = True
    for route in result.routes:
        progress.route_started(name, route.route)
        progress.route_finished(name, route)
    progress.model_finished(result)
    return result


def _entries(root: Path) -> list[Path]:
    models = root / "models"
    return (
        sorted(p for p in models.iterdir() if p.is_dir() and not p.name.startswith("."))
        if models.is_dir()
        else []
    )


def cache_info() -> str:
    """One line: where the cache is, how many models it holds, and their size."""
    root = cache_root()
    if root is None:
        return f"the cache is off ({CACHE_ENV}={os.environ.get(CACHE_ENV)})"
    entries = _entries(root)
    size = sum(f.stat().st_size for e in entries for f in e.rglob("*") if f.is_file())
    compilers = sum(f.stat().st_size for f in (root / COMPILERS).rglob("*") if f.is_file())
    return (
        f"{root}: {len(entries)} cached model run(s), {size / 2**20:.1f} MiB; compiler caches "
        f"{compilers / 2**20:.1f} MiB"
    )


def clear_cache() -> str:
    """Empty the cache (its `models` folder, interrupted entries included, and the compilers' caches);
    one line on what went."""
    root = cache_root()
    if root is None:
        return f"the cache is off ({CACHE_ENV}={os.environ.get(CACHE_ENV)}): nothing to clear"
    count = len(_entries(root))
    shutil.rmtree(root / "models", ignore_errors=True)
    shutil.rmtree(root / COMPILERS, ignore_errors=True)
    return f"{root}: removed {count} cached model run(s) and the compiler caches"
