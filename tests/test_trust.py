"""Signed manifests, the decision to load formats that run code, and .pt2 files that would run code.

Real keys, real files, real archives: the malicious .pt2 files are graphmint's own export with one
part replaced the way torch's format allows, and each is first shown to run its payload under a plain
`torch.export.load`, so that the runner's refusal is a refusal of a live attack.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import pickle
import stat
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphmint.exporters import ROUTE_MODULES
from graphmint.exporters.base import Artifact, ExportContext
from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.trust import (
    SIGNING_KEY_ENV,
    VERIFY_KEY_ENV,
    TrustError,
    UnsafeArtifactError,
    executes_code_on_load,
    folder_trust,
    generate_key_pair,
    sign_manifest,
    signature_path,
    signing_key_path,
    trust_decision,
    verify_key_path,
    verify_manifest,
)
from graphmint.validators import RUNNERS

# --- keys and signatures ----------------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "keys" / "signing.pem", tmp_path / "keys" / "verify.pem"
    private.parent.mkdir()
    generate_key_pair(private, public, ed25519=True)  # graphmint's earlier detached signatures
    return private, public


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "model" / "manifest.json"
    path.parent.mkdir()
    files = [{"path": "onnx/model.onnx", "sha256": "ab" * 32}]
    path.write_text(json.dumps({"name": "model", "routes": [{"route": "onnx", "files": files}]}, indent=2))
    return path


def test_key_pair_is_two_pem_files_and_never_overwritten(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = private.read_bytes()
    with pytest.raises(UsageError, match="exists"):
        generate_key_pair(private, public.with_name("other.pem"))
    assert private.read_bytes() == before
    assert not public.with_name("other.pem").exists()


def test_signed_manifest_verifies(keys: tuple[Path, Path], manifest: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    private, public = keys
    sig = sign_manifest(manifest, private)
    assert sig == signature_path(manifest) == manifest.with_name("manifest.json.sig")
    data = json.loads(sig.read_text())
    raw = serialization.load_pem_public_key(public.read_bytes()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert data["algorithm"] == "ed25519"
    assert data["key_id"] == hashlib.sha256(raw).hexdigest()
    assert len(base64.b64decode(data["signature"])) == 64
    verify_manifest(manifest, public)


def test_one_changed_byte_fails(keys: tuple[Path, Path], manifest: Path) -> None:
    private, public = keys
    sign_manifest(manifest, private)
    data = bytearray(manifest.read_bytes())
    data[data.index(b"ab")] = ord("c")
    manifest.write_bytes(bytes(data))
    with pytest.raises(TrustError, match="changed after it was signed"):
        verify_manifest(manifest, public)


def test_another_key_fails(keys: tuple[Path, Path], manifest: Path, tmp_path: Path) -> None:
    private, _ = keys
    other_private, other_public = tmp_path / "other.pem", tmp_path / "other.pub.pem"
    generate_key_pair(other_private, other_public, ed25519=True)
    sign_manifest(manifest, private)
    with pytest.raises(TrustError, match=r"is signed by key .* not by the verify key"):
        verify_manifest(manifest, other_public)


def test_missing_signature_or_unreadable_key_fails(keys: tuple[Path, Path], manifest: Path) -> None:
    private, public = keys
    with pytest.raises(TrustError, match=r"not signed: there is no manifest\.json\.sig"):
        verify_manifest(manifest, public)
    sign_manifest(manifest, private)
    with pytest.raises(TrustError, match="cannot read the verify key"):
        verify_manifest(manifest, manifest)  # not a key
    with pytest.raises(TrustError, match=r"nor an Ed25519 public key|not a PEM public key"):
        verify_manifest(manifest, private)  # the private half


def test_keys_come_from_the_argument_or_the_environment(
    keys: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = keys
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    monkeypatch.delenv(VERIFY_KEY_ENV, raising=False)
    assert signing_key_path() is None and verify_key_path() is None
    monkeypatch.setenv(SIGNING_KEY_ENV, str(private))
    monkeypatch.setenv(VERIFY_KEY_ENV, str(tmp_path / "missing.pem"))
    assert signing_key_path() == private
    assert verify_key_path(public) == public  # the argument wins
    with pytest.raises(UsageError, match=rf"verify key {VERIFY_KEY_ENV}=.*missing\.pem: no such file"):
        verify_key_path()
    monkeypatch.setenv(VERIFY_KEY_ENV, str(private))  # the wrong half: fails when configured, not later
    with pytest.raises(TrustError, match="cannot read the verify key"):
        verify_key_path()


# --- which formats run code, and whether to load them -----------------------------------------------


def test_every_runner_and_route_is_classified() -> None:
    names = set(RUNNERS) | {route for _, route in ROUTE_MODULES}
    unknown = [n for n in names if "graphmint knows" in (executes_code_on_load(n) or "")]
    assert not unknown
    for data in ("onnx", "onnxruntime", "onnxruntime-cuda", "onnx-reference", "tflite", "onnx-int8-static"):
        assert executes_code_on_load(data) is None
    for code in (
        "torchscript-trace",
        "torchscript",
        "torch-export",
        "aot-inductor",
        "saved-model",
        "pt2e-int8",
    ):
        assert executes_code_on_load(code)
    assert executes_code_on_load("something-new")  # unknown: assumed to run code


def test_trust_decision() -> None:
    unsigned = trust_decision(verify_key_configured=False, verified=False, trust=False)
    assert not unsigned.may_execute
    assert unsigned.refusal("onnx/model.onnx", "onnxruntime") is None
    assert unsigned.refusal("torch-export/model.pt2", "torch-export") == (
        "refusing to load torch-export/model.pt2: a .pt2 can run code when loaded (pickles, and Python in "
        "its symbolic sizes and guards) and the manifest is not signed by a key you trust; pass --trust "
        f"if you trust this folder, or configure {VERIFY_KEY_ENV}"
    )
    bad = trust_decision(verify_key_configured=True, verified=False, trust=False, problem="it changed")
    assert not bad.may_execute and "(it changed)" in (bad.refusal("m/model.pt", "torchscript") or "")
    assert trust_decision(verify_key_configured=True, verified=True, trust=False).may_execute
    assert trust_decision(verify_key_configured=False, verified=False, trust=True).may_execute


def test_folder_trust(keys: tuple[Path, Path], manifest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    private, public = keys
    monkeypatch.delenv(VERIFY_KEY_ENV, raising=False)
    assert not folder_trust(manifest).may_execute
    assert folder_trust(manifest, trust=True).may_execute
    monkeypatch.setenv(VERIFY_KEY_ENV, str(public))
    refused = folder_trust(manifest)
    assert not refused.may_execute and "not signed" in refused.basis
    sign_manifest(manifest, private)
    assert folder_trust(manifest).may_execute


# --- .pt2 files that would run code ------------------------------------------------------------------


def _tiny_model() -> Any:
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x).relu()

    torch.manual_seed(0)
    return Tiny().eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A .pt2 written by graphmint's torch-export route (dynamic batch), and its eager model."""
    from graphmint.exporters.torch_export import TorchExportSave

    model = _tiny_model()
    workdir = tmp_path_factory.mktemp("torch-export")
    ctx = ExportContext(
        model=model,
        framework="torch",
        workdir=workdir,
        input_names=("x",),
        output_names=("y",),
        example_inputs={"x": np.ones((2, 4), np.float32)},
        dynamic_axes={"x": {0: ("batch", 1, 16)}},
        dtypes={"x": "float32"},
        route="torch-export",
    )
    result = TorchExportSave()(ctx)
    assert result.artifact is not None, result.reason
    assert result.artifact.path is not None
    return result.artifact.path, model


def _artifact(path: Path) -> Artifact:
    return Artifact("torch-export", "test", "torch-export", path, ("x",), ("y",), {"x": {0: "batch"}})


def _rewrite(source: Path, target: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    """`source` with its entries changed by `change`, written with torch's own archive writer."""
    from torch.export.pt2_archive import PT2ArchiveReader, PT2ArchiveWriter

    reader = PT2ArchiveReader(str(source))
    entries = {name: reader.read_bytes(name) for name in reader.get_file_names()}
    change(entries)
    with PT2ArchiveWriter(str(target)) as writer:
        for name, data in entries.items():
            if not name.startswith(".data/") and name not in ("archive_format", "archive_version"):
                writer.write_bytes(name, data)
    return target


class _OpenFile:
    """Unpickling this creates `path` (builtins.open through __reduce__): the payload's marker."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def _pickled_weight(marker: Path) -> Callable[[dict[str, bytes]], None]:
    def change(entries: dict[str, bytes]) -> None:
        config = json.loads(entries["data/weights/model_weights_config.json"])
        meta = config["config"]["linear.weight"]
        meta["use_pickle"] = True  # as torch.export.save flags a tensor subclass it pickled
        entries["data/weights/model_weights_config.json"] = json.dumps(config).encode()
        entries[f"data/weights/{meta['path_name']}"] = pickle.dumps(_OpenFile(marker))

    return change


def _pickled_sample_inputs(marker: Path) -> Callable[[dict[str, bytes]], None]:
    def change(entries: dict[str, bytes]) -> None:
        entries["data/sample_inputs/model.pt"] = pickle.dumps(_OpenFile(marker))

    return change


def _model_json(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, bytes]], None]:
    def change(entries: dict[str, bytes]) -> None:
        document = json.loads(entries["models/model.json"])
        edit(document)
        entries["models/model.json"] = json.dumps(document).encode()

    return change


def _sympy_size(marker: Path) -> Callable[[dict[str, bytes]], None]:
    def edit(node: Any) -> bool:
        if isinstance(node, dict):
            if isinstance(node.get("expr_str"), str):
                node["expr_str"] = f"open({str(marker)!r}, 'w') and {node['expr_str']}"
                return True
            return any(edit(v) for v in node.values())
        return isinstance(node, list) and any(edit(v) for v in node)

    return _model_json(lambda document: None if edit(document) else pytest.fail("no symbolic size"))


def _guard(marker: Path) -> Callable[[dict[str, bytes]], None]:
    return _model_json(lambda d: d.update(guards_code=[f"open({str(marker)!r}, 'w') is not None"]))


ATTACKS = {
    "pickled weight": (_pickled_weight, r"weight_\d+ \(weight 'linear.weight'\) is a pickle \(use_pickle\)"),
    "pickled sample inputs": (_pickled_sample_inputs, r"sample_inputs/model.pt is a pickle that loads only"),
    "symbolic size": (_sympy_size, r"the symbolic size .* calls open, and torch evaluates it"),
    "guard": (_guard, r"the guard .* calls open, and torch compiles it"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_runner_refuses_a_pt2_that_runs_code(attack: str, exported: tuple[Path, Any], tmp_path: Path) -> None:
    import torch

    from graphmint.validators.torch_export import ExportedProgramRunner

    make, message = ATTACKS[attack]
    live = _rewrite(exported[0], tmp_path / "live.pt2", make(tmp_path / "live-marker"))
    with contextlib.suppress(Exception), warnings.catch_warnings():  # torch may fail after the payload ran
        warnings.simplefilter("ignore")
        torch.export.load(str(live)).module()(torch.ones(2, 4))
    assert (tmp_path / "live-marker").exists(), "the crafted archive does not run its payload in torch"

    marker = tmp_path / "marker"
    crafted = _rewrite(exported[0], tmp_path / "model.pt2", make(marker))
    runner = ExportedProgramRunner(_artifact(crafted))
    with pytest.raises(UnsafeArtifactError, match=message):
        runner.activate()
    assert not marker.exists()


def test_runner_refuses_compiled_code_inside_a_pt2(exported: tuple[Path, Any], tmp_path: Path) -> None:
    from graphmint.validators.torch_export import ExportedProgramRunner

    def add_library(entries: dict[str, bytes]) -> None:
        entries["data/aotinductor/model/model.so"] = b"\x7fELF"

    crafted = _rewrite(exported[0], tmp_path / "model.pt2", add_library)
    with pytest.raises(UnsafeArtifactError, match=r"data/aotinductor/model/model.so is compiled code"):
        ExportedProgramRunner(_artifact(crafted)).activate()


def test_graphmint_pt2_still_loads_and_runs(exported: tuple[Path, Any]) -> None:
    import torch

    from graphmint.validators.torch_export import ExportedProgramRunner

    path, model = exported
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)  # not the example batch
    with ExportedProgramRunner(_artifact(path)) as runner:
        (y,), _ = runner.infer({"x": x})
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert np.any(y != 0)
