"""Real models on the first try: transformers, keras-hub and patterns from users' own code.

A fast slice of the corpus (corpus.toml; `make corpus` runs all of it). Each test names the class of
bug it guards against: dict outputs under tracing, ModelOutput pytrees in .pt2 files, `forward(*args)`,
inputs bound by name, Keras dict inputs, tf2onnx's extra graph inputs, stable input names, and default
routes that the toolchain cannot export for a model.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from graphmint.pipeline.cli import main
from graphmint.pipeline.publish.manifest import read_model_manifest
from graphmint.pipeline.run.results import ModelResult, RouteResult
from graphmint.pipeline.spec.specs import make_model_spec
from tests.conftest import THIRD_PARTY

pytest.importorskip(
    "transformers", reason="the corpus extra (transformers) is not installed: make installs it"
)
pytest.importorskip("keras_hub", reason="keras-hub is not installed: make installs it from requirements.lock")

Cli = Callable[..., subprocess.CompletedProcess[str]]
TORCH_FILE_ROUTES = ("torchscript-trace", "torch-export", "onnx")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, ModelResult]]:
    """A transformers text model, a transformers vision model and a `forward(*args)` model through
    every file-writing torch route; a keras-hub backbone through every TensorFlow route and a Keras
    model with a Normalization layer through onnx; published once."""
    from graphmint.pipeline.run.executors import available_cores, run_models
    from graphmint.pipeline.run.stages import RunOptions

    torch_specs = [
        make_model_spec(name="Bert", **THIRD_PARTY["Bert"]),
        make_model_spec(name="ViT", **THIRD_PARTY["ViT"]),
        make_model_spec(
            name="StarArgs",
            ref="tests.real_model_defs:star_args_net",
            inputs=["x:float32[batch,4]", "y:float32[batch,5]"],
            dims=["batch=1..8"],
        ),
    ]
    keras_specs = [
        make_model_spec(name="BertBackbone", **THIRD_PARTY["BertBackbone"]),
        # its ONNX file is the point (tf2onnx's extra graph inputs): the other routes run on BertBackbone
        make_model_spec(
            name="Normalized", ref="tests.real_model_defs:keras_normalized", inputs=[], routes=["onnx"]
        ),
    ]
    out = tmp_path_factory.mktemp("real")
    # every cell at once as `graphmint run` does by default (the zoo's fixtures do the same)
    jobs = available_cores()
    results = run_models(torch_specs, RunOptions(out=out, routes=TORCH_FILE_ROUTES, jobs=jobs))
    results += run_models(keras_specs, RunOptions(out=out, jobs=jobs))
    return out, {r.name: r for r in results}


def _route(results: dict[str, ModelResult], model: str, route: str) -> RouteResult:
    return next(r for r in results[model].routes if r.route == route)


@pytest.mark.parametrize("model", ["Bert", "ViT", "StarArgs", "BertBackbone", "Normalized"])
def test_third_party_models_publish_with_every_route_passing(
    real_run: tuple[Path, dict[str, ModelResult]], model: str
) -> None:
    out, results = real_run
    bad = [(r.route, r.status, r.reason) for r in results[model].routes if r.status != "passed"]
    assert not bad, f"{model}: {bad}"
    assert (out / model / "manifest.json").is_file()
    for entry in read_model_manifest(out / model).routes:
        assert entry.max_abs_error is not None and entry.atol is not None
        assert entry.max_abs_error <= entry.atol


def test_model_output_dicts_are_traced_as_flat_tuples(real_run: tuple[Path, dict[str, ModelResult]]) -> None:
    """transformers returns ModelOutput (a dict): the traced file returns its tensors in eager order."""
    import torch

    out, _ = real_run
    names = [o.name for o in read_model_manifest(out / "Bert").outputs]
    assert names == ["last_hidden_state", "pooler_output"]
    traced = torch.jit.load(str(out / "Bert" / "torchscript-trace" / "model.pt"))
    ids = torch.randint(0, 100, (2, 8))
    outputs = traced(ids, torch.ones(2, 8, dtype=torch.int64))
    assert isinstance(outputs, tuple) and [tuple(o.shape) for o in outputs] == [(2, 8, 32), (2, 32)]


def test_pt2_loads_where_transformers_was_never_imported(
    real_run: tuple[Path, dict[str, ModelResult]],
) -> None:
    """A .pt2 whose outputs were ModelOutput pytrees loaded only where transformers registered them."""
    import sys

    out, _ = real_run
    script = (
        "import sys, torch\n"
        f"m = torch.export.load({str(out / 'Bert' / 'torch-export' / 'model.pt2')!r}).module()\n"
        "res = m(torch.randint(0, 100, (3, 5)), torch.ones(3, 5, dtype=torch.int64))\n"
        "assert 'transformers' not in sys.modules\n"
        "print([tuple(t.shape) for t in res])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[(3, 5, 32), (3, 32)]"


def test_star_args_forward_exports_with_dynamic_batch(real_run: tuple[Path, dict[str, ModelResult]]) -> None:
    _, results = real_run
    check = _route(results, "StarArgs", "torch-export").check
    assert check is not None
    assert {"batch=1", "batch=8"} <= {p.label for p in check.points}


def test_inputs_are_bound_by_name_for_the_torchscript_onnx_exporter(tmp_path: Path) -> None:
    """BertModel.forward has parameters between attention_mask and the end (use_cache...): positional
    inputs landed on the wrong one; bound by name, the TorchScript-based ONNX exporter works too."""
    import numpy as np
    import onnxruntime as ort

    from graphmint.exporters.base import ExportContext
    from graphmint.exporters.onnx_torch import export_torchscript
    from graphmint.models.corpus_torch import bert
    from graphmint.models.frameworks.torch_fw import TorchFramework

    framework = TorchFramework()
    with framework.seeded(0):
        model = framework.prepare(bert())
    feeds = {
        "input_ids": np.arange(12, dtype=np.int64).reshape(2, 6),
        "attention_mask": np.ones((2, 6), np.int64),
    }
    expected = framework.run_eager(model, feeds)
    ctx = ExportContext(
        model=model,
        framework="torch",
        workdir=tmp_path,
        input_names=tuple(feeds),
        output_names=tuple(expected),
        example_inputs=feeds,
        dynamic_axes={n: {0: ("batch", 1, 4), 1: ("seq", 1, 16)} for n in feeds},
        dtypes={n: "int64" for n in feeds},
        route="onnx",
    )
    result = export_torchscript(ctx)
    assert result.artifact is not None, result.reason
    session = ort.InferenceSession(str(result.artifact.path), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    for actual, want in zip(got, expected.values(), strict=True):
        np.testing.assert_allclose(actual, want, atol=1e-5)


def test_keras_dict_inputs_keep_their_key_names(real_run: tuple[Path, dict[str, ModelResult]]) -> None:
    import onnx

    out, _ = real_run
    manifest = read_model_manifest(out / "BertBackbone")
    assert [i.name for i in manifest.inputs] == ["token_ids", "segment_ids", "padding_mask"]
    graph = onnx.load(str(out / "BertBackbone" / "onnx" / "model.onnx")).graph
    assert sorted(i.name for i in graph.input) == ["padding_mask", "segment_ids", "token_ids"]
    assert {o.name for o in manifest.outputs} == {"sequence_output", "pooled_output"}


def test_tf2onnx_extra_graph_inputs_are_pruned(real_run: tuple[Path, dict[str, ModelResult]]) -> None:
    import onnx

    out, results = real_run
    onnx_route = _route(results, "Normalized", "onnx")
    assert onnx_route.details.pruned_inputs, "the Normalization constants were graph inputs"
    graph = onnx.load(str(out / "Normalized" / "onnx" / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input"]


def test_keras_input_names_are_stable_across_builds() -> None:
    """Keras names unnamed inputs keras_tensor_N by build order: never the published interface."""
    import keras

    from graphmint.models.frameworks.tensorflow_fw import TensorFlowFramework

    def build() -> keras.Model:
        a, b = keras.Input((4,)), keras.Input((3,), name="mask")
        return keras.Model([a, b], keras.layers.Concatenate()([a, b]))

    framework = TensorFlowFramework()
    first, second = framework.infer_inputs(build()), framework.infer_inputs(build())
    assert first == second == ["input_0:float32[batch,4]", "mask:float32[batch,3]"]


def test_a_default_route_the_toolchain_cannot_export_is_unsupported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user's custom operator without a fake kernel: torch.export, Dynamo and the ONNX exporters cannot
    handle it. Those default routes are `unsupported` with the exporter's root cause; the traced file,
    which loads once the model's module registered the op, is published and the run passes."""
    args = ["tests.real_model_defs:custom_op_net", "--input", "x:float32[batch,6]", "--dim", "batch=1..8"]
    code = main(["export", *args, "--out", str(tmp_path / "out")])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    manifest = read_model_manifest(tmp_path / "out" / "custom_op_net")
    statuses = {r.route: r.status for r in manifest.routes}
    assert statuses["torchscript-trace"] == "passed"
    assert statuses["torch-export"] == "unsupported"
    export_reason = manifest.route("torch-export").reason
    assert "no fake impl" in export_reason and "scaled_tanh" in export_reason
    assert "[upstream: " in export_reason and "register_fake" in export_reason
    assert not re.search(r"\x1b\[|\.graphmint-staging", stdout + manifest.text())
    # the same route, named by the user, must pass: exit 1
    named = main(["export", *args, "--routes", "torch-export", "--out", str(tmp_path / "o2")])
    assert named == 1 and "error" in capsys.readouterr().out
    assert not (tmp_path / "o2" / "custom_op_net").exists()


def test_native_output_goes_to_logs_not_the_console(graphmint_cli: Cli, tmp_path: Path) -> None:
    """TensorFlow's banners and absl lines land in the report folder's logs, one line per route shows."""
    root = Path(__file__).resolve().parent.parent
    proc = graphmint_cli(
        "export", "tests.real_model_defs:keras_normalized", "--routes", "tf-function,onnx",
        "--out", str(tmp_path / "out"), cwd=root,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    progress = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    banner = r"oneDNN|TF_ENABLE|absl::|cuda|I0000|W0000|E0000|This TensorFlow binary|rebuild TensorFlow"
    assert all(not re.search(banner, ln) for ln in progress), progress
    assert len([ln for ln in progress if " × " in ln]) == 2
    logs = tmp_path / "out" / "logs"
    assert (logs / "run.log").is_file()
    assert (logs / "keras_normalized" / "onnx.log").read_text().strip()


def test_a_cross_check_runtime_that_fails_is_a_warning(real_run: tuple[Path, dict[str, ModelResult]]) -> None:
    """onnx.reference cannot run the exported BERT graph while ONNX Runtime agrees with eager: the route
    passes, the warning names the cross-check runtime, and its numbers are not the route's."""
    out, results = real_run
    route = _route(results, "Bert", "onnx")
    assert route.status == "passed"
    assert any(w.startswith("onnx-reference (cross-check)") for w in route.warnings), route.warnings
    assert route.excused == ["onnx-reference"]
    entry = read_model_manifest(out / "Bert").route("onnx")
    assert entry.warnings == route.warnings and entry.excused == route.excused
    counted = [c.max_abs_error for c in route.checks if c.runner not in route.excused and c.max_abs_error]
    assert entry.max_abs_error == max(counted)


def test_bench_measures_third_party_models(
    real_run: tuple[Path, dict[str, ModelResult]], tmp_path: Path
) -> None:
    """A transformers model (two int64 inputs, batch and sequence dims) and a keras-hub backbone (dict
    inputs): each of their verified artifacts is measured against the eager model and one recommended."""
    from graphmint.pipeline.bench.command import run_bench
    from graphmint.pipeline.bench.measure import StabilityRule
    from graphmint.pipeline.bench.results import BenchOptions

    out, _ = real_run
    for name in ("Bert", "BertBackbone"):
        shutil.copytree(out / name, tmp_path / "art" / name)
    rule = StabilityRule(window_requests=3, window_s=0.02, min_windows=3, max_windows=5, warmup_s=0.05)
    # Bert trusted: the transformers model rebuilt from its code, TorchScript, .pt2 and ONNX measured
    # (ONNX on ONNX Runtime and on OpenVINO); the keras-hub backbone as an untrusted folder: its data
    # formats only (TFLite, ONNX on both)
    [bert] = run_bench(
        tmp_path / "art", ["Bert"], BenchOptions(batches=(2,), rule=rule, trust=True), echo=print
    )
    [keras] = run_bench(tmp_path / "art", ["BertBackbone"], BenchOptions(batches=(2,), rule=rule), echo=print)
    measured = {s.name for s in bert.subjects if s.timings and not s.error}
    expected = {"eager", "torchscript-trace", "torch-export", "onnx", "onnx@openvino-onnx", "onnx-optimized"}
    assert measured == expected, bert.subjects
    assert bert.recommended is not None and bert.recommended["speedup"] > 0
    measured = {s.name for s in keras.subjects if s.timings and not s.error}
    assert measured == {"tflite", "onnx", "onnx@openvino-onnx", "onnx-optimized"}, keras.subjects
    assert keras.recommended is not None and keras.recommended["route"] in measured
