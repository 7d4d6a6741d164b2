"""`graphmint validate`: re-run artifacts on disk against golden data, without the model's code.

Two kinds of folder are accepted: a published `artifacts/<model>/` (its manifest says which runner
loads each route's file; its files' hashes and signature are checked here, and routes whose format
can run code are loaded only when trusted), and any folder holding a `model.onnx` with
`test_data_set_*` folders. The replay itself is validators.replay's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graphmint.exporters.base import Artifact, first_line
from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.manifest import FileRecord, ModelManifest, inside, read_model_manifest
from graphmint.pipeline.publish.trust import folder_trust
from graphmint.validators import RUNNERS
from graphmint.validators.budget import Budget
from graphmint.validators.check import Case
from graphmint.validators.details import file_sha256
from graphmint.validators.golden import read_golden_sets
from graphmint.validators.replay import NoGoldenData, golden_cases, replay, replay_onnx_folder
from graphmint.validators.results import RouteResult, Status
from graphmint.validators.tolerance import (
    DEFAULT_TOLERANCES,
    EXACT,
    Criterion,
    Rule,
    Tolerance,
    TolerancePolicy,
)

__all__ = ["FolderValidation", "TrustOptions", "published_cases", "published_tolerance", "validate_path"]


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


def _validate_onnx_folder(
    path: Path, atol: float | None, rtol: float | None, timeout_s: float | None
) -> FolderValidation:
    try:
        route = replay_onnx_folder(path, _override(TolerancePolicy(), atol, rtol), timeout_s)
    except NoGoldenData as exc:
        raise UsageError(str(exc)) from None
    return FolderValidation(path=path, kind="onnx", routes=[route])


def _override(policy: TolerancePolicy, atol: float | None, rtol: float | None) -> TolerancePolicy:
    extra = {k: v for k, v in (("atol", atol), ("rtol", rtol)) if v is not None}
    return TolerancePolicy(model={**policy.model, **extra}, defaults=policy.defaults) if extra else policy


def published_tolerance(
    known: Mapping[str, Tolerance],
    atol: float | None,
    rtol: float | None,
    budgets: Mapping[str, Budget] | None = None,
) -> Callable[[str, str], Tolerance | Criterion]:
    """The tolerances the manifest recorded per output, with --atol/--rtol taking precedence; an output
    of a reduced-precision route is judged by the accuracy budget it was published with, unless
    --atol/--rtol are given."""

    def tolerance(output: str, dtype: str) -> Tolerance | Criterion:
        base = known.get(output) or DEFAULT_TOLERANCES.get(dtype, EXACT)
        chosen = Tolerance(atol if atol is not None else base.atol, rtol if rtol is not None else base.rtol)
        budget = (budgets or {}).get(output)
        if budget is not None and atol is None and rtol is None:
            return Criterion(Rule.BUDGET, chosen, budget=budget)
        return chosen

    return tolerance


def _changed(folder: Path, files: Sequence[FileRecord]) -> list[str]:
    """The recorded files that are missing or whose bytes changed (every path checked to stay inside)."""
    changed = []
    for record in files:
        path = inside(folder, record.path)
        if not path.is_file() or file_sha256(path) != record.sha256:
            changed.append(record.path)
    return changed


def published_cases(path: Path, manifest: ModelManifest) -> list[Case]:
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
        cases = golden_cases(sets, inputs)
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
    cases = published_cases(path, manifest)
    for entry in manifest.routes:
        name = entry.route
        if entry.status != Status.PASSED:
            continue
        if not entry.artifact:
            result.routes.append(
                RouteResult(
                    route=name,
                    status=Status.SKIPPED,
                    stage="load",
                    reason="in-process route: nothing on disk to re-run",
                )
            )
            continue
        if entry.runner not in RUNNERS:
            reason = f"the manifest names runner {entry.runner!r}, which this graphmint does not have"
            result.routes.append(RouteResult(route=name, status=Status.ERROR, stage="load", reason=reason))
            continue
        artifact_path = inside(path, entry.artifact)
        changed = _changed(path, entry.files)
        if changed:
            reason = f"file(s) changed or missing since publishing: {', '.join(changed)}"
            result.routes.append(RouteResult(route=name, status=Status.ERROR, stage="load", reason=reason))
            continue
        refusal = decision.refusal(entry.artifact, entry.runner)
        if refusal:
            result.routes.append(RouteResult(route=name, status=Status.SKIPPED, stage="load", reason=refusal))
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
        budgets = {name: Budget(**b.budget.dump()) for name, b in (entry.budgets or {}).items()}
        tolerance = published_tolerance(known, atol, rtol, budgets)
        result.routes.append(replay(name, artifact, cases, tolerance, timeout_s))
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
