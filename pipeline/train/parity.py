"""`graphmint parity`: a PyTorch model and its Keras twin, given the same weights (pipeline.train.twins),
must compute the same thing: eagerly, as ONNX files (torch.onnx's and tf2onnx's), and over training
steps with identical hyperparameters (Adam's epsilon set alike: torch's default is 1e-8, Keras' 1e-7).

One child process per pair builds both models from their references and seed, copies the torch
weights into the Keras twin, and checks the three. Where they part, it names the layer pair: forward,
the first paired layer whose output differs; training, the first step and weight.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.pipeline.train.recipe import Batch, Recipe

__all__ = ["FORWARD_ATOL", "PairResult", "keras_inputs", "parity_job"]

#: the largest |torch − Keras| a forward output may show (eager, and between the two ONNX files)
FORWARD_ATOL = 1e-5
#: training: the loss and gradients of the first step agree within float32's tolerance at their scale
TRAIN_ATOL, TRAIN_RTOL = 1e-5, 1e-4


@dataclass
class PairResult:
    torch: str
    keras: str
    ok: bool = True
    #: max |torch − Keras| of the first output: eager, ONNX
    eager_error: float | None = None
    onnx_error: float | None = None
    #: per step: |loss difference|, and the worst weight's error relative to float32's bound
    loss_error: list[float] = field(default_factory=list)
    weight_ratio: list[float] = field(default_factory=list)
    #: step 1 (the same weights, the same batch): the worst gradient's error relative to its bound
    gradient_ratio: float | None = None
    #: where the weights first part beyond float32's bound over the steps (not a failure: under Adam,
    #: a weight whose gradient is rounding noise moves by ±lr in either framework alike)
    drift: str = ""
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


def _first(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return next(iter(outputs.values()))


def _torch_forward(model: Any, feeds: dict[str, np.ndarray]) -> np.ndarray:
    from graphmint.models.frameworks import get_framework

    return _first(get_framework("torch").run_eager(model, feeds))


def _keras_forward(model: Any, arrays: list[np.ndarray], names: list[str]) -> np.ndarray:
    from graphmint.models.frameworks import get_framework

    return _first(get_framework("tensorflow").run_eager(model, dict(zip(names, arrays, strict=True))))


def keras_inputs(model: Any, feeds: dict[str, np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    from graphmint.pipeline.train.twins import to_keras_layout

    try:
        symbolic = list(model.inputs)
    except (AttributeError, ValueError):  # a subclassed model has no symbolic inputs: take them as they are
        return list(feeds), list(feeds.values())
    shapes = [tuple(t.shape) for t in symbolic]
    dtypes = [str(t.dtype) for t in symbolic]
    arrays = [a.astype(d) for a, d in zip(to_keras_layout(feeds, shapes), dtypes, strict=True)]
    names = [getattr(t, "name", f"input_{i}").split(":")[0] for i, t in enumerate(symbolic)]
    return names, arrays


def _layer_divergence(torch_model: Any, keras_model: Any, feeds: dict[str, np.ndarray]) -> str:
    """The first paired layer whose output differs, for a forward that does not agree."""
    import keras
    import torch

    from graphmint.pipeline.train.twins import weighted_keras_layers, weighted_torch_layers

    outputs: dict[str, np.ndarray] = {}

    def keep(name: str) -> Any:
        def hook(module: Any, args: Any, out: Any) -> None:  # returns None: the output stays as it is
            outputs.setdefault(name, (out[0] if isinstance(out, tuple) else out).detach().numpy())

        return hook

    hooks = [module.register_forward_hook(keep(name)) for name, module in weighted_torch_layers(torch_model)]
    with torch.inference_mode():
        torch_model(*[torch.from_numpy(a) for a in feeds.values()])
    for hook in hooks:
        hook.remove()
    layers = weighted_keras_layers(keras_model)
    probe = keras.Model(keras_model.inputs, [layer.output for layer in layers])
    _, arrays = keras_inputs(keras_model, feeds)
    keras_outputs = probe(arrays if len(arrays) > 1 else arrays[0], training=False)
    for (name, _), layer, theirs in zip(
        weighted_torch_layers(torch_model), layers, keras_outputs, strict=False
    ):
        mine = outputs.get(name)
        theirs = np.asarray(theirs[0] if isinstance(theirs, (list, tuple)) else theirs)
        if mine is None:
            continue
        if mine.ndim == 4 and theirs.ndim == 4:
            mine = mine.transpose(0, 2, 3, 1)
        if mine.shape != theirs.shape:
            continue
        error = float(np.max(np.abs(mine - theirs)))
        if error > FORWARD_ATOL:
            return f"first differing layer pair: {name} ↔ {layer.name} (max abs {error:.3g})"
    return "no paired layer's output differs by itself: the layers between them do"


def _onnx_error(torch_model: Any, keras_model: Any, feeds: dict[str, np.ndarray]) -> float:
    import onnxruntime as ort

    from graphmint.exporters import ExportContext, get_route

    names, arrays = keras_inputs(keras_model, feeds)
    with tempfile.TemporaryDirectory(prefix="graphmint-parity-") as folder:
        files = []
        for framework, model, example, input_names in (
            ("torch", torch_model, feeds, list(feeds)),
            ("tensorflow", keras_model, dict(zip(names, arrays, strict=True)), names),
        ):
            route = get_route(framework, "onnx")
            ctx = ExportContext(
                model=model,
                framework=framework,
                workdir=Path(folder) / framework,
                input_names=tuple(input_names),
                output_names=("output",),
                example_inputs=example,
                dynamic_axes={},
                dtypes={n: str(a.dtype) for n, a in example.items()},
                route="onnx",
            )
            ctx.workdir.mkdir()
            exported = route.strategies[0][1](ctx)
            if exported.artifact is None or exported.artifact.path is None:
                raise RuntimeError(f"{framework} ONNX export failed: {exported.reason}")
            files.append((exported.artifact.path, example))
        results = []
        for path, example in files:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            given = dict(zip([i.name for i in session.get_inputs()], example.values(), strict=True))
            results.append(session.run(None, given)[0])
    return float(np.max(np.abs(results[0] - results[1])))


def _train(
    torch_model: Any,
    keras_model: Any,
    mappings: list[Any],
    stream: list[Batch],
    recipe: Recipe,
    result: PairResult,
) -> None:
    import keras
    import tensorflow as tf
    import torch

    epsilon = recipe.epsilon or 1e-8
    torch_model.train()
    params = dict(torch_model.named_parameters())
    if recipe.optimizer == "adam":
        torch_opt: Any = torch.optim.Adam(params.values(), lr=recipe.lr, eps=epsilon)
        keras_opt: Any = keras.optimizers.Adam(learning_rate=recipe.lr, epsilon=epsilon)
    else:
        torch_opt = torch.optim.SGD(params.values(), lr=recipe.lr)
        keras_opt = keras.optimizers.SGD(learning_rate=recipe.lr)
    cross_entropy = recipe.loss == "cross-entropy"
    torch_loss = torch.nn.CrossEntropyLoss() if cross_entropy else torch.nn.MSELoss()
    keras_loss = (
        keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if cross_entropy
        else keras.losses.MeanSquaredError()
    )
    variables = keras_model.trainable_variables
    by_path = {v.path: v for v in variables}
    trained = [m for m in mappings if m.keras in by_path and all(s in params for s in m.torch)]
    for index, batch in enumerate(stream):
        torch_opt.zero_grad()
        out = torch_model(*[torch.from_numpy(a) for a in batch.inputs.values()])
        loss = torch_loss(out, torch.from_numpy(batch.target))
        loss.backward()
        gradients = [(m, m.gradient(*(params[s].grad.numpy() for s in m.torch))) for m in trained]
        torch_opt.step()
        _, arrays = keras_inputs(keras_model, batch.inputs)
        with tf.GradientTape() as tape:
            theirs = keras_model(arrays if len(arrays) > 1 else arrays[0], training=True)
            keras_value = keras_loss(batch.target, theirs)
        applied = tape.gradient(keras_value, variables)
        keras_opt.apply_gradients(zip(applied, variables, strict=True))
        # an Embedding's gradient comes as IndexedSlices: dense, to compare
        grads = {v.path: tf.convert_to_tensor(g).numpy() for v, g in zip(variables, applied, strict=True)}
        result.loss_error.append(abs(float(loss) - float(keras_value)))
        weights = [
            (m, m.convert(*(params[s].detach().numpy() for s in m.torch)), by_path[m.keras].numpy())
            for m in trained
        ]
        worst, where = _worst(weights)
        result.weight_ratio.append(worst)
        if index == 0:  # the same weights and batch: the same loss and gradients, within float32's rounding
            grad_ratio, grad_where = _worst([(m, mine, grads[m.keras]) for m, mine in gradients])
            result.gradient_ratio = grad_ratio
            loss_bound = TRAIN_ATOL + TRAIN_RTOL * abs(float(loss))
            if result.loss_error[0] > loss_bound or grad_ratio > 1:
                result.ok = False
                what = f"the gradients of {grad_where}" if grad_ratio > 1 else "the loss"
                result.problems.append(
                    f"training: step 1 parts at {what} (loss {float(loss):.6g} vs {float(keras_value):.6g}, "
                    f"worst gradient {grad_ratio:.3g}x its bound)"
                )
        if worst > 1 and not result.drift:
            result.drift = f"step {index + 1}, {where}: {worst:.3g}x float32's bound"


def _worst(triples: list[tuple[Any, np.ndarray, Any]]) -> tuple[float, str]:
    """The largest |torch − Keras| of the mapped tensors, as a multiple of float32's tolerance at each
    tensor's scale, and where."""
    worst, where = 0.0, ""
    for m, mine, keras_value in triples:
        theirs = np.asarray(keras_value)
        error = float(np.max(np.abs(mine - theirs)))
        ratio = error / (TRAIN_ATOL + TRAIN_RTOL * float(np.max(np.abs(mine), initial=0.0)))
        if ratio > worst:
            worst, where = ratio, f"{m.layer} ({m.keras})"
    return worst, where


def parity_job(
    torch_ref: str,
    keras_ref: str,
    seed: int,
    feeds: dict[str, np.ndarray],
    stream: list[Batch],
    recipe: Recipe,
) -> PairResult:
    """In a child: build both twins, bridge the weights, check forward (eager, ONNX) and training."""
    import time

    from graphmint.pipeline.spec.loader import build_model
    from graphmint.pipeline.train.twins import bridge

    start = time.perf_counter()
    result = PairResult(torch_ref, keras_ref)
    _, torch_model = build_model(torch_ref, seed)
    _, keras_model = build_model(keras_ref, seed)
    mappings = bridge(torch_model, keras_model)
    names, arrays = keras_inputs(keras_model, feeds)
    result.eager_error = float(
        np.max(np.abs(_torch_forward(torch_model, feeds) - _keras_forward(keras_model, arrays, names)))
    )
    if result.eager_error > FORWARD_ATOL:
        result.ok = False
        result.problems.append(
            f"eager: max abs {result.eager_error:.3g} > {FORWARD_ATOL:g}; "
            + _layer_divergence(torch_model, keras_model, feeds)
        )
    result.onnx_error = _onnx_error(torch_model, keras_model, feeds)
    if result.onnx_error > FORWARD_ATOL:
        result.ok = False
        result.problems.append(
            f"ONNX: the two files differ by max abs {result.onnx_error:.3g} > {FORWARD_ATOL:g}"
        )
    _train(torch_model, keras_model, mappings, stream, replace(recipe), result)
    result.seconds = time.perf_counter() - start
    return result
