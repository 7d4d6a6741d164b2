"""OpenVINO: the `openvino` route on torch and Keras zoo models, OpenVINO as a cross-check runtime of
ONNX files, and precisions that OpenVINO would reduce silently (an IR saved with compress_to_fp16=True,
a bf16 hint on a CPU that cannot compute in bf16) caught and named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from graphmint.exporters.base import Artifact
from graphmint.exporters.openvino import cannot_compute
from graphmint.pipeline.publish.manifest import read_model_manifest
from graphmint.pipeline.run.results import ModelResult
from graphmint.pipeline.spec.config import load_config
from graphmint.pipeline.spec.specs import ModelSpec
from graphmint.validators.content import openvino_constants, reduced_tensors
from graphmint.validators.results import Status
from tests.conftest import ZOO_CONFIG, assert_as_declared

TORCH_MODELS = ("SimpleNet", "SmallCNN", "TransformerBlock")
KERAS_MODELS = ("KerasSimpleNet", "KerasCNN")
#: the models whose ONNX file OpenVINO cross-checks here, one of each framework
ONNX_MODELS = ("SimpleNet", "KerasSimpleNet")
BF16_ON_THIS_CPU = cannot_compute("bf16") is None

Run = tuple[Path, dict[str, ModelResult]]


def _spec(name: str) -> ModelSpec:
    return next(s for s in load_config(ZOO_CONFIG) if s.name == name)


@pytest.fixture(scope="module")
def ov_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The zoo models above through openvino and openvino-bf16 (and onnx for ONNX_MODELS), published."""
    from graphmint.pipeline.run.executors import available_cores, run_models
    from graphmint.pipeline.run.stages import RunOptions

    out = tmp_path_factory.mktemp("openvino")
    specs = [
        replace(_spec(n), routes=["openvino", "openvino-bf16", *(["onnx"] if n in ONNX_MODELS else [])])
        for n in (*TORCH_MODELS, *KERAS_MODELS)
    ]
    results = run_models(specs, RunOptions(out=out, jobs=available_cores()))
    return out, {r.name: r for r in results}


def _ir(out: Path, model: str) -> Path:
    entry = read_model_manifest(out / model).route("openvino")
    assert entry.artifact is not None
    return out / model / entry.artifact


@pytest.mark.parametrize("model", [*TORCH_MODELS, *KERAS_MODELS])
def test_openvino_route_passes_with_float32_constants_and_hint(ov_run: Run, model: str) -> None:
    out, results = ov_run
    result = next(r for r in results[model].routes if r.route == "openvino")
    assert_as_declared(_spec(model), result)
    entry = read_model_manifest(out / model).route("openvino")
    [check] = entry.checks
    assert check.runner == "openvino" and "INFERENCE_PRECISION_HINT=f32" in check.runtime
    assert check.facts.inference_precision == "fp32" and entry.details.inference_precision == "fp32"
    assert entry.details.compress_to_fp16 is False
    assert all(p.status == Status.PASSED for p in check.points) and len(check.points) > 1
    assert entry.max_abs_error is not None and entry.max_abs_error <= entry.atol
    assert {f.path for f in entry.files} >= {
        "openvino/model.openvino/model.xml",
        "openvino/model.openvino/model.bin",
    }
    ir = _ir(out, model)
    assert openvino_constants(ir) == [] and reduced_tensors(ir) == 0
    # the declared dynamic dims are dynamic in the IR, its other dims are the spec's sizes
    import openvino as ov

    spec = _spec(model)
    graph = ov.Core().read_model(str(ir / "model.xml"))
    for spec_input, port in zip(spec.inputs, graph.inputs, strict=True):
        assert port.get_any_name() == spec_input.name
        shape = port.get_partial_shape()
        for axis, dim in enumerate(spec_input.dims):
            assert shape[axis].is_dynamic if isinstance(dim, str) else shape[axis].get_length() == dim


@pytest.mark.parametrize("model", ONNX_MODELS)
def test_openvino_cross_checks_every_onnx_file(ov_run: Run, model: str) -> None:
    out, results = ov_run
    result = next(r for r in results[model].routes if r.route == "onnx")
    assert_as_declared(_spec(model), result)
    entry = read_model_manifest(out / model).route("onnx")
    check = next(c for c in entry.checks if c.runner == "openvino-onnx")
    assert check.status == Status.PASSED and "INFERENCE_PRECISION_HINT=f32" in check.runtime
    assert check.max_abs_error is not None and all(p.outputs for p in check.points)
    # a second opinion of its own: not ONNX Runtime's numbers
    assert any(c.runner == "onnxruntime" for c in entry.checks)


def test_an_ir_saved_with_fp16_compression_is_caught_and_named(ov_run: Run, tmp_path: Path) -> None:
    """ov.save_model's default stores float constants in f16: such an IR computes close to the
    float32 one (within 1e-3 here), so a tolerance alone might pass it; the runner refuses it."""
    import openvino as ov

    from graphmint.validators.openvino import OpenVinoRunner, PrecisionNotApplied

    out, _ = ov_run
    source = _ir(out, "SimpleNet")
    compressed = tmp_path / "model.openvino"
    compressed.mkdir()
    ov.save_model(ov.Core().read_model(str(source / "model.xml")), str(compressed / "model.xml"))
    held = openvino_constants(compressed)
    assert held and reduced_tensors(compressed) == len(held)
    names = _outputs("SimpleNet", out)
    artifact = Artifact("openvino", "test", "openvino", compressed, ("x",), names, {"x": {0: "batch"}})
    with pytest.raises(
        PrecisionNotApplied, match=rf"stores {len(held)} float constant\(s\) in f16"
    ) as caught:
        OpenVinoRunner(artifact).activate()
    assert held[0] in str(caught.value) and "compress_to_fp16=True" in str(caught.value)
    # and the float32 IR it came from loads and runs
    runner = OpenVinoRunner(replace(artifact, path=source))
    with runner:
        [output], _ = runner.infer({"x": np.ones((3, 10), np.float32)})
    assert output.shape == (3, 2) and runner.facts["inference_precision"] == "fp32"


def _outputs(model: str, out: Path) -> tuple[str, ...]:
    return tuple(o.name for o in read_model_manifest(out / model).outputs)


@pytest.mark.skipif(BF16_ON_THIS_CPU, reason="this CPU computes in bf16 (see the test below)")
def test_bf16_where_the_cpu_cannot_compute_in_it_is_skipped_naming_why(ov_run: Run) -> None:
    import openvino as ov

    from graphmint.validators.base import RuntimeUnavailable
    from graphmint.validators.openvino import OpenVinoBf16Runner

    out, results = ov_run
    capabilities = list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    assert "BF16" not in capabilities
    # what the route guards against: OpenVINO accepts the bf16 hint and computes in f32, silently
    graph = ov.Core().read_model(str(_ir(out, "SimpleNet") / "model.xml"))
    compiled = ov.Core().compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
    assert compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    for model in (*TORCH_MODELS, *KERAS_MODELS):
        result = next(r for r in results[model].routes if r.route == "openvino-bf16")
        assert result.status == Status.SKIPPED, f"{model}: {result.status}: {result.reason}"
        assert "cannot compute in bf16" in result.reason and "no BF16" in result.reason
        assert ", ".join(capabilities) in result.reason and not (out / model / "openvino-bf16").exists()
    # and a published IR checked again with the bf16 runner on this CPU is unavailable, not passed
    names = _outputs("SimpleNet", out)
    artifact = Artifact("openvino-bf16", "test", "openvino-bf16", _ir(out, "SimpleNet"), ("x",), names)
    with pytest.raises(RuntimeUnavailable, match="cannot compute in bf16"):
        OpenVinoBf16Runner(artifact).activate()


@pytest.mark.skipif(not BF16_ON_THIS_CPU, reason=f"{cannot_compute('bf16')}")
def test_bf16_where_the_cpu_computes_in_it_meets_its_budget(ov_run: Run) -> None:
    out, results = ov_run
    for model in (*TORCH_MODELS, *KERAS_MODELS):
        result = next(r for r in results[model].routes if r.route == "openvino-bf16")
        assert result.status == Status.PASSED, f"{model}: {result.reason}"
        entry = read_model_manifest(out / model).route("openvino-bf16")
        assert entry.details.inference_precision == "bf16" and entry.budgets
        assert all(b.passed and b.budget.snr_db == 30.0 for b in entry.budgets.values())
        assert "INFERENCE_PRECISION_HINT=bf16" in entry.checks[0].runtime


def test_the_serving_bundle_holds_each_ir_for_triton_s_openvino_backend(ov_run: Run, tmp_path: Path) -> None:
    """Triton's openvino backend reads `1/model.xml` and `1/model.bin`: each model's entry holds the IR its
    openvino route verified, its config names the backend, the entry says what precision that backend
    computes in, and the bundled IR answers every golden input within the route's tolerance."""
    import json

    import openvino as ov
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as pb

    from graphmint.pipeline.serving.bundle import BUNDLE_MANIFEST, package_bundle
    from graphmint.validators.golden import read_golden_sets

    out, _ = ov_run
    bundle = package_bundle(out, tmp_path / "serving")
    manifest = json.loads((bundle / BUNDLE_MANIFEST).read_text())
    served = {m["name"]: (m, e) for m in manifest["models"] for e in m["entries"] if e.get("backend")}
    assert set(served) == {*TORCH_MODELS, *KERAS_MODELS}
    core = ov.Core()
    for name, (model, entry) in served.items():
        folder = bundle / entry["path"]
        assert entry["route"] == "openvino" and "bf16" in entry["precision"], entry
        assert sorted(p.name for p in (folder / "1").iterdir()) == ["model.bin", "model.xml"]
        config = text_format.Parse((folder / "config.pbtxt").read_text(), pb.ModelConfig())
        assert (config.name, config.backend, config.platform) == (f"{name}_openvino", "openvino", "")
        assert [t.name for t in config.input] == [t["name"] for t in model["inputs"]]
        assert [t.name for t in config.output] == [t["name"] for t in model["outputs"]]
        compiled = core.compile_model(folder / "1" / "model.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        inputs, outputs = [t["name"] for t in model["inputs"]], [t["name"] for t in model["outputs"]]
        sets = read_golden_sets(bundle / model["golden"], inputs, outputs)
        assert sets, name
        for golden in sets:
            answer = compiled(golden.inputs)
            for output, expected in golden.outputs.items():
                got = answer[compiled.output(output)]
                np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=f"{name} {output}")
