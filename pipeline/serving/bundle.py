"""The serving bundle: a Triton model repository and a TF Serving layout built from published models.

`package_bundle` reads every published `artifacts/<model>/` (its manifest says which routes passed) and
writes, atomically, `<out>/`:

    triton/<model>_onnx/config.pbtxt, 1/model.onnx              (every model whose onnx route passed)
    triton/<model>_torchscript/config.pbtxt, 1/model.pt         (a passing TorchScript route)
    triton/<model>_savedmodel/config.pbtxt, 1/model.savedmodel/ (a passing saved-model route)
    triton/<model>_openvino/config.pbtxt, 1/model.xml, 1/model.bin (a passing openvino route)
    tfserving/<model>/1/                                        (the SavedModel, where there is one)
    golden/<model>/test_data_set_N/                             (inputs and eager outputs to check with)
    MANIFEST.json                                               (every file's sha256, signatures, results)

Where `graphmint bench` recorded a model's `recommended` artifact, that artifact fills its entry (the
ONNX entry takes the offline-optimized `onnx-optimized` file when it is the one recommended), the
entry says `"recommended": true`, and the model carries the recommendation with its figures.

`verify_bundle` re-hashes the files and reports any changed, missing or added since packaging.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphmint.exporters.formats import FORMATS
from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.manifest import (
    BundleManifest,
    FileRecord,
    ModelManifest,
    inside,
    read_bundle_manifest,
    read_model_manifest,
)
from graphmint.pipeline.publish.staging import Staging, check_target, hash_files
from graphmint.pipeline.publish.trust import (
    TrustError,
    sign_manifest,
    signature_files,
    signing_key_path,
    verify_key_path,
    verify_manifest,
)
from graphmint.pipeline.serving.triton import model_config_text
from graphmint.validators.results import Status

__all__ = ["BUNDLE_MANIFEST", "BundleCheck", "package_bundle", "verify_bundle"]

BUNDLE_MANIFEST = "MANIFEST.json"
#: Triton entries, each format's (exporters.formats)
_TRITON_ENTRIES = tuple(s for f in FORMATS for s in f.serving)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)  # a link is refused when the bundle is hashed
    else:
        shutil.copy2(source, target)


def _published(artifacts: Path, skip: Path) -> list[tuple[Path, ModelManifest]]:
    models = []
    for folder in sorted(p for p in artifacts.iterdir() if p.is_dir() and p.resolve() != skip.resolve()):
        if folder.name.startswith(".") or not (folder / "manifest.json").is_file():
            continue
        manifest = read_model_manifest(folder)
        if "dims" not in manifest.model_fields_set:
            raise UsageError(
                f"{folder / 'manifest.json'} predates dim ranges in manifests: publish {folder.name} again"
            )
        models.append((folder, manifest))
    return models


def _entries(folder: Path, manifest: ModelManifest, root: Path) -> list[dict[str, Any]]:
    """Copy one model's passing artifacts into the bundle; return its entries."""
    passed = {r.route: r for r in manifest.routes if r.status == Status.PASSED and r.artifact}
    recommended = manifest.recommended.route if manifest.recommended else None
    name = manifest.name
    inputs = [t.model_dump() for t in manifest.inputs]
    outputs = [t.model_dump() for t in manifest.outputs]
    dims = {d: r.model_dump() for d, r in manifest.dims.items()}
    entries = []
    for serving in _TRITON_ENTRIES:
        suffix, platform = serving.entry, serving.platform
        # the recommended artifact (graphmint bench) fills its entry where it can
        routes = sorted(serving.routes, key=lambda r: r != recommended)
        route = next((passed[r] for r in routes if r in passed), None)
        if route is None or route.artifact is None:
            continue
        source = inside(folder, route.artifact)
        changed = [f.path for f in route.files if not _intact(folder, f)]
        if changed:
            raise UsageError(
                f"{folder}: {', '.join(changed)} changed since publishing: publish {name} again "
                f"(or check it with `graphmint validate {folder}`)"
            )
        entry = root / "triton" / f"{name}_{suffix}"
        _copy(source, entry / "1" / serving.filename if serving.filename else entry / "1")
        tensor_names = None
        if platform == "pytorch_libtorch":  # Triton's PyTorch backend binds tensors by NAME__INDEX
            tensor_names = [f"{t['name']}__{i}" for i, t in enumerate(inputs)]
            tensor_names += [f"{t['name']}__{i}" for i, t in enumerate(outputs)]
        (entry / "config.pbtxt").write_text(
            model_config_text(
                f"{name}_{suffix}", platform, inputs, outputs, dims, tensor_names, serving.backend
            )
        )
        entries.append(
            {
                "server": "triton",
                "name": f"{name}_{suffix}",
                **({"backend": serving.backend} if serving.backend else {"platform": platform}),
                **({"precision": serving.precision} if serving.precision else {}),
                "route": route.route,
                "path": entry.relative_to(root).as_posix(),
                "recommended": route.route == recommended,
            }
        )
        if platform == "tensorflow_savedmodel":
            tfserving = root / "tfserving" / name / "1"
            shutil.copytree(source, tfserving, symlinks=True)
            entries.append(
                {
                    "server": "tfserving",
                    "name": name,
                    "signature": "serving_default",
                    "route": route.route,
                    "path": tfserving.parent.relative_to(root).as_posix(),
                    "recommended": route.route == recommended,
                }
            )
    return entries


def _intact(folder: Path, record: FileRecord) -> bool:
    path = inside(folder, record.path)
    return path.is_file() and hash_files(folder, path)[0].sha256 == record.sha256


def package_bundle(artifacts: Path, out: Path | None = None, signing_key: Path | None = None) -> Path:
    """Build the serving bundle from every model published under `artifacts`; returns its folder.

    With a signing key (`signing_key`, else $GRAPHMINT_SIGNING_KEY) MANIFEST.json is signed; where a
    verify key is configured, every model's manifest must verify with it first.
    """
    signing_key = signing_key_path(signing_key)
    if not artifacts.is_dir():
        raise UsageError(f"{artifacts} is not a folder: pass the folder models were published to")
    out = out or artifacts / "serving"
    check_target(out.parent, out.name, BUNDLE_MANIFEST)  # before anything is read: a clear refusal
    models = _published(artifacts, out)
    if not models:
        raise UsageError(
            f"no published model under {artifacts}: run `graphmint run` or `graphmint export` first"
        )
    described = []
    with Staging(out.parent, out.name, owner_file=BUNDLE_MANIFEST) as staging:
        assert staging.path is not None
        root = staging.path
        for folder, manifest in models:
            _check_signature(folder)
            entries = _entries(folder, manifest, root)
            golden = root / "golden" / manifest.name
            changed = [f.path for g in manifest.golden for f in g.files if not _intact(folder, f)]
            if changed:
                raise UsageError(
                    f"{folder}: golden data changed since publishing ({', '.join(changed)}): "
                    f"publish {manifest.name} again"
                )
            for data in manifest.golden:
                _copy(inside(folder, data.path), golden / data.path)
            served = next((e["route"] for e in entries if e.get("platform") == "onnxruntime_onnx"), "onnx")
            onnx = next((r for r in manifest.routes if r.route == served), None)
            described.append(
                {
                    "name": manifest.name,
                    "framework": manifest.framework,
                    "inputs": [t.model_dump() for t in manifest.inputs],
                    "outputs": [t.model_dump() for t in manifest.outputs],
                    "dims": {d: r.model_dump() for d, r in manifest.dims.items()},
                    "tolerance": {"atol": onnx.atol if onnx else None, "rtol": onnx.rtol if onnx else None},
                    "tolerances": onnx.output_tolerances() if onnx else {},
                    "golden": golden.relative_to(root).as_posix(),
                    "entries": entries,
                    "recommended": manifest.recommended.model_dump() if manifest.recommended else None,
                    "validation": {
                        r.route: {
                            k: getattr(r, k, None)
                            for k in ("status", "max_abs_error", "max_rel_error", "atol", "rtol")
                        }
                        for r in manifest.routes
                    },
                }
            )
        files = hash_files(root, root)
        bundle = BundleManifest.model_validate({"models": described, "files": files})
        (root / BUNDLE_MANIFEST).write_text(bundle.to_json())
        if signing_key is not None:
            sign_manifest(root / BUNDLE_MANIFEST, signing_key)
        return staging.commit()


def _check_signature(folder: Path) -> None:
    """Where a verify key is configured, a model whose manifest does not verify is not packaged."""
    key = verify_key_path()
    if key is not None:
        try:
            verify_manifest(folder / "manifest.json", key)
        except TrustError as exc:
            raise TrustError(f"{folder} is not packaged: {exc}") from None


@dataclass
class BundleCheck:
    """Files that differ from the bundle manifest, and whether its signature was checked."""

    path: Path
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    #: "verified with KEY", or why the signature does not verify; None where no verify key is set
    signature: str | None = None
    signature_ok: bool = True

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.added) and self.signature_ok


def verify_bundle(path: Path, verify_key: Path | None = None) -> BundleCheck:
    """Re-hash every file of a bundle against its MANIFEST.json; where a verify key is configured
    (`verify_key`, else $GRAPHMINT_VERIFY_KEY), check the manifest's signature too."""
    manifest_path = path / BUNDLE_MANIFEST
    if not manifest_path.is_file():
        raise UsageError(f"{path} has no {BUNDLE_MANIFEST}: pass the folder `graphmint package` wrote")
    manifest = read_bundle_manifest(path)
    own = {BUNDLE_MANIFEST, *(p.name for p in signature_files(manifest_path))}
    recorded = {f.path: f.sha256 for f in manifest.files}
    found = {f.path: f.sha256 for f in hash_files(path, path) if f.path not in own}
    check = BundleCheck(
        path=path,
        changed=sorted(p for p in recorded.keys() & found.keys() if recorded[p] != found[p]),
        missing=sorted(recorded.keys() - found.keys()),
        added=sorted(found.keys() - recorded.keys()),
    )
    key = verify_key_path(verify_key)
    if key is not None:
        try:
            verify_manifest(manifest_path, key)
            check.signature = f"signed by the key in {key}"
        except TrustError as exc:
            check.signature, check.signature_ok = str(exc), False
    return check
