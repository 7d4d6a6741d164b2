"""`graphmint validate`: re-run artifacts on disk against golden data, without the model's code.

Two kinds of folder are accepted: a published `artifacts/<model>/` (its manifest says which runner
loads each route's file), and any folder holding a `model.onnx` with `test_data_set_*` folders (the
ONNX model-zoo and backend-test layout). A `model.onnx` older than the opsets ONNX Runtime runs is
checked on an upgraded copy in a temporary folder, and its result says so.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from graphmint.exporters.base import Artifact, first_line
from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.golden import GoldenSet, read_golden_sets
from graphmint.pipeline.publish.manifest import FileRecord, ModelManifest, inside, read_model_manifest
from graphmint.pipeline.publish.trust import folder_trust
from graphmint.pipeline.run.results import RouteResult
from graphmint.validators import RUNNERS
from graphmint.validators.check import (
    Case,
    check_runtimes,
    combine_checks,
    cross_check_warnings,
    diagnosis_of,
)
from graphmint.validators.onnx_upgrade import ORT_MIN_OPSET, UPGRADE_OPSET, default_opset, upgrade_onnx
from graphmint.validators.results import ArtifactCheck, Diagnosis, Stage, Status
from graphmint.validators.tolerance import DEFAULT_TOLERANCES, EXACT, Tolerance, TolerancePolicy

__all__ = ["FolderValidation", "TrustOptions", "validate_path"]


@dataclass
class FolderValidation:
    """The outcome for one folder: a result per route (one 'onnx' route for a plain ONNX folder)."""

    path: Path
    kind: str
    routes: list[RouteResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """At least one route re-ran and passed; the others passed or were skipped with a reason."""
        return any(r.status == Status.PASSED for r in self.routes) and all(r.ok for r in self.routes)


def _cases(sets: Sequence[GoldenSet], input_names: Sequence[str]) -> list[Case]:
    cases = []
    for golden in sets:
        feeds = golden.inputs
        if set(feeds) != set(input_names) and len(feeds) == len(input_names):
            feeds = dict(zip(input_names, feeds.values(), strict=True))  # unnamed or renamed: by position
        if set(feeds) != set(input_names):
            raise ValueError(
                f"{golden.path.name} holds inputs {sorted(feeds)}, the model takes {list(input_names)}"
            )
        cases.append(Case(golden.path.name, {}, None, {n: feeds[n] for n in input_names}, golden.outputs))
    return cases


def _result(
    route: str, artifact: Artifact, cases: Sequence[Case], tolerance: Any, timeout_s: float | None
) -> RouteResult:
    checks = check_runtimes(artifact, cases, tolerance, timeout_s)
    status, stage, reason = combine_checks(checks)
    warnings = cross_check_warnings(checks) if status == Status.PASSED else []
    diagnosis = diagnosis_of(checks) if status != Status.PASSED else Diagnosis.NONE
    first = next(iter(cases[0].expected.items())) if cases and cases[0].expected else None
    tol = tolerance(first[0], str(first[1].dtype)) if first else None
    return RouteResult(
        route=route,
        status=status,
        stage=stage,
        reason=reason,
        diagnosis=diagnosis,
        exporter=artifact.exporter,
        checks=checks,
        atol=tol.atol if tol else None,
        rtol=tol.rtol if tol else None,
        warnings=warnings,
    )


def _override(policy: TolerancePolicy, atol: float | None, rtol: float | None) -> TolerancePolicy:
    extra = {k: v for k, v in (("atol", atol), ("rtol", rtol)) if v is not None}
    return TolerancePolicy(model={**policy.model, **extra}, defaults=policy.defaults) if extra else policy


def _unsupported(model: Any) -> str | None:
    """Why an ONNX model is outside what graphmint validates, or None."""
    from onnx import TensorProto

    domains = {o.domain for o in model.opset_import}
    if "ai.onnx.preview.training" in domains:
        return "uses training operators (ai.onnx.preview.training), which graphmint does not run"
    initializers = {i.name for i in model.graph.initializer}
    for value in [*model.graph.input, *model.graph.output]:
        if value.name in initializers:
            continue
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            return f"{value.name!r} is a {kind.replace('_type', '')}, and graphmint validates tensors only"
        if value.type.tensor_type.elem_type == TensorProto.STRING:
            return f"{value.name!r} is a string tensor, and graphmint validates numeric tensors only"
    return None


def _validate_onnx_folder(
    path: Path, atol: float | None, rtol: float | None, timeout_s: float | None
) -> FolderValidation:
    import onnx

    result = FolderValidation(path=path, kind="onnx")
    model_path = path / "model.onnx"
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:
        result.routes.append(
            RouteResult("onnx", Status.ERROR, "load", f"cannot read model.onnx: {first_line(exc)}")
        )
        return result
    why = _unsupported(model)
    if why:
        result.routes.append(RouteResult("onnx", Status.SKIPPED, "load", why))
        return result
    initializers = {i.name for i in model.graph.initializer}
    inputs = tuple(i.name for i in model.graph.input if i.name not in initializers)
    outputs = tuple(o.name for o in model.graph.output)
    artifact = Artifact("onnx", "model.onnx", "onnxruntime", model_path, inputs, outputs)
    try:
        cases = _cases(read_golden_sets(path, inputs, outputs), inputs)
    except Exception as exc:
        result.routes.append(
            RouteResult("onnx", Status.ERROR, "load", f"cannot read test data: {first_line(exc)}")
        )
        return result
    if not cases:
        raise UsageError(f"{path} holds model.onnx but no test_data_set_* folder to check it against")
    policy = _override(TolerancePolicy(), atol, rtol)
    tolerance = partial(policy.resolve, "onnx")
    route = _result("onnx", artifact, cases, tolerance, timeout_s)
    opset = default_opset(model)
    if opset is not None and route.check and _refused_as_too_old(route.check, opset):
        route = _upgraded_result(route, opset, artifact, model_path, cases, tolerance, timeout_s)
    result.routes.append(route)
    return result


def _refused_as_too_old(check: ArtifactCheck, opset: int) -> bool:
    """ONNX Runtime could not load a model older than the oldest opset it promises to run."""
    return opset < ORT_MIN_OPSET and check.status == Status.ERROR and check.stage == Stage.LOAD


def _upgraded_result(
    original: RouteResult,
    opset: int,
    artifact: Artifact,
    source: Path,
    cases: Sequence[Case],
    tolerance: Callable[[str, str], Tolerance],
    timeout_s: float | None,
) -> RouteResult:
    """The route re-run on a copy of `source` upgraded to UPGRADE_OPSET, written to a temporary folder.

    The result says that it checked an upgraded copy, from and to which opset; when the converter
    fails, the route is an error naming both ONNX Runtime's load error and the converter's.
    """
    refused = original.check.reason if original.check else original.reason
    with tempfile.TemporaryDirectory(prefix="graphmint-upgraded-") as tmp:
        try:
            upgrade = upgrade_onnx(source, Path(tmp) / source.name, UPGRADE_OPSET)
        except Exception as exc:
            reason = (
                f"ONNX Runtime could not load opset {opset} ({refused}), and upgrading to opset "
                f"{UPGRADE_OPSET} with onnx.version_converter failed: {first_line(exc)}"
            )
            return replace(original, status=Status.ERROR, stage=Stage.LOAD, reason=reason)
        result = _result(original.route, replace(artifact, path=upgrade.path), cases, tolerance, timeout_s)
    note = (
        f"upgraded from opset {upgrade.from_opset} to opset {upgrade.to_opset} with {upgrade.converter}, "
        f"as ONNX Runtime could not load opset {upgrade.from_opset}"
    )
    result.reason = f"{note}; the upgraded copy: {result.reason}" if result.reason else note
    result.details["opset_upgrade"] = {**upgrade.to_json(), "original_load_error": refused}
    return result


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _published_tolerance(
    known: Mapping[str, Tolerance], atol: float | None, rtol: float | None
) -> Callable[[str, str], Tolerance]:
    """The tolerances the manifest recorded per output, with --atol/--rtol taking precedence."""

    def tolerance(output: str, dtype: str) -> Tolerance:
        base = known.get(output) or DEFAULT_TOLERANCES.get(dtype, EXACT)
        return Tolerance(atol if atol is not None else base.atol, rtol if rtol is not None else base.rtol)

    return tolerance


def _changed(folder: Path, files: Sequence[FileRecord]) -> list[str]:
    """The recorded files that are missing or whose bytes changed (every path checked to stay inside)."""
    changed = []
    for record in files:
        path = inside(folder, record.path)
        if not path.is_file() or _sha256(path) != record.sha256:
            changed.append(record.path)
    return changed


def _published_cases(path: Path, manifest: ModelManifest) -> list[Case]:
    inputs = tuple(i.name for i in manifest.inputs)
    outputs = tuple(o.name for o in manifest.outputs)
    for golden in manifest.golden:
        inside(path, golden.path)
    changed = _changed(path, [f for g in manifest.golden for f in g.files])
    if changed:
        raise UsageError(
            f"{path}: golden data changed since publishing ({', '.join(changed)}): publish the model again"
        )
    try:
        sets = read_golden_sets(path, inputs, outputs)
        cases = _cases(sets, inputs)
    except Exception as exc:
        raise UsageError(
            f"{path}: cannot read its golden data ({first_line(exc)}): publish it again"
        ) from None
    if not sets:
        raise UsageError(
            f"{path} has a manifest but no test_data_set_* folders: publish it again with graphmint"
        )
    return cases


def _validate_published(
    path: Path, atol: float | None, rtol: float | None, timeout_s: float | None, trust: TrustOptions
) -> FolderValidation:
    manifest = read_model_manifest(path)
    decision = folder_trust(path / "manifest.json", trust=trust.trust, verify_key=trust.verify_key)
    result = FolderValidation(path=path, kind="published")
    inputs = tuple(i.name for i in manifest.inputs)
    outputs = tuple(o.name for o in manifest.outputs)
    dynamic_axes = {
        i.name: {a: d for a, d in enumerate(i.shape) if isinstance(d, str)} for i in manifest.inputs
    }
    cases = _published_cases(path, manifest)
    for entry in manifest.routes:
        name = entry.route
        if entry.status != Status.PASSED:
            continue
        if not entry.artifact:
            result.routes.append(
                RouteResult(name, Status.SKIPPED, "load", "in-process route: nothing on disk to re-run")
            )
            continue
        if entry.runner not in RUNNERS:
            reason = f"the manifest names runner {entry.runner!r}, which this graphmint does not have"
            result.routes.append(RouteResult(name, Status.ERROR, "load", reason))
            continue
        artifact_path = inside(path, entry.artifact)
        changed = _changed(path, entry.files)
        if changed:
            reason = f"file(s) changed or missing since publishing: {', '.join(changed)}"
            result.routes.append(RouteResult(name, Status.ERROR, "load", reason))
            continue
        refusal = decision.refusal(entry.artifact, entry.runner)
        if refusal:
            result.routes.append(RouteResult(name, Status.SKIPPED, "load", refusal))
            continue
        artifact = Artifact(
            route=name,
            exporter=entry.exporter or "",
            runner=entry.runner,
            path=artifact_path,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes={k: v for k, v in dynamic_axes.items() if v},
        )
        known = {name: Tolerance(**t) for name, t in entry.output_tolerances().items()}
        tolerance = _published_tolerance(known, atol, rtol)
        result.routes.append(_result(name, artifact, cases, tolerance, timeout_s))
    return result


@dataclass(frozen=True)
class TrustOptions:
    """Whether artifacts that can run code when loaded may be loaded: with `trust`, or when the
    manifest's signature verifies with `verify_key` (default: $GRAPHMINT_VERIFY_KEY)."""

    trust: bool = False
    verify_key: Path | None = None


def validate_path(
    path: Path,
    atol: float | None = None,
    rtol: float | None = None,
    timeout_s: float | None = None,
    trust: TrustOptions = TrustOptions(),
) -> FolderValidation:
    """Re-run every artifact in `path` against its golden data; UsageError for a folder it cannot read.

    Routes whose format can run code when loaded (TorchScript, .pt2, AOTInductor, SavedModel) are
    skipped with the reason unless `trust` allows them; ONNX and TFLite files are always checked.
    """
    if not path.is_dir():
        raise UsageError(f"{path} is not a folder: pass artifacts/<model>/ or a folder with model.onnx")
    if (path / "manifest.json").is_file():
        return _validate_published(path, atol, rtol, timeout_s, trust)
    if (path / "model.onnx").is_file():
        return _validate_onnx_folder(path, atol, rtol, timeout_s)
    raise UsageError(
        f"{path} holds neither manifest.json (a published model) nor model.onnx with test_data_set_* folders"
    )
