"""One form of a model's training step, run for every batch of the stream: its trace.

A form is the whole step (forward, loss, backward, optimizer update) eagerly, eagerly in float64 (the
reference every other form is measured against), or compiled: in PyTorch `torch.compile` of the step
function (Dynamo captures forward and loss, AOTAutograd the backward, and the optimizer's update is
compiled too), in TensorFlow the seed's `tf.function` train_step with GradientTape, and the same with
`jit_compile=True` (XLA). Each form runs in a child process of its own (pipeline.train.check): the
model is built there from its reference and seed, so every form starts from the same weights.

The trace keeps, per step, the loss, every parameter's gradient norm, and every parameter and float
buffer (batch norm statistics) after the update.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphmint.pipeline.spec.sources import ModelRef
from graphmint.pipeline.train.recipe import Batch, Recipe

__all__ = ["FORMS", "REFERENCE", "Trace", "trace_form"]

#: the forms of the step per framework: eager first, then its float64 copy, then the compiled ones
FORMS: dict[str, tuple[str, ...]] = {
    "torch": ("eager", "float64", "torch-compile"),
    "tensorflow": ("eager", "float64", "tf-function", "tf-function-xla"),
}
REFERENCE = "float64"


@dataclass
class Trace:
    """What one form did at each step."""

    form: str
    loss: list[float] = field(default_factory=list)
    grad_norms: list[dict[str, float]] = field(default_factory=list)
    #: every parameter and float buffer after each step's update
    state: list[dict[str, np.ndarray]] = field(default_factory=list)
    seconds: float = 0.0
    #: why the form could not run (it has no trace then)
    error: str = ""
    #: layers that draw random numbers in training (dropout, noise), switched off in every form: no
    #: two forms draw the same numbers (Inductor's and XLA's generators are not eager's)
    quieted: list[str] = field(default_factory=list)


def _first_output(out: Any, flatten: Any) -> Any:
    outputs = list(flatten(out).values())
    if not outputs:
        raise ValueError("the model returned no tensor to compute a loss on")
    return outputs[0]


def _torch_trace(
    model: Any, form: str, stream: Sequence[Batch], recipe: Recipe, names: Sequence[str]
) -> Trace:
    import torch

    from graphmint.models.frameworks.torch_fw import bind_inputs, call_bound, flatten_torch_tensors

    wide = form == REFERENCE
    if wide:
        model = model.to(torch.float64)
    model.train()
    quieted = [n for n, m in model.named_modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
    for name in quieted:
        model.get_submodule(name).eval()
    params = dict(model.named_parameters())
    if recipe.optimizer == "adam":
        eps: dict[str, Any] = {} if recipe.epsilon is None else {"eps": recipe.epsilon}
        optimizer: Any = torch.optim.Adam(params.values(), lr=recipe.lr, **eps)
    else:
        optimizer = torch.optim.SGD(params.values(), lr=recipe.lr)
    loss_fn = torch.nn.CrossEntropyLoss() if recipe.loss == "cross-entropy" else torch.nn.MSELoss()
    keywords = bind_inputs(model, names)

    def step(inputs: list[Any], target: Any) -> Any:
        optimizer.zero_grad()
        out = _first_output(call_bound(model, keywords, names, inputs), flatten_torch_tensors)
        loss = loss_fn(out, target)
        loss.backward()
        optimizer.step()
        return loss.detach()

    run = torch.compile(step) if form == "torch-compile" else step
    trace = Trace(form, quieted=quieted)

    def tensor(array: np.ndarray) -> Any:
        value = torch.from_numpy(np.ascontiguousarray(array))
        return value.to(torch.float64) if wide and value.is_floating_point() else value

    for batch in stream:
        loss = run([tensor(a) for a in batch.inputs.values()], tensor(batch.target))
        trace.loss.append(float(loss))
        trace.grad_norms.append({n: float(p.grad.norm()) for n, p in params.items() if p.grad is not None})
        state = {n: p.detach().cpu().numpy().copy() for n, p in params.items()}
        state.update(
            {n: b.detach().cpu().numpy().copy() for n, b in model.named_buffers() if b.is_floating_point()}
        )
        trace.state.append(state)
    return trace


def _keras_trace(
    model: Any, form: str, stream: Sequence[Batch], recipe: Recipe, names: Sequence[str]
) -> Trace:
    import keras
    import tensorflow as tf

    from graphmint.models.frameworks import get_framework
    from graphmint.models.frameworks.tensorflow_fw import call_model, flatten_tf_outputs

    wide = form == REFERENCE
    if wide:
        model = get_framework("tensorflow").float64_copy(model)
    dtype = "float64" if wide else "float32"
    if recipe.optimizer == "adam":
        eps = {} if recipe.epsilon is None else {"epsilon": recipe.epsilon}
        optimizer: Any = keras.optimizers.Adam(learning_rate=recipe.lr, **eps)
    else:
        optimizer = keras.optimizers.SGD(learning_rate=recipe.lr)
    if recipe.loss == "cross-entropy":
        loss_fn: Any = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)
    else:
        loss_fn = keras.losses.MeanSquaredError(dtype=dtype)
    variables = model.trainable_variables
    random = (keras.layers.Dropout, keras.layers.GaussianDropout, keras.layers.AlphaDropout)
    quieted = []
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, random) and layer.rate > 0:
            layer.rate = 0.0
            quieted.append(layer.name)
        elif isinstance(layer, keras.layers.GaussianNoise) and layer.stddev > 0:
            layer.stddev = 0.0
            quieted.append(layer.name)
    optimizer.build(variables)

    def train_step(inputs: list[Any], target: Any) -> tuple[Any, list[Any]]:
        with tf.GradientTape() as tape:
            out = _first_output(call_model(model, names, inputs, training=True), flatten_tf_outputs)
            loss = loss_fn(target, out)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, grads

    run: Any = train_step
    if form in ("tf-function", "tf-function-xla"):
        run = tf.function(train_step, jit_compile=form == "tf-function-xla")
    trace = Trace(form, quieted=quieted)

    def tensor(array: np.ndarray) -> Any:
        return tf.constant(array.astype(np.float64) if wide and array.dtype.kind == "f" else array)

    for batch in stream:
        loss, grads = run([tensor(a) for a in batch.inputs.values()], tensor(batch.target))
        trace.loss.append(float(loss))
        trace.grad_norms.append(
            {v.path: float(tf.norm(g)) for v, g in zip(variables, grads, strict=True) if g is not None}
        )
        trace.state.append({v.path: np.array(v.numpy()) for v in model.variables if "float" in str(v.dtype)})
    return trace


def trace_form(
    ref: str | ModelRef,
    seed: int,
    framework: str,
    form: str,
    stream: Sequence[Batch],
    recipe: Recipe,
    names: Sequence[str],
) -> Trace:
    """In a child: build the model from its reference and seed, run one form over the stream."""
    from graphmint.pipeline.spec.loader import build_model

    _, model = build_model(ref, seed)
    start = time.perf_counter()
    run = _torch_trace if framework == "torch" else _keras_trace
    trace = run(model, form, stream, recipe, names)
    trace.seconds = time.perf_counter() - start
    return trace
