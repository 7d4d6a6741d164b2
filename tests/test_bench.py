"""graphmint bench: every verified artifact measured in a child of its own next to the eager model, the
fastest recorded as `recommended` in the manifest and marked in the serving bundle.

Figures are not asserted (this machine's speed drifts); what is asserted is what was measured, how it
was recorded, and that the folder stays a valid, verifiable publication. The measurements use a quick
stability rule; `make bench` runs the real one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from graphmint.pipeline.bench.command import run_bench
from graphmint.pipeline.bench.measure import StabilityRule, stable, timing
from graphmint.pipeline.bench.results import BenchOptions, ModelBench
from graphmint.pipeline.bench.run import OPTIMIZED
from graphmint.pipeline.cli import main
from graphmint.pipeline.publish.manifest import read_bundle_manifest, read_model_manifest
from graphmint.pipeline.run.results import ModelResult
from graphmint.pipeline.serving.bundle import package_bundle
from graphmint.pipeline.validate import TrustOptions, validate_path

QUICK = StabilityRule(
    window_requests=3, window_s=0.02, min_windows=3, max_windows=6, warmup_requests=3, warmup_s=0.05
)
#: routes that fill an entry of the serving bundle
BUNDLED = {"onnx", OPTIMIZED, "torchscript-trace", "torchscript-script", "saved-model"}


def _copy(zoo: tuple[Path, dict[str, ModelResult]], name: str, tmp_path: Path) -> Path:
    out, _ = zoo
    artifacts = tmp_path / "art"
    shutil.copytree(out / name, artifacts / name)
    return artifacts


def _bench(artifacts: Path, **options: object) -> ModelBench:
    lines: list[str] = []
    [bench] = run_bench(artifacts, None, BenchOptions(rule=QUICK, **options), echo=lines.append)  # type: ignore[arg-type]
    assert any(line.startswith(f"{bench.name} (") for line in lines)
    return bench


def _assert_figures(bench: ModelBench, batches: set[int]) -> None:
    for subject in bench.subjects:
        assert not subject.error and not subject.reason, (subject.name, subject.reason)
        assert set(subject.timings) == batches, subject.name
        for figures in subject.timings.values():
            assert 0 < figures["p50_us"] <= figures["p90_us"] <= figures["p99_us"]
            assert (
                figures["throughput"] > 0 and figures["requests"] >= QUICK.min_windows * QUICK.window_requests
            )
            assert figures["speedup"] > 0
        assert subject.memory["peak_rss_mb"] and subject.memory["peak_rss_mb"] > 0
        assert subject.runtime


def test_every_verified_artifact_is_measured_against_eager_and_the_fastest_recorded(
    torch_zoo: tuple[Path, dict[str, ModelResult]], tmp_path: Path
) -> None:
    artifacts = _copy(torch_zoo, "SimpleNet", tmp_path)
    folder = artifacts / "SimpleNet"
    published = read_model_manifest(folder)
    bench = _bench(artifacts, batches=(1, 1000), trust=True)

    passed = {r.route for r in published.routes if r.status == "passed"}
    assert "aot-inductor" in passed and "torch-compile" in passed  # a shared library, an in-process route
    subjects = {s.name: s for s in bench.subjects}
    # the ONNX file on each runtime it deploys on that verified it: OpenVINO's too
    assert set(subjects) == {"eager", OPTIMIZED, *passed, "onnx@openvino-onnx"}
    on_openvino = subjects["onnx@openvino-onnx"]
    assert (on_openvino.route, on_openvino.runner, on_openvino.artifact) == (
        "onnx",
        "openvino-onnx",
        "onnx/model.onnx",
    )
    assert "INFERENCE_PRECISION_HINT=f32" in on_openvino.runtime, on_openvino.runtime
    assert subjects["torch-compile"].kind == "in-process" and subjects["eager"].kind == "eager"
    _assert_figures(bench, {1})
    assert all("outside batch's range 1..64" in s.skipped[1000] for s in bench.subjects)
    assert subjects["eager"].timings[1]["speedup"] == 1.0
    assert subjects[OPTIMIZED].validation is not None and subjects[OPTIMIZED].validation.status == "passed"

    # recorded: the manifest names the fastest deployable file, and carries the validated ORT model
    manifest = read_model_manifest(folder)
    assert manifest.recommended is not None and bench.recommended is not None
    assert manifest.recommended.route == bench.recommended["route"]
    assert subjects[manifest.recommended.route].deployable  # a file: never eager or torch.compile
    # the fastest verified float32 file over every runtime (by its paired ratio to eager), or one as fast
    # within the stability rule's tolerance
    candidates = [s for s in bench.subjects if s.deployable and s.precision == "fp32"]
    best = max(s.timings[1]["speedup"] for s in candidates)
    recommended = manifest.recommended
    chosen = next(s for s in candidates if (s.route, s.runner) == (recommended.route, recommended.runner))
    assert chosen.timings[1]["speedup"] >= best * (1 - QUICK.tolerance)
    assert chosen.timings[1]["p50_us"] == recommended.p50_us
    optimized = next(r for r in manifest.routes if r.route == OPTIMIZED)
    assert optimized.status == "passed" and optimized.artifact == f"{OPTIMIZED}/model.onnx"
    assert [f.path for f in optimized.files] == [f"{OPTIMIZED}/model.onnx"]
    # still a valid publication: every hash holds, and the optimized file replays against golden data
    validation = validate_path(folder, trust=TrustOptions(trust=True))
    statuses = {r.route: r.status for r in validation.routes}
    assert statuses[OPTIMIZED] == "passed" and validation.ok, statuses

    data = json.loads((artifacts / "bench.json").read_text())
    assert data["threads"] == 1 and data["batches"] == [1, 1000] and "torch" in data["versions"]
    assert data["host"]["cpu"] and data["models"][0]["recommended"]["route"] == manifest.recommended.route
    assert "| eager | 1 |" in (artifacts / "bench.md").read_text()
    assert (artifacts / "plots" / "SimpleNet.bench.png").read_bytes().startswith(b"\x89PNG")
    # accuracy next to speed: every verified file's worst SNR against eager, from its validation
    assert all(subjects[r].snr_db is not None and subjects[r].snr_db > 60 for r in passed - {"torch-compile"})
    assert (artifacts / "plots" / "SimpleNet.accuracy.png").read_bytes().startswith(b"\x89PNG")

    # a second bench measures the recorded optimized route as an artifact, not made again
    again = _bench(artifacts, batches=(1,), trust=True)
    assert next(s for s in again.subjects if s.name == OPTIMIZED).kind == "artifact"

    # the serving bundle marks the recommended artifact where it fills an entry
    bundle = read_bundle_manifest(package_bundle(artifacts))
    [model] = bundle.models
    assert model.recommended is not None and model.recommended.route == again.recommended["route"]  # type: ignore[index]
    flagged = [e.route for e in model.entries if e.recommended]
    assert flagged == ([model.recommended.route] if model.recommended.route in BUNDLED else [])


def test_without_trust_only_data_formats_are_loaded(
    torch_zoo: tuple[Path, dict[str, ModelResult]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --trust, no signature: the model's code and code-running formats are not loaded, ONNX is; the
    real CLI with the real stability rule."""
    artifacts = _copy(torch_zoo, "SimpleNet", tmp_path)
    assert main(["bench", str(artifacts), "--batch", "1"]) == 0
    out = capsys.readouterr().out
    assert "recommended: " in out
    [model] = json.loads((artifacts / "bench.json").read_text())["models"]
    subjects = {s["subject"]: s for s in model["subjects"]}
    assert "runs the model's code" in subjects["eager"]["reason"] and "--trust" in subjects["eager"]["reason"]
    assert subjects["torchscript-trace"]["reason"].startswith("refusing to load torchscript-trace/model.pt")
    measured = {name for name, s in subjects.items() if s["batches"]}
    # the data format: ONNX, on ONNX Runtime and on OpenVINO
    assert measured == {"onnx", OPTIMIZED, "onnx@openvino-onnx"}
    assert all(s["batches"]["1"]["speedup"] is None for s in subjects.values() if s["batches"])
    best = model["recommended"]
    assert best["route"] in ("onnx", OPTIMIZED, "openvino")
    assert f"recommended: {best['route']} on {best['runner']}" in out


def test_a_signed_manifest_is_re_signed_or_left_alone(
    torch_zoo: tuple[Path, dict[str, ModelResult]], tmp_path: Path
) -> None:
    from graphmint.pipeline.publish.trust import generate_key_pair, sign_manifest, verify_manifest

    artifacts = _copy(torch_zoo, "SimpleNet", tmp_path)
    manifest = artifacts / "SimpleNet" / "manifest.json"
    private, public = tmp_path / "key.pem", tmp_path / "key.pub"
    generate_key_pair(private, public)
    sign_manifest(manifest, private)
    before = manifest.read_bytes()

    bench = _bench(artifacts)
    assert bench.recorded.startswith("not recorded: the manifest is signed")
    assert manifest.read_bytes() == before  # untouched: its signature still holds
    verify_manifest(manifest, public)

    lines: list[str] = []
    [bench] = run_bench(artifacts, None, BenchOptions(rule=QUICK), signing_key=private, echo=lines.append)
    assert bench.recorded.startswith("recorded in")
    verify_manifest(manifest, public)  # re-signed over the manifest with the recommendation
    assert read_model_manifest(manifest.parent).recommended is not None


def test_keras_routes_are_measured_in_their_own_children(
    keras_zoo: tuple[Path, dict[str, ModelResult]], tmp_path: Path
) -> None:
    """tf.function rebuilt from the code, the SavedModel loaded by the runner its isolated runner hosts,
    TFLite with its thread count, ONNX from tf2onnx (on ONNX Runtime and OpenVINO) and its optimized
    copy, and the model's torch-backend .pt2 (keras-torch)."""
    artifacts = _copy(keras_zoo, "KerasSimpleNet", tmp_path)
    bench = _bench(artifacts, batches=(2,), trust=True)
    assert {s.name for s in bench.subjects} == {
        "eager",
        "tf-function",
        "saved-model",
        "tflite",
        "onnx",
        "onnx@openvino-onnx",
        "tflite@litert-compiled",
        "keras-torch",
        OPTIMIZED,
    }
    _assert_figures(bench, {2})
    assert bench.recommended is not None and bench.recommended["route"] in (
        "tflite",
        "onnx",
        OPTIMIZED,
        "saved-model",
        "keras-torch",
    )


def test_the_stability_rule() -> None:
    rule = StabilityRule(min_windows=4, stable_windows=3, tolerance=0.1)
    assert not stable([1.0, 1.0, 1.0], rule)  # too few rounds
    assert stable([5.0, 1.0, 1.05, 1.0], rule)  # the last three agree within 10%
    assert not stable([1.0, 1.0, 1.0, 1.3], rule)
    figures = timing([[0.001, 0.002], [0.003, 0.004]], 8, True, 0.05)
    assert figures.p50_us == pytest.approx(2500) and figures.requests == 4 and figures.windows == 2
    assert figures.throughput == pytest.approx(8 * 4 / 0.010)


def test_bad_bench_input_is_one_line(
    torch_zoo: tuple[Path, dict[str, ModelResult]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifacts = _copy(torch_zoo, "SimpleNet", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "a-file").write_text("x")
    cases = [
        (["bench", str(tmp_path / "missing")], "is not a folder"),
        (["bench", str(empty)], "no published model under"),
        (["bench", str(artifacts), "--models", "Nope"], "--models names Nope"),
        (["bench", str(artifacts), "--batch", "0"], "'0' is not a positive whole number"),
        (["bench", str(artifacts), "--batch", "1,1"], "repeats a batch size"),
        (["bench", str(artifacts), "--threads", "two"], "'two' is not a positive whole number"),
        (["bench", str(artifacts), "--report-dir", str(tmp_path / "a-file")], "is a file, not a folder"),
    ]
    for args, fragment in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("graphmint: error:") and fragment in err[0], (args, err)
    assert not (artifacts / "bench.json").exists()  # nothing measured, nothing written
    assert read_model_manifest(artifacts / "SimpleNet").recommended is None
