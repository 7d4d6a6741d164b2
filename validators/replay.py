"""Replaying artifacts on disk against golden data, without the model's code.

`replay` checks one artifact on golden cases as one route; `replay_onnx_folder` does it for a folder
holding `model.onnx` and `test_data_set_*` (the ONNX model-zoo and backend-test layout), upgrading a
file older than the opsets ONNX Runtime runs on a copy in a temporary folder. `graphmint validate`
(pipeline.validate) reads published folders, their manifests and signatures, and replays through here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from graphmint.exporters.base import Artifact, first_line
from graphmint.validators.check import (
    Case,
    check_runtimes,
    combine_checks,
    cross_check_warnings,
    diagnosis_of,
    excused_cross_checks,
)
from graphmint.validators.golden import GoldenSet, read_golden_sets
from graphmint.validators.onnx_upgrade import ORT_MIN_OPSET, UPGRADE_OPSET, default_opset, upgrade_onnx
from graphmint.validators.results import ArtifactCheck, Diagnosis, OpsetUpgrade, RouteResult, Stage, Status
from graphmint.validators.tolerance import Criterion, Tolerance, TolerancePolicy

__all__ = ["NoGoldenData", "golden_cases", "replay", "replay_onnx_folder"]


class NoGoldenData(ValueError):
    """A folder with an artifact but no golden data to check it against."""


def golden_cases(sets: Sequence[GoldenSet], input_names: Sequence[str]) -> list[Case]:
    """Each golden set as a Case, its inputs matched to `input_names` (by position where unnamed)."""
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


def replay(
    route: str, artifact: Artifact, cases: Sequence[Case], tolerance: Any, timeout_s: float | None
) -> RouteResult:
    """`artifact` run on every case, on its own runner and the cross-check runtimes, as one route."""
    checks = check_runtimes(artifact, cases, tolerance, timeout_s)
    status, stage, reason = combine_checks(checks)
    warnings = cross_check_warnings(checks) if status == Status.PASSED else []
    excused = sorted(excused_cross_checks(checks, strict=False)) if status == Status.PASSED else []
    diagnosis = diagnosis_of(checks) if status != Status.PASSED else Diagnosis.NONE
    first = next(iter(cases[0].expected.items())) if cases and cases[0].expected else None
    judge = tolerance(first[0], str(first[1].dtype)) if first else None
    tol = judge.tolerance if isinstance(judge, Criterion) else judge
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
        excused=excused,
    )


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


def replay_onnx_folder(path: Path, policy: TolerancePolicy, timeout_s: float | None) -> RouteResult:
    """`path/model.onnx` re-run against the folder's test_data_set_N; an opset older than ONNX
    Runtime runs is checked on an upgraded copy, and the result says so. NoGoldenData where the folder
    holds no set."""
    import onnx

    model_path = path / "model.onnx"
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:
        return RouteResult(
            route="onnx",
            status=Status.ERROR,
            stage=Stage.LOAD,
            reason=f"cannot read model.onnx: {first_line(exc)}",
        )
    if not model.graph.node and not model.graph.output:  # protobuf reads an empty file as an empty model
        size = model_path.stat().st_size
        why = "is empty (0 bytes)" if size == 0 else f"holds no graph ({size} bytes)"
        reason = f"{model_path.name} {why}: the file is damaged or was never written; export it again"
        return RouteResult(route="onnx", status=Status.ERROR, stage=Stage.LOAD, reason=reason)
    unsupported = _unsupported(model)
    if unsupported:
        return RouteResult(route="onnx", status=Status.SKIPPED, stage=Stage.LOAD, reason=unsupported)
    initializers = {i.name for i in model.graph.initializer}
    inputs = tuple(i.name for i in model.graph.input if i.name not in initializers)
    outputs = tuple(o.name for o in model.graph.output)
    artifact = Artifact("onnx", "model.onnx", "onnxruntime", model_path, inputs, outputs)
    try:
        cases = golden_cases(read_golden_sets(path, inputs, outputs), inputs)
    except Exception as exc:
        return RouteResult(
            route="onnx",
            status=Status.ERROR,
            stage=Stage.LOAD,
            reason=f"cannot read test data: {first_line(exc)}",
        )
    if not cases:
        raise NoGoldenData(f"{path} holds model.onnx but no test_data_set_* folder to check it against")
    tolerance = partial(policy.resolve, "onnx")
    route = replay("onnx", artifact, cases, tolerance, timeout_s)
    opset = default_opset(model)
    if opset is not None and route.check and _refused_as_too_old(route.check, opset):
        route = _upgraded_result(route, opset, artifact, model_path, cases, tolerance, timeout_s)
    return route


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
            upgrade = upgrade_onnx(source, Path(tmp) / source.name, UPGRADE_OPSET, timeout_s)
        except Exception as exc:
            reason = (
                f"ONNX Runtime could not load opset {opset} ({refused}), and upgrading to opset "
                f"{UPGRADE_OPSET} with onnx.version_converter failed: {first_line(exc)}"
            )
            return original.model_copy(update={"status": Status.ERROR, "stage": Stage.LOAD, "reason": reason})
        result = replay(original.route, replace(artifact, path=upgrade.path), cases, tolerance, timeout_s)
    note = (
        f"upgraded from opset {upgrade.from_opset} to opset {upgrade.to_opset} with {upgrade.converter}, "
        f"as ONNX Runtime could not load opset {upgrade.from_opset}"
    )
    result.reason = f"{note}; the upgraded copy: {result.reason}" if result.reason else note
    result.details.opset_upgrade = OpsetUpgrade(**upgrade.to_json(), original_load_error=refused)
    return result
