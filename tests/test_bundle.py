"""The serving bundle: Triton and TF Serving layouts, parsed with Triton's own ModelConfig proto."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from graphmint.pipeline.cli import main
from graphmint.pipeline.publish.staging import hash_files
from graphmint.pipeline.run.results import ModelResult
from graphmint.pipeline.serving.bundle import BUNDLE_MANIFEST, package_bundle, verify_bundle
from graphmint.pipeline.serving.triton import TRITON_TYPES, batch_dim

Zoo = tuple[Path, dict[str, ModelResult]]


@pytest.fixture(scope="module")
def bundles(torch_zoo: Zoo, keras_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("bundles")
    return [package_bundle(torch_zoo[0], out / "torch"), package_bundle(keras_zoo[0], out / "keras")]


def _expected_dims(shape: list[int | str], batched: bool) -> list[int]:
    return [-1 if isinstance(d, str) else d for d in (shape[1:] if batched else shape)]


def test_every_config_parses_and_matches_the_manifest(bundles: list[Path]) -> None:
    checked = 0
    for bundle in bundles:
        manifest = json.loads((bundle / BUNDLE_MANIFEST).read_text())
        for model in manifest["models"]:
            batch = batch_dim([*model["inputs"], *model["outputs"]])
            for entry in (e for e in model["entries"] if e["server"] == "triton"):
                config = text_format.Parse(
                    (bundle / entry["path"] / "config.pbtxt").read_text(), pb.ModelConfig()
                )
                assert config.name == entry["name"] and config.platform == entry["platform"]
                assert config.max_batch_size == (model["dims"][batch]["max"] if batch else 0)
                for declared, tensors in ((model["inputs"], config.input), (model["outputs"], config.output)):
                    assert len(tensors) == len(declared)
                    for index, (spec, tensor) in enumerate(zip(declared, tensors, strict=True)):
                        suffix = f"__{index}" if entry["platform"] == "pytorch_libtorch" else ""
                        assert tensor.name == spec["name"] + suffix
                        assert pb.DataType.Name(tensor.data_type) == TRITON_TYPES[spec["dtype"]]
                        assert list(tensor.dims) == _expected_dims(spec["shape"], batch is not None)
                files = list((bundle / entry["path"] / "1").iterdir())
                assert len(files) == 1 and files[0].name in ("model.onnx", "model.pt", "model.savedmodel")
                checked += 1
    assert checked >= 15  # onnx for all 10 models, TorchScript for 5, SavedModel for 5


def test_layouts_per_framework(bundles: list[Path]) -> None:
    torch_bundle, keras_bundle = bundles
    assert (torch_bundle / "triton" / "SimpleNet_onnx" / "1" / "model.onnx").is_file()
    assert (torch_bundle / "triton" / "SimpleNet_torchscript" / "1" / "model.pt").is_file()
    assert not (torch_bundle / "tfserving").exists(), "no SavedModel exists for the torch zoo"
    assert (
        keras_bundle / "triton" / "KerasCNN_savedmodel" / "1" / "model.savedmodel" / "saved_model.pb"
    ).is_file()
    assert (keras_bundle / "tfserving" / "KerasCNN" / "1" / "saved_model.pb").is_file()
    manifest = json.loads((keras_bundle / BUNDLE_MANIFEST).read_text())
    cnn = next(m for m in manifest["models"] if m["name"] == "KerasCNN")
    assert cnn["validation"]["saved-model"]["status"] == "passed"
    assert (keras_bundle / cnn["golden"] / "test_data_set_0" / "input_0.pb").is_file()


def test_verify_bundle_catches_changed_missing_and_added(
    bundles: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(bundles[0], bundle)
    assert verify_bundle(bundle).ok and main(["verify-bundle", str(bundle)]) == 0
    with (bundle / "triton" / "SmallCNN_onnx" / "1" / "model.onnx").open("ab") as f:
        f.write(b"\0")
    (bundle / "triton" / "SimpleNet_torchscript" / "config.pbtxt").unlink()
    (bundle / "triton" / "notes.txt").write_text("added by hand")
    check = verify_bundle(bundle)
    assert check.changed == ["triton/SmallCNN_onnx/1/model.onnx"]
    assert check.missing == ["triton/SimpleNet_torchscript/config.pbtxt"]
    assert check.added == ["triton/notes.txt"]
    capsys.readouterr()
    assert main(["verify-bundle", str(bundle)]) == 1
    out = capsys.readouterr().out
    assert "changed: triton/SmallCNN_onnx/1/model.onnx" in out and "added: triton/notes.txt" in out
    assert main(["verify-bundle", str(tmp_path)]) == 2  # no MANIFEST.json: bad input


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) listening on `port`."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return [
        r.split()[1].split(":")[0]
        for r in rows
        if r.split()[3] == "0A" and int(r.split()[1].split(":")[1], 16) == port
    ]


def test_serve_check_passes_on_the_zoo_bundle(bundles: list[Path]) -> None:
    from graphmint.pipeline.serving.servecheck import serve_check

    check = serve_check(bundles[0])
    assert check.ok, [r for r in check.results if not r.passed]
    assert {r.model for r in check.results} == {
        "SimpleNet_onnx",
        "ModelWithCustom_onnx",
        "SmallCNN_onnx",
        "SeqClassifier_onnx",
        "TransformerBlock_onnx",
    }


def test_serve_check_fails_on_a_swapped_model(
    bundles: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(bundles[0], bundle)
    # same signature (x: float32[batch, 10] -> [batch, 2]), other weights
    shutil.copy(
        bundle / "triton" / "ModelWithCustom_onnx" / "1" / "model.onnx",
        bundle / "triton" / "SimpleNet_onnx" / "1" / "model.onnx",
    )
    assert main(["serve-check", str(bundle)]) == 2, "a bundle that differs from its manifest is refused"
    assert "differs from its MANIFEST.json" in capsys.readouterr().err
    # swapped and re-hashed (as whoever can rewrite the manifest would): the answers are compared
    manifest = json.loads((bundle / BUNDLE_MANIFEST).read_text())
    manifest["files"] = [f.dump() for f in hash_files(bundle, bundle) if f.path != BUNDLE_MANIFEST]
    (bundle / BUNDLE_MANIFEST).write_text(json.dumps(manifest))
    assert main(["serve-check", str(bundle)]) == 1
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if "failed:" in line]
    assert failed and all(line.startswith("SimpleNet_onnx") for line in failed)


def test_server_answers_bad_requests_with_400_on_loopback_only(bundles: list[Path]) -> None:
    import urllib.error
    import urllib.request

    import tritonclient.http as http

    from graphmint.pipeline.serving.servecheck import free_port, start_server, stop_server, wait_ready

    port = free_port()
    process = start_server(bundles[0], port)
    try:
        wait_ready(http.InferenceServerClient(url=f"127.0.0.1:{port}"), process, 120)
        assert _listening(port) == ["0100007F"], "the server must bind 127.0.0.1 only"
        url = f"http://127.0.0.1:{port}/v2/models/SimpleNet_onnx/infer"
        bad = {
            "wrong shape": {"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [0.0] * 6},
            "wrong dtype": {"name": "x", "shape": [1, 10], "datatype": "INT64", "data": [0] * 10},
            "wrong name": {"name": "y", "shape": [1, 10], "datatype": "FP32", "data": [0.0] * 10},
        }
        for what, tensor in bad.items():
            request = urllib.request.Request(
                url,
                data=json.dumps({"inputs": [tensor]}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=30)
            assert caught.value.code == 400, what
            assert "x" in caught.value.read().decode(), what
        good = {"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP32", "data": [0.0] * 10}]}
        request = urllib.request.Request(
            url, data=json.dumps(good).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["outputs"][0]["shape"] == [1, 2]
    finally:
        stop_server(process)
    assert process.returncode is not None and not _listening(port)


def test_serve_check_uses_each_outputs_own_tolerance(
    torch_zoo: Zoo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = torch_zoo
    artifacts = tmp_path / "artifacts"
    shutil.copytree(out / "SimpleNet", artifacts / "SimpleNet")
    manifest = json.loads((artifacts / "SimpleNet" / "manifest.json").read_text())
    onnx = next(r for r in manifest["routes"] if r["route"] == "onnx")
    for point in onnx["checks"][0]["points"]:  # as a config's [models.tolerance.outputs] would set it
        for output in point["outputs"]:
            output["atol"] = 10.0
    (artifacts / "SimpleNet" / "manifest.json").write_text(json.dumps(manifest))
    bundle = package_bundle(artifacts)
    described = json.loads((bundle / BUNDLE_MANIFEST).read_text())["models"][0]
    assert described["tolerances"] == {"output": {"atol": 10.0, "rtol": onnx["rtol"]}}
    # other weights behind the same signature: within 10 of the golden outputs, not within 1e-5
    other = out / "ModelWithCustom" / "onnx" / "model.onnx"
    shutil.copy(other, bundle / "triton" / "SimpleNet_onnx" / "1" / "model.onnx")
    bundle_manifest = json.loads((bundle / BUNDLE_MANIFEST).read_text())
    bundle_manifest["files"] = [f.dump() for f in hash_files(bundle, bundle) if f.path != BUNDLE_MANIFEST]
    (bundle / BUNDLE_MANIFEST).write_text(json.dumps(bundle_manifest))
    assert main(["serve-check", str(bundle)]) == 0, capsys.readouterr().out
    bundle_manifest["models"][0]["tolerances"] = {}  # only the route's first number: it fails
    (bundle / BUNDLE_MANIFEST).write_text(json.dumps(bundle_manifest))
    assert main(["serve-check", str(bundle)]) == 1


def test_manifests_round_trip_through_their_types_byte_for_byte(
    torch_zoo: Zoo, keras_zoo: Zoo, bundles: list[Path], tmp_path: Path
) -> None:
    """Every manifest.json and MANIFEST.json is written through its type: read back and written again,
    it is the same bytes, and it says which schema it follows."""
    from graphmint.pipeline.publish.manifest import (
        SCHEMA_VERSION,
        ModelManifest,
        read_bundle_manifest,
        read_model_manifest,
    )

    folders = [out / name for out, results in (torch_zoo, keras_zoo) for name in results]
    for folder in folders:
        text = (folder / "manifest.json").read_text()
        assert read_model_manifest(folder).text() == text, folder.name
        ModelManifest.model_validate(json.loads(text))  # the write schema: no undeclared key anywhere
        assert json.loads(text)["schema_version"] == SCHEMA_VERSION
    for bundle in bundles:
        text = (bundle / BUNDLE_MANIFEST).read_text()
        assert read_bundle_manifest(bundle).text() == text
        assert json.loads(text)["schema_version"] == SCHEMA_VERSION
    assert len(folders) == 10
    # a manifest written before the schema version existed still reads, as version 1
    old = json.loads((folders[0] / "manifest.json").read_text())
    del old["schema_version"]
    (tmp_path / "manifest.json").write_text(json.dumps(old))
    assert read_model_manifest(tmp_path).schema_version == 1
