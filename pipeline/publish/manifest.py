"""The manifests graphmint writes, read back as checked types.

`read_model_manifest` (a published `artifacts/<model>/manifest.json`) and `read_bundle_manifest`
(a serving bundle's MANIFEST.json) parse the file against a schema before anything is loaded from
the folder: a file that is not JSON, not an object, lacks a key or holds a value of the wrong type
is a UsageError with one line. Every path they hold must stay inside the folder: a relative path
without `..` parts, which `inside()` also resolves (symbolic links included) before it is opened.
Keys added by newer versions of graphmint are kept and ignored.

They are written through the same types (`write_model_manifest`, `BundleManifest.to_json`): a manifest
read back and written again is the same bytes. `schema_version` says which layout a file has;
manifests from before it carry none and read as version 1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from graphmint.exporters.formats import result_packages
from graphmint.pipeline.errors import UsageError

__all__ = [
    "GRAPHMINT_VERSION",
    "SCHEMA_VERSION",
    "BundleManifest",
    "ModelManifest",
    "ModelSource",
    "Recommended",
    "inside",
    "installed_versions",
    "json_default",
    "read_bundle_manifest",
    "read_model_manifest",
    "write_model_manifest",
]

#: the layout of manifest.json and MANIFEST.json (a reader refuses none: newer keys are kept)
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


def json_default(obj: Any) -> Any:
    """JSON for what manifests and reports hold besides JSON's own types: numpy scalars, paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _relative(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not path or "\\" in path or PurePosixPath(path).is_absolute() or ".." in parts:
        raise ValueError(f"{path!r} is not a path inside the folder")
    return path


RelPath = Annotated[str, AfterValidator(_relative)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    #: optional keys later versions added: left out of the file while they hold nothing
    _omitted_when_none: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> str:
        """The file's text: indented JSON, declared keys in their order, then the others as read."""
        data = self.model_dump(mode="json")
        for key in self._omitted_when_none:
            if data.get(key) is None:
                data.pop(key, None)
        return json.dumps(data, indent=2, default=json_default) + "\n"


class FileRecord(_Entry):
    path: RelPath
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class TensorEntry(_Entry):
    name: str
    dtype: str
    shape: list[int | str]


class DimEntry(_Entry):
    min: int = Field(ge=0)
    max: int = Field(ge=0)
    example: int = Field(ge=0)


class RouteEntry(_Entry):
    route: str
    status: str
    stage: str = ""
    exporter: str | None = None
    runner: str | None = None
    artifact: RelPath | None = None
    files: list[FileRecord] = []
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    atol: float | None = None
    rtol: float | None = None
    reason: str = ""
    #: fp32, or the reduced precision (fp16, int8) whose accuracy budgets judged it
    precision: str = "fp32"
    #: per output of a reduced-precision route: its budget, the values reached over the grid, passed
    budgets: dict[str, dict[str, Any]] | None = None
    checks: list[dict[str, Any]] = []

    def output_tolerances(self) -> dict[str, dict[str, float]]:
        """The tolerance each output is replayed with ({} where the route recorded no check): the one it
        was checked with, and for an output that the noise or scaled rule passed outside that atol/rtol,
        atol widened to twice the largest error its validation accepted on the same (golden) inputs."""
        points = self.checks[0].get("points", []) if self.checks else []
        found: dict[str, dict[str, float]] = {}
        for point in points:
            for output in point.get("outputs", []):
                own = found.setdefault(output["name"], {"atol": output["atol"], "rtol": output["rtol"]})
                accepted = output.get("max_abs_error")
                judged = output.get("rule", "tolerance") != "tolerance" and output.get("passed")
                if judged and output.get("within_tolerance") is False and accepted is not None:
                    own["atol"] = max(own["atol"], 2 * accepted)
        return found


class GoldenEntry(_Entry):
    path: RelPath
    label: str = ""
    files: list[FileRecord] = []


class ModelSource(_Entry):
    """What rebuilds the eager model: its `module:callable` and seed."""

    ref: str
    seed: int = Field(ge=0)


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
    schema_version: int = SCHEMA_VERSION
    name: str
    framework: str
    inputs: list[TensorEntry]
    outputs: list[TensorEntry]
    dims: dict[str, DimEntry] = {}
    versions: dict[str, str] = {}
    golden: list[GoldenEntry] = []
    model: ModelSource | None = None
    routes: list[RouteEntry]
    recommended: Recommended | None = None
    _omitted_when_none: ClassVar[tuple[str, ...]] = ("model", "recommended")


class BundleEntry(_Entry):
    server: str
    name: str
    route: str
    path: RelPath
    platform: str | None = None
    #: the model's recommended artifact (graphmint bench) fills this entry
    recommended: bool = False


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
        return kind.model_validate(data)
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


def write_model_manifest(folder: Path, manifest: Mapping[str, Any]) -> Path:
    """`folder/manifest.json`, written through ModelManifest (a run's manifest that does not fit its own
    schema is a bug, raised as such)."""
    path = folder / "manifest.json"
    data = json.loads(json.dumps(manifest, default=json_default))
    path.write_text(ModelManifest.model_validate(data).to_json())
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
