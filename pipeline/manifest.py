"""The manifests graphmint writes, read back as checked types.

`read_model_manifest` (a published `artifacts/<model>/manifest.json`) and `read_bundle_manifest`
(a serving bundle's MANIFEST.json) parse the file against a schema before anything is loaded from
the folder: a file that is not JSON, not an object, lacks a key or holds a value of the wrong type
is a UsageError with one line. Every path they hold must stay inside the folder: a relative path
without `..` parts, which `inside()` also resolves (symbolic links included) before it is opened.
Keys added by newer versions of graphmint are kept and ignored.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from graphmint.pipeline.errors import UsageError

__all__ = ["BundleManifest", "ModelManifest", "inside", "read_bundle_manifest", "read_model_manifest"]


def _relative(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not path or "\\" in path or PurePosixPath(path).is_absolute() or ".." in parts:
        raise ValueError(f"{path!r} is not a path inside the folder")
    return path


RelPath = Annotated[str, AfterValidator(_relative)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


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
    artifact: RelPath | None = None
    runner: str | None = None
    exporter: str | None = None
    files: list[FileRecord] = []
    checks: list[dict[str, Any]] = []
    atol: float | None = None
    rtol: float | None = None

    def output_tolerances(self) -> dict[str, dict[str, float]]:
        """The tolerance each output was checked with ({} where the route recorded no check)."""
        points = self.checks[0].get("points", []) if self.checks else []
        outputs = points[0].get("outputs", []) if points else []
        return {o["name"]: {"atol": o["atol"], "rtol": o["rtol"]} for o in outputs}


class GoldenEntry(_Entry):
    path: RelPath
    label: str = ""
    files: list[FileRecord] = []


class ModelManifest(_Entry):
    name: str
    framework: str
    inputs: list[TensorEntry]
    outputs: list[TensorEntry]
    dims: dict[str, DimEntry] = {}
    versions: dict[str, str] = {}
    golden: list[GoldenEntry] = []
    routes: list[RouteEntry]


class BundleEntry(_Entry):
    server: str
    name: str
    route: str
    path: RelPath
    platform: str | None = None


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


class BundleManifest(_Entry):
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
