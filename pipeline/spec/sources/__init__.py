"""Where a model comes from: a `module:callable` with its arguments, or a path to a model as its
framework saved it (a transformers folder, a `.keras` file, a keras-hub preset), with optional weights.

Each kind of source is one class in this package, registered in SOURCES: it says whether a reference
is its own, builds the model from it (every process that needs the model calls it again), names what
the cache must hash, what loading its artifacts must import, and, where the model tells, its inputs.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphmint.pipeline.errors import ModelLoadError
from graphmint.validators.details import file_sha256

__all__ = [
    "SOURCES",
    "Inferred",
    "ModelRef",
    "Source",
    "default_name",
    "file_sha256",
    "files_digest",
    "frameworks_of",
    "is_callable_ref",
    "json_object",
    "parse_arg",
    "provenance",
    "source_of",
    "weights_in",
]

_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class ModelRef:
    """What builds the eager model: `ref` (a `module:callable` or a path), the callable's keyword
    arguments, a weights file loaded strictly into the built model, the module that registers a
    `.keras` file's custom classes, and whether the user trusts what runs code when loaded."""

    ref: str
    args: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None
    custom_objects: str | None = None
    trust: bool = False

    @staticmethod
    def of(ref: str | ModelRef) -> ModelRef:
        return ref if isinstance(ref, ModelRef) else ModelRef(ref)


@dataclass(frozen=True)
class Inferred:
    """Inputs a model's own files or config declare, with their dims' and values' ranges (texts as
    --dim / --range take them; the user's own come after and win) and the generator of their masks."""

    inputs: list[str]
    dims: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    generator: str | None = None


class Source(ABC):
    """One kind of model reference."""

    #: the manifest's name of this kind ("callable", "transformers", "keras", "keras-hub")
    kind: str
    #: what building does, as an error message says it ("calling 'nets:build' raised ...")
    verb = "loading"
    #: whether the reference is a path (the manifest records it absolute)
    is_path = True

    @abstractmethod
    def claims(self, ref: str) -> bool:
        """Whether `ref` is of this kind (only looked at, never loaded)."""

    @abstractmethod
    def factory(self, ref: ModelRef) -> Callable[[], Any]:
        """A function that builds the model (called under the seed and the build's time bound);
        ModelLoadError, one line, where the reference cannot build one."""

    def frameworks(self, ref: ModelRef) -> set[str]:
        """The frameworks loading the model imports, as far as can be told without loading it."""
        return set()

    def warm(self, ref: ModelRef) -> None:
        """Import what building the model imports, so that children forked later start warm."""

    def files(self, ref: ModelRef) -> list[Path]:
        """The files whose bytes decide the model (the cache hashes them)."""
        return []

    def code(self, ref: ModelRef) -> tuple[str, ...]:
        """The user's code the model is built by, as `module:name` (a callable's slice of its module)
        or `module:` (the whole module), that the cache hashes beside the installed packages."""
        return tuple(f"{m}:" for m in (ref.custom_objects,) if m)

    def imports(self, ref: ModelRef) -> tuple[str, ...]:
        """The modules a process imports before it loads one of the model's artifacts."""
        return tuple(m for m in (ref.custom_objects,) if m)

    def infer(self, ref: ModelRef, model: Any) -> Inferred | None:
        """The inputs the built model declares, where this kind of source can tell: a transformers
        model's, however it was built (pipeline.spec.sources.transformers_folder)."""
        from graphmint.pipeline.spec.sources.transformers_folder import transformers_inputs

        return transformers_inputs(model)

    def describe(self, ref: ModelRef, model: Any) -> dict[str, Any]:
        """What the manifest records of where the model came from, beyond its reference."""
        return {"model_class": f"{type(model).__module__}.{type(model).__qualname__}"}


def source_of(ref: str | ModelRef) -> Source:
    """The kind of source `ref` is; ModelLoadError saying what was expected where it is none."""
    text = ModelRef.of(ref).ref
    for source in SOURCES:
        if source.claims(text):
            return source
    path = Path(text)
    if path.is_dir():
        raise ModelLoadError(
            f"folder {text!r} holds no model graphmint can load: a transformers folder has a config.json "
            "with 'architectures' (save_pretrained), a keras-hub preset a metadata.json and config.json "
            "(save_to_preset)"
        )
    if path.is_file():
        raise ModelLoadError(
            f"file {text!r} is not a model graphmint can load: pass a .keras file, a folder, or "
            "module:callable (weights files go to --weights)"
        )
    if _CALLABLE.match(text):
        raise AssertionError("the factory source claims every module:callable")  # pragma: no cover
    if "/" in text or text.endswith(".keras") or text.startswith("."):
        raise ModelLoadError(f"model path {text!r} does not exist: pass an existing folder or .keras file")
    raise ModelLoadError(
        f"model reference {text!r} is neither module:callable (e.g. mymodels:build) nor an existing "
        "folder or .keras file"
    )


def provenance(ref: ModelRef, model: Any) -> dict[str, Any]:
    """Where the model came from, as the manifest's `model` records it (but for the seed): the
    reference and its kind, the model's class, the callable's arguments, every weights file it was
    loaded from with its sha256, the module registering its custom Keras classes."""
    source = source_of(ref)
    described = source.describe(ref, model)
    weights = list(described.pop("weights", []))
    if ref.weights is not None:
        path = Path(ref.weights)
        weights.append({"path": str(path.resolve()), "sha256": file_sha256(path)})
    return {
        "ref": str(Path(ref.ref).resolve()) if source.is_path else ref.ref,
        "kind": source.kind,
        **described,
        "weights": weights,
        "custom_objects": ref.custom_objects,
    }


def frameworks_of(refs: Iterable[str | ModelRef]) -> set[str]:
    """The frameworks building these models imports, as far as can be told without building them
    (a reference that names no model tells nothing: building it will say why)."""
    found: set[str] = set()
    for ref in refs:
        model_ref = ModelRef.of(ref)
        try:
            found |= source_of(model_ref).frameworks(model_ref)
        except ModelLoadError:
            continue
    return found


def is_callable_ref(ref: str) -> bool:
    """Whether `ref` has the form `module:callable` (a path of that form is asked first, where one
    exists)."""
    return bool(_CALLABLE.match(ref))


def default_name(ref: str) -> str:
    """The model's folder name where the user gives none: the callable's name, or the stem of the
    model's folder or file, with what a folder name may not hold replaced by `_`."""
    if _CALLABLE.match(ref) and not Path(ref).exists():
        name = ref.partition(":")[2].split(".")[-1]
    else:
        path = Path(ref).resolve()
        name = path.stem if path.suffix == ".keras" else path.name
    name = re.sub(r"[^A-Za-z0-9_.+-]", "_", name).strip("._")[:128]
    return name or "model"


def parse_arg(text: str) -> tuple[str, Any]:
    """`name=value` of --arg: the value as JSON (10, 0.5, true, [1, 2], "x"), else as the plain text."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise ModelLoadError(
            f"--arg {text!r} is not name=value: pass each argument of the model's class or function "
            "as e.g. --arg hidden_size=64"
        )
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object a file holds (a folder's config.json), or None where it is missing or no object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def weights_in(folder: Path, suffixes: tuple[str, ...]) -> list[dict[str, str]]:
    """The weights files of a model folder (names ending in one of `suffixes`), with their sha256."""
    return [
        {"path": p.name, "sha256": file_sha256(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name.endswith(suffixes)
    ]


def files_digest(paths: Iterable[Path]) -> str:
    """One digest of files' names (relative to their common folder, as given) and bytes."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path).encode() + b"\0" + file_sha256(path).encode() + b"\0")
    return digest.hexdigest()


# the kinds, each in its own module (which imports the base above); a path is asked before the
# module:callable form, as `./models:v2` may be a folder
from graphmint.pipeline.spec.sources.factory import Factory  # noqa: E402
from graphmint.pipeline.spec.sources.keras_files import KerasFile, KerasHubPreset  # noqa: E402
from graphmint.pipeline.spec.sources.transformers_folder import TransformersFolder  # noqa: E402

#: every kind of model reference, in the order they are asked
SOURCES: tuple[Source, ...] = (TransformersFolder(), KerasHubPreset(), KerasFile(), Factory())
