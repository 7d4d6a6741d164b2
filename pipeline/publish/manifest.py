"""The manifests graphmint writes, read back as checked types.

`read_model_manifest` (a published `artifacts/<model>/manifest.json`) and `read_bundle_manifest`
(a serving bundle's MANIFEST.json) parse the file against a schema before anything is loaded from
the folder: a file that is not JSON, not an object, lacks a key or holds a value of the wrong type
is a UsageError with one line. Every path they hold must stay inside the folder: a relative path
without `..` parts, which `inside()` also resolves (symbolic links included) before it is opened.
Keys that other versions of graphmint wrote and this one does not declare are dropped as the file is
read; what this one writes declares every key (validators.results.Record: the manifest's routes are
the run's own RouteResult records).

They are written through the same types (`write_model_manifest`, `BundleManifest.to_json`): a manifest
read back and written again is the same bytes. `schema_version` says which layout a file has;
manifests from before it carry none and read as version 1.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from graphmint.exporters.formats import result_packages
from graphmint.pipeline.errors import UsageError
from graphmint.validators.results import FileEntry, Record, RelPath, RouteResult, json_default

__all__ = [
    "GRAPHMINT_VERSION",
    "SCHEMA_VERSION",
    "BundleManifest",
    "ModelManifest",
    "ModelSource",
    "Recommended",
    "WeightsFile",
    "inside",
    "installed_versions",
    "json_default",
    "read_bundle_manifest",
    "read_model_manifest",
    "write_model_manifest",
]

#: the layout of manifest.json and MANIFEST.json (a reader refuses none: undeclared keys are dropped)
SCHEMA_VERSION = 1


def _version() -> str:
    try:
        return version("graphmint")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


#: pyproject.toml's version, as installed
GRAPHMINT_VERSION = _version()

#: the packages whose versions decide what graphmint measures (results, cache keys, bench figures):
#: every run's, then every format's (exporters.formats)
RESULT_PACKAGES = result_packages()


def installed_versions(packages: tuple[str, ...] = RESULT_PACKAGES) -> dict[str, str]:
    """The installed version of each package, read from package metadata (nothing is imported);
    packages that are not installed are left out."""
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


class _Entry(Record):
    """A record of a manifest that is not a route's (validators.results has those)."""

    def to_json(self) -> str:
        """The file's text: indented JSON, declared keys in their order."""
        return self.text()


#: a file of a published folder (validators.results.FileEntry)
FileRecord = FileEntry


class TensorEntry(_Entry):
    name: str
    dtype: str
    shape: list[int | str]


class DimEntry(_Entry):
    min: int = Field(ge=0)
    max: int = Field(ge=0)
    example: int = Field(ge=0)


#: a route of a manifest (validators.results.RouteResult)
RouteEntry = RouteResult


class GoldenEntry(_Entry):
    path: RelPath
    label: str = ""
    #: the dynamic dims' sizes at the grid point the set holds
    sizes: dict[str, int] = {}
    files: list[FileRecord] = []


class WeightsFile(_Entry):
    """A file the model's weights were loaded from, and its sha256 when it was."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ModelSource(_Entry):
    """What rebuilds the eager model: its reference (a `module:callable`, or the path of a model
    folder or file) and seed; the kind of reference, the model's class, the callable's arguments,
    the weights files it was loaded from and the module registering its custom Keras classes."""

    omitted_when_none: ClassVar[tuple[str, ...]] = ("custom_objects",)

    ref: str
    seed: int = Field(ge=0)
    kind: str = "callable"
    model_class: str = ""
    args: dict[str, Any] = {}
    weights: list[WeightsFile] = []
    custom_objects: str | None = None


class Recommended(_Entry):
    """The fastest verified artifact, as `graphmint bench` measured it (bench.json has every figure)."""

    route: str
    artifact: RelPath
    runner: str
    batch: int = Field(ge=1)
    threads: int = Field(ge=1)
    p50_us: float
    speedup: float | None = None
    measured: str = ""
    #: the routes measured as fast within the noise
    as_fast: list[str] = []


class ModelManifest(_Entry):
    """A published model: its interface, the versions it ran with, how each route went."""

    schema_version: int = SCHEMA_VERSION
    name: str
    framework: str
    inputs: list[TensorEntry]
    outputs: list[TensorEntry]
    #: every dynamic dim's range
    dims: dict[str, DimEntry] = {}
    versions: dict[str, str] = {}
    #: golden data sets: one per grid point, with its dims' sizes and its files
    golden: list[GoldenEntry] = []
    #: the rule that gates float outputs, and per output the eager model's own error against a float64
    #: copy (RMSE; empty where none could be made, and `float64_reference` says why, else "ok")
    rule: str = "noise"
    noise: dict[str, float] = {}
    float64_reference: str = "ok"
    #: outputs whose comparison proves nothing, and why
    vacuous: dict[str, str] = {}
    #: the model's `module:callable` and seed: what rebuilds the eager model (graphmint bench)
    model: ModelSource | None = None
    routes: list[RouteResult]
    recommended: Recommended | None = None
    omitted_when_none: ClassVar[tuple[str, ...]] = ("model", "recommended")

    def route(self, name: str) -> RouteResult:
        """The route called `name` (KeyError where the manifest has none)."""
        found = next((r for r in self.routes if r.route == name), None)
        if found is None:
            raise KeyError(f"{self.name} has no route {name!r}: {[r.route for r in self.routes]}")
        return found


class BundleEntry(_Entry):
    server: str
    name: str
    route: str
    path: RelPath
    platform: str | None = None
    #: a Triton entry run by a backend it names instead of a platform (OpenVINO's)
    backend: str | None = None
    #: what the server computes in where its config cannot say so
    precision: str | None = None
    #: TensorFlow Serving's entry: the signature it serves
    signature: str | None = None
    #: the model's recommended artifact (graphmint bench) fills this entry
    recommended: bool = False
    omitted_when_none: ClassVar[tuple[str, ...]] = ("signature", "backend", "precision")


class BundleModel(_Entry):
    name: str
    framework: str
    inputs: list[TensorEntry]
    outputs: list[TensorEntry]
    dims: dict[str, DimEntry] = {}
    tolerance: dict[str, float | None] = {}
    #: per output, the tolerance its route was validated with (bundles from before it have none)
    tolerances: dict[str, dict[str, float]] = {}
    golden: RelPath
    entries: list[BundleEntry] = []
    #: the model manifest's `recommended`, where graphmint bench recorded one
    recommended: Recommended | None = None
    #: per route of the model manifest: its status, its worst errors and its tolerance
    validation: dict[str, dict[str, Any]] = {}


class BundleManifest(_Entry):
    schema_version: int = SCHEMA_VERSION
    models: list[BundleModel]
    files: list[FileRecord]


def _read(path: Path, kind: type[_Entry], fix: str) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} is missing: {fix}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path} is not readable JSON ({type(exc).__name__}): {fix}") from None
    try:
        return kind.read(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "the top level"
        what = error["msg"].split(" or instance of ")[0].removeprefix("Value error, ").rstrip(".")
        raise UsageError(f"{path} is not a graphmint manifest: {where}: {what}: {fix}") from None


def read_model_manifest(folder: Path) -> ModelManifest:
    """The manifest of a published model folder, checked; UsageError (one line) when it is not one."""
    manifest: ModelManifest = _read(
        folder / "manifest.json", ModelManifest, "publish the model again with graphmint"
    )
    return manifest


def write_model_manifest(folder: Path, manifest: ModelManifest) -> Path:
    """`folder/manifest.json`, the manifest's text (strict: a record that holds an undeclared key was
    refused when it was built)."""
    path = folder / "manifest.json"
    path.write_text(manifest.text())
    return path


def read_bundle_manifest(folder: Path) -> BundleManifest:
    """A serving bundle's MANIFEST.json, checked; UsageError (one line) when it is not one."""
    manifest: BundleManifest = _read(
        folder / "MANIFEST.json", BundleManifest, "build the bundle again with `graphmint package`"
    )
    return manifest


def inside(folder: Path, relative: str) -> Path:
    """`folder/relative`, once resolved (symbolic links followed) still inside `folder`; else UsageError."""
    path = folder / relative
    try:
        resolved, root = path.resolve(), folder.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link loop
        raise UsageError(f"{path} cannot be resolved ({exc}): the folder is damaged") from None
    if resolved != root and not resolved.is_relative_to(root):
        raise UsageError(f"{path} leads outside {folder} (to {resolved}): graphmint refuses to read it")
    return path
