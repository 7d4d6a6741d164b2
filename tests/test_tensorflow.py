"""The TensorFlow half: every Keras zoo model × every route, user Keras models, and process isolation."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import numpy as np
import pytest

from graphmint.exporters import ROUTE_MODULES, default_routes, routes_for
from graphmint.exporters.base import Artifact
from graphmint.pipeline.run.results import ModelResult
from graphmint.pipeline.spec.config import twin_tables
from graphmint.validators.base import Runner, RuntimeUnavailable
from graphmint.validators.isolated import IsolatedRunner
from tests.conftest import TARGET_MODELS, ZOO_CONFIG, assert_as_declared, zoo_specs
from tests.test_precision import CASES as PRECISION_CASES

SPECS = zoo_specs("tensorflow")
CASES = [(s.name, r) for s in SPECS for r in (s.routes or default_routes("tensorflow"))]
#: routes whose artifact is a file (or folder) on disk: all but those checked on the object they made
FILE_ROUTES = {r.name for r in routes_for("tensorflow") if not r.in_process}

Zoo = tuple[Path, dict[str, ModelResult]]
Cli = Callable[..., CompletedProcess[str]]


def _manifest(out: Path, model: str) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((out / model / "manifest.json").read_text())
    return manifest


def test_every_registered_tensorflow_route_runs_on_some_zoo_model() -> None:
    registered = {name for fw, name in ROUTE_MODULES if fw == "tensorflow"}
    assert {"tf-function", "saved-model", "tflite", "onnx"} <= registered
    covered = {route for _, route in CASES} | {r for fw, r in PRECISION_CASES if fw == "tensorflow"}
    covered |= set(TARGET_MODELS)  # each in its own test module
    assert registered <= covered, f"routes without a zoo test: {sorted(registered - covered)}"


def test_zoo_has_the_keras_twins() -> None:
    """Every PyTorch zoo model has its Keras twin in the zoo ([[twins]]), and every Keras one is a twin."""
    twins = twin_tables(ZOO_CONFIG)
    assert {t["torch"] for t in twins} == {s.name for s in zoo_specs("torch")}
    assert {t["keras"] for t in twins} == {s.name for s in SPECS}


@pytest.mark.parametrize(("model", "route"), CASES, ids=[f"{m}-{r}" for m, r in CASES])
def test_zoo_route(keras_zoo: Zoo, model: str, route: str) -> None:
    out, results = keras_zoo
    result = next(r for r in results[model].routes if r.route == route)
    assert_as_declared(next(s for s in SPECS if s.name == model), result)
    manifest = _manifest(out, model)
    assert manifest["framework"] == "tensorflow"
    entry = next(e for e in manifest["routes"] if e["route"] == route)
    assert entry["status"] == result.status
    if result.status == "skipped":
        assert entry["reason"].strip(), "a skip must say why"
        assert not (out / model / route).exists()
        return
    assert result.check is not None
    points = result.check.points
    assert points and all(p.status == "passed" for p in points)
    # every dynamic dim was checked away from its example size, not only where it was traced
    spec = next(s for s in SPECS if s.name == model)
    for dim, bounds in spec.dims.items():
        assert {p.sizes[dim] for p in points} - {bounds.example}, f"{dim} only checked at its example"
    if route in FILE_ROUTES:
        assert entry["files"], f"{route} published no file"
    else:
        assert entry["files"] == []
    for f in entry["files"]:
        data = (out / model / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
        assert len(data) == f["bytes"]


@pytest.mark.parametrize("model", [s.name for s in SPECS])
def test_manifest_names_the_interface_and_versions(keras_zoo: Zoo, model: str) -> None:
    out, _ = keras_zoo
    manifest = _manifest(out, model)
    spec = next(s for s in SPECS if s.name == model)
    assert manifest["inputs"] == [i.to_json() for i in spec.inputs]
    assert [o["name"] for o in manifest["outputs"]] == ["output"]
    assert all(o["shape"][0] == "batch" for o in manifest["outputs"])
    assert {"keras", "tf2onnx", "onnx", "onnxruntime", "numpy"} <= set(manifest["versions"])
    assert {"tensorflow", "tensorflow-cpu"} & set(manifest["versions"])
    routes = {e["route"]: e for e in manifest["routes"]}
    if routes["onnx"]["status"] == "passed":
        assert isinstance(routes["onnx"]["opset"], int)
    if routes["tflite"]["status"] == "passed":
        assert routes["tflite"]["ops"] in ("TFLITE_BUILTINS", "TFLITE_BUILTINS+SELECT_TF_OPS")
    # a float64 clone of every Keras zoo model judges it (noise rule); none is vacuous
    assert manifest["rule"] == "noise" and manifest["float64_reference"] == "ok"
    assert manifest["noise"]["output"] > 0 and manifest["vacuous"] == {}
    for entry in (e for e in routes.values() if e["status"] == "passed"):
        assert entry["rule"] == "noise" and entry["float64_error"] is not None


def test_onnx_keeps_the_spec_names_and_dims(keras_zoo: Zoo) -> None:
    import onnx

    out, _ = keras_zoo
    for spec in SPECS:
        model = onnx.load(str(out / spec.name / "onnx" / "model.onnx"))
        assert [i.name for i in model.graph.input] == [i.name for i in spec.inputs]
        assert [o.name for o in model.graph.output] == ["output"]
        for graph_input, declared in zip(model.graph.input, spec.inputs, strict=True):
            dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
            assert dims == list(declared.dims)


def test_saved_model_signature_is_named(keras_zoo: Zoo) -> None:
    import tensorflow as tf

    out, _ = keras_zoo
    spec = next(s for s in SPECS if s.name == "KerasSeq")
    signature = tf.saved_model.load(str(out / spec.name / "saved-model" / "model.savedmodel")).signatures[
        "serving_default"
    ]
    args, kwargs = signature.structured_input_signature
    assert args == () and list(kwargs) == ["ids"]
    assert kwargs["ids"].shape.as_list() == [None, None]
    assert list(signature.structured_outputs) == ["output"]


# -- process isolation ------------------------------------------------------------------------------


def _artifact(path: Path | None = None, runner: str = "isolated") -> Artifact:
    return Artifact(
        route="test", exporter="test", runner=runner, path=path, input_names=("x",), output_names=("output",)
    )


class Introspect(Runner):
    """Answers with facts about the process it runs in: its pid and whether it ever imported the zoo."""

    name = "introspect"

    def activate_impl(self) -> None:
        self.runtime = "introspection"

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        return [np.array([os.getpid(), "graphmint.models.keras_zoo" in sys.modules])]


class CrashesInInfer(Runner):
    """Loads fine, then dies from SIGSEGV on the first inference, as a broken native runtime would."""

    name = "crashes-in-infer"

    def activate_impl(self) -> None:
        self.runtime = "about to crash"

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(60)  # not reached: the signal ends the process
        return []


class FailsToLoad(Runner):
    name = "fails-to-load"

    def activate_impl(self) -> None:
        raise FileNotFoundError("no model at /nowhere/model.bin")

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        raise AssertionError("never activated")


class Unavailable(Runner):
    name = "unavailable"

    def activate_impl(self) -> None:
        raise RuntimeUnavailable("no accelerator for this runtime here")

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        raise AssertionError("never activated")


class Hangs(Runner):
    name = "hangs"

    def activate_impl(self) -> None:
        self.runtime = "hangs on infer"

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        time.sleep(120)
        return []


def _hosted(inner: type[Runner], **kwargs: Any) -> IsolatedRunner:
    return IsolatedRunner(_artifact(), inner=f"{__name__}:{inner.__name__}", **kwargs)


def test_saved_model_is_checked_in_a_fresh_process(keras_zoo: Zoo) -> None:
    """The saved-model runner loads from disk in a spawned child that never saw the export's objects."""
    from graphmint.pipeline.spec.inputs import make_inputs, shape_grid
    from graphmint.pipeline.spec.loader import build_model
    from graphmint.validators import get_runner

    out, _ = keras_zoo
    spec = next(s for s in SPECS if s.name == "KerasCNN")
    feeds = make_inputs(spec, shape_grid(spec)[1], 1)
    framework, model = build_model(spec.ref, spec.seed)
    expected = framework.run_eager(model, feeds)["output"]
    artifact = Artifact(
        route="saved-model",
        exporter="tf.saved_model.save",
        runner="saved-model",
        path=out / spec.name / "saved-model" / "model.savedmodel",
        input_names=("x",),
        output_names=("output",),
    )
    runner = get_runner("saved-model")(artifact)
    assert isinstance(runner, IsolatedRunner)
    with runner:
        assert runner.child_pid is not None and runner.child_pid != os.getpid()
        assert runner.runtime.endswith("(in a child process)")
        [actual], _ = runner.infer(feeds)
    assert runner.process is not None and runner.process.exitcode == 0  # it closed when asked
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)

    # the child is a fresh interpreter: nothing this process imported (the zoo, the model) is in it
    assert "graphmint.models.keras_zoo" in sys.modules
    with _hosted(Introspect) as probe:
        [facts], _ = probe.infer({"x": np.zeros(1, np.float32)})
    pid, child_has_zoo = int(facts[0]), bool(facts[1])
    assert pid == probe.child_pid != os.getpid()
    assert not child_has_zoo


def test_a_crashing_child_becomes_an_error_naming_the_signal() -> None:
    runner = _hosted(CrashesInInfer)
    runner.activate()
    try:
        with pytest.raises(RuntimeError) as caught:
            runner.infer({"x": np.zeros(3, np.float32)})
        message = str(caught.value)
        assert "SIGSEGV" in message and "during infer" in message
        assert "in infer_impl" in message  # faulthandler's innermost frame
        assert "\n" not in message
        with pytest.raises(RuntimeError, match="SIGSEGV"):  # later calls fail fast, same reason
            runner.infer({"x": np.zeros(3, np.float32)})
    finally:
        runner.deactivate()
    assert runner.process is not None and runner.process.exitcode == -signal.SIGSEGV
    assert runner.log_path is None  # the child's log is removed with it


def test_an_exception_in_the_child_is_one_line_and_the_child_is_reaped() -> None:
    runner = _hosted(FailsToLoad)
    with pytest.raises(RuntimeError, match=r"activate failed .*FileNotFoundError: no model at /nowhere"):
        runner.activate()
    assert runner.process is not None and not runner.process.is_alive()
    assert runner.process.exitcode is not None


def test_an_unavailable_runtime_in_the_child_stays_unavailable() -> None:
    """A runtime that cannot run here is reported as such (a skip), not as a broken artifact."""
    runner = _hosted(Unavailable)
    with pytest.raises(RuntimeUnavailable, match=r"^no accelerator for this runtime here$"):
        runner.activate()
    assert runner.process is not None and not runner.process.is_alive()


def test_a_hanging_child_times_out_and_is_stopped() -> None:
    runner = _hosted(Hangs)
    runner.activate()
    runner.timeout = 1.0
    start = time.perf_counter()
    try:
        with pytest.raises(RuntimeError, match=r"did not answer infer within 1s"):
            runner.infer({"x": np.zeros(3, np.float32)})
    finally:
        runner.deactivate()
    assert time.perf_counter() - start < 30
    assert runner.process is not None and not runner.process.is_alive()


# -- user models, the adapter ------------------------------------------------------------------------

USER_MODELS = textwrap.dedent(
    """
    import keras

    def build():
        feats = keras.Input((None, 8), name="feats")
        pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(16, activation="tanh")(feats))
        return keras.Model(feats, {"score": keras.layers.Dense(1)(pooled), "pooled": pooled})
    """
)


def test_user_keras_model_with_inferred_inputs(graphmint_cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "mymod.py").write_text(USER_MODELS)
    proc = graphmint_cli("export", "mymod:build", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((tmp_path / "out" / "build" / "manifest.json").read_text())
    assert manifest["framework"] == "tensorflow"
    assert manifest["inputs"] == [{"name": "feats", "dtype": "float32", "shape": ["batch", "dim1", 8]}]
    assert [o["name"] for o in manifest["outputs"]] == ["score", "pooled"]
    statuses = {e["route"]: e["status"] for e in manifest["routes"]}
    assert statuses == dict.fromkeys(("tf-function", "saved-model", "tflite", "onnx"), "passed")


TF_MODULE = textwrap.dedent(
    """
    import tensorflow as tf

    class Project(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.random.normal([3, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="v")])
        def __call__(self, v):
            return {"proj": tf.matmul(v, self.w), "norm": tf.norm(v, axis=-1)}

    def build():
        return Project()
    """
)


def test_plain_tf_module_runs_every_route(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only Keras: a tf.Module with a tf.function signature, its inputs read off that signature."""
    from graphmint.pipeline.run.stages import RunOptions, run_model
    from graphmint.pipeline.spec.specs import make_model_spec

    (tmp_path / "tfmodule.py").write_text(TF_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = make_model_spec(name="Project", ref="tfmodule:build", inputs=[], dims=["batch=1..9"])
    result = run_model(spec, RunOptions(out=tmp_path / "out"))
    assert result.framework == "tensorflow"
    assert [i.dump() for i in result.inputs] == [{"name": "v", "dtype": "float32", "shape": ["batch", 3]}]
    assert [o.name for o in result.outputs] == ["proj", "norm"]
    assert {r.route: r.status for r in result.routes} == dict.fromkeys(
        ("tf-function", "saved-model", "tflite", "onnx"), "passed"
    )


UNCONVERTIBLE = TF_MODULE.replace('"norm": tf.norm(v, axis=-1)', '"lg": tf.math.lgamma(tf.abs(v) + 1.0)')


def test_an_op_tf2onnx_cannot_convert_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tf2onnx only logs the ops it has no conversion for (and writes a graph without them): the route
    fails naming them, read from the route's own log."""
    from graphmint.pipeline.run.stages import RunOptions, run_model
    from graphmint.pipeline.spec.specs import make_model_spec

    (tmp_path / "tfmodule_lg.py").write_text(UNCONVERTIBLE)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = make_model_spec(name="Lg", ref="tfmodule_lg:build", inputs=[], routes=["onnx"])
    [route] = run_model(spec, RunOptions(out=tmp_path / "out")).routes
    assert route.status == "error" and route.stage == "export"
    assert route.reason == "RuntimeError: tf2onnx has no conversion for Counter({'Lgamma': 1})"
    assert "Unsupported ops" in route.log


def test_inputs_inferred_from_keras_models() -> None:
    import keras

    from graphmint.models.frameworks.tensorflow_fw import TensorFlowFramework
    from graphmint.models.keras_zoo import keras_custom

    fw = TensorFlowFramework()
    ids = keras.Input((None,), dtype="int32", name="ids")
    mask = keras.Input((None,), dtype="bool", name="mask")
    image = keras.Input((28, 28, 1), batch_size=4, name="image")
    two = keras.Model([ids, mask], keras.ops.cast(mask, "int32") * ids)
    assert fw.infer_inputs(two) == ["ids:int32[batch,dim1]", "mask:bool[batch,dim1]"]
    assert fw.infer_inputs(keras.Model(image, image)) == ["image:float32[4,28,28,1]"]
    assert fw.infer_inputs(keras_custom()) == []  # a subclassed model declares no inputs


def test_seeded_builds_are_reproducible_and_leave_global_rngs_alone() -> None:
    import random

    from graphmint.models.frameworks.tensorflow_fw import TensorFlowFramework
    from graphmint.models.keras_zoo import keras_simple_net

    fw = TensorFlowFramework()
    weights = []
    for seed in (0, 0, 1):
        with fw.seeded(seed):
            weights.append([w.numpy() for w in keras_simple_net().weights])
    assert all(np.array_equal(a, b) for a, b in zip(weights[0], weights[1], strict=True))
    assert not np.array_equal(weights[0][0], weights[2][0])

    state = random.getstate(), np.random.get_state()
    expected = random.random(), np.random.random()  # what the global RNGs give next
    random.setstate(state[0])
    np.random.set_state(state[1])
    with fw.seeded(0):
        random.random(), np.random.random()
    assert (random.random(), np.random.random()) == expected


def test_a_model_keras_cannot_save_is_no_keras_torch_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """keras-torch rebuilds a model from its .keras file: a plain tf.Module has none, and the route
    says so as a skip (it does not apply), not as a failure."""
    from graphmint.pipeline.run.stages import RunOptions, run_model
    from graphmint.pipeline.spec.specs import make_model_spec

    (tmp_path / "tfmodule_kt.py").write_text(TF_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = make_model_spec(name="Project", ref="tfmodule_kt:build", inputs=[], routes=["keras-torch"])
    [route] = run_model(spec, RunOptions(out=tmp_path / "out")).routes
    assert route.status == "skipped", route.reason
    assert route.reason.startswith("the model does not save to a .keras file: "), route.reason
