"""Trust, end to end: what validate loads without a signature, a tampered .pt2 that is never run,
and signed publishing, packaging and serving (a signed bundle with one byte changed is refused)."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from graphmint.pipeline.cli import main
from graphmint.pipeline.publish.staging import hash_files
from graphmint.pipeline.publish.trust import executes_code_on_load, generate_key_pair
from graphmint.pipeline.run.results import ModelResult
from graphmint.pipeline.run.stages import RunOptions, run_model
from graphmint.pipeline.serving.bundle import BUNDLE_MANIFEST, package_bundle
from graphmint.pipeline.validate import TrustOptions, validate_path
from tests.conftest import zoo_specs
from tests.test_trust import _OpenFile, _rewrite

Zoo = tuple[Path, dict[str, ModelResult]]


def _rehash_route(folder: Path, route: str) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = next(r for r in manifest["routes"] if r["route"] == route)
    entry["files"] = [f.dump() for f in hash_files(folder, folder / route)]
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _pickled_first_weight(marker: Path) -> Callable[[dict[str, bytes]], None]:
    def change(entries: dict[str, bytes]) -> None:
        config = json.loads(entries["data/weights/model_weights_config.json"])
        meta = next(iter(config["config"].values()))
        meta["use_pickle"] = True
        entries["data/weights/model_weights_config.json"] = json.dumps(config).encode()
        entries[f"data/weights/{meta['path_name']}"] = pickle.dumps(_OpenFile(marker))

    return change


def test_validate_loads_only_data_formats_without_trust(torch_zoo: Zoo, tmp_path: Path) -> None:
    out, _ = torch_zoo
    result = validate_path(out / "SimpleNet")
    assert result.ok
    routes = {r.route: r for r in result.routes}
    assert routes["onnx"].status == "passed"
    for name, route in routes.items():
        manifest = json.loads((out / "SimpleNet" / "manifest.json").read_text())
        runner = next(r["runner"] for r in manifest["routes"] if r["route"] == name)
        if executes_code_on_load(runner):
            assert route.status == "skipped" and "refusing to load" in route.reason, (name, route.reason)
            assert "--trust" in route.reason
    assert {"torchscript-trace", "torch-export"} <= {n for n, r in routes.items() if r.status == "skipped"}


def test_a_tampered_pt2_is_refused_and_never_run(
    torch_zoo: Zoo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = torch_zoo
    folder = tmp_path / "SimpleNet"
    shutil.copytree(out / "SimpleNet", folder)
    marker = tmp_path / "payload-ran"
    pt2 = folder / "torch-export" / "model.pt2"
    _rewrite(pt2, tmp_path / "evil.pt2", _pickled_first_weight(marker))
    shutil.move(tmp_path / "evil.pt2", pt2)
    _rehash_route(folder, "torch-export")  # whoever can rewrite the manifest makes the hashes match

    assert main(["validate", str(folder)]) == 0  # refused without loading; the rest passes
    assert "refusing to load torch-export/model.pt2" in capsys.readouterr().out
    assert not marker.exists()
    assert main(["validate", str(folder), "--trust"]) == 1  # trusted: torch's loader is not
    routes = {r.route: r for r in validate_path(folder, trust=TrustOptions(trust=True)).routes}
    assert routes["torch-export"].status == "error" and "pickle" in routes["torch-export"].reason
    assert not marker.exists(), "the pickled payload ran"


def test_signed_publish_validate_package_and_serve(
    torch_zoo: Zoo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = tmp_path / "keys" / "signing.pem", tmp_path / "keys" / "verify.pem"
    private.parent.mkdir()
    generate_key_pair(private, public)
    spec = next(s for s in zoo_specs("torch") if s.name == "SimpleNet")
    artifacts = tmp_path / "artifacts"
    options = RunOptions(out=artifacts, routes=("torchscript-trace", "onnx"), signing_key=private)
    assert run_model(spec, options).published is not None
    folder = artifacts / "SimpleNet"
    assert (folder / "model.sig").is_file()  # a Sigstore bundle: keygen makes an ECDSA pair

    trusted = validate_path(folder, trust=TrustOptions(verify_key=public))
    assert all(r.status == "passed" for r in trusted.routes), [(r.route, r.reason) for r in trusted.routes]
    other_private, other_public = tmp_path / "keys" / "other.pem", tmp_path / "keys" / "other.pub"
    generate_key_pair(other_private, other_public)
    stranger = {r.route: r for r in validate_path(folder, trust=TrustOptions(verify_key=other_public)).routes}
    assert stranger["torchscript-trace"].status == "skipped"
    assert "does not verify" in stranger["torchscript-trace"].reason

    bundle = package_bundle(artifacts, signing_key=private)
    assert (bundle / "model.sig").is_file()
    assert main(["verify-bundle", str(bundle), "--verify-key", str(public)]) == 0
    assert "signature: signed by" in capsys.readouterr().out

    model = bundle / "triton" / "SimpleNet_onnx" / "1" / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 1
    model.write_bytes(bytes(data))
    assert main(["serve", str(bundle), "--verify-key", str(public), "--port", "1"]) == 2
    assert "differs from its MANIFEST.json" in capsys.readouterr().err
    # the files re-hashed into MANIFEST.json: its signature no longer verifies
    manifest = json.loads((bundle / BUNDLE_MANIFEST).read_text())
    own = {BUNDLE_MANIFEST, "model.sig"}
    manifest["files"] = [f.dump() for f in hash_files(bundle, bundle) if f.path not in own]
    (bundle / BUNDLE_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    monkeypatch.setenv("GRAPHMINT_VERIFY_KEY", str(public))
    for command in (["serve", str(bundle), "--port", "1"], ["serve-check", str(bundle)]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "signature" in err[0] and "refused" in err[0], err
    assert main(["verify-bundle", str(bundle)]) == 1
