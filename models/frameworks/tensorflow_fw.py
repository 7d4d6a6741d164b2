"""TensorFlow / Keras adapter.

TensorFlow and Keras are imported inside the functions that need them, never at module import.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.models.frameworks import DTYPES, Framework, flatten_outputs

__all__ = ["TensorFlowFramework", "call_model", "flatten_tf_outputs", "to_tf"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def to_tf(feeds: Mapping[str, np.ndarray]) -> list[Any]:
    import tensorflow as tf

    return [tf.constant(v) for v in feeds.values()]


def _input_structure(model: Any) -> Any:
    """What a functional Keras model was built on: one tensor, a list, or a dict of named inputs."""
    try:
        return model.input
    except (AttributeError, ValueError):  # a Sequential never called has only its `inputs` list
        pass
    try:
        inputs = list(model.inputs or [])
    except (AttributeError, ValueError):  # a subclassed model has no symbolic inputs
        return None
    return inputs[0] if len(inputs) == 1 else inputs or None


def call_model(model: Any, names: Sequence[str], args: Sequence[Any], training: bool = False) -> Any:
    """Call a model on its inputs, given by `names` in order: a Keras model in inference mode (in
    training mode with `training`, as a training step calls it).

    A Keras model built on a dict of inputs (keras-hub backbones) gets a dict keyed by input name; one
    built on a list gets the inputs in its own order (by name where the names are its inputs'); one
    input goes as a tensor. A tf.Module is called positionally.
    """
    import keras

    if not isinstance(model, keras.Model):
        return model(*args)
    # looked up by the structure's names too, which are None where Keras made one up
    by_name: dict[str | None, Any] = dict(zip(names, args, strict=True))
    structure = _input_structure(model)
    if isinstance(structure, Mapping):
        missing = sorted(set(structure) - set(by_name))
        if missing:
            raise ValueError(
                f"the model takes a dict of inputs {sorted(structure)}; no input is named {missing}: "
                "name the --input specs after its keys"
            )
        return model({k: by_name[k] for k in structure}, training=training)
    if isinstance(structure, (list, tuple)) and len(args) > 1:
        declared = [_stable_name(t) for t in structure]
        if set(declared) == set(by_name):
            return model([by_name[n] for n in declared], training=training)
    return model(args[0] if len(args) == 1 else list(args), training=training)


#: names Keras makes up for tensors and Input layers that were given none: they count up with every
#: model built in the process, so they are no interface to publish
_AUTO_NAME = re.compile(r"(keras_tensor|input_layer|input)(_\d+)?")


def _stable_name(tensor: Any) -> str | None:
    """An input's own name (the Input layer's `name=`), or None for a name Keras made up."""
    name = getattr(tensor, "name", None)
    history = getattr(tensor, "_keras_history", None)
    layer = getattr(history, "operation", None) if history is not None else None
    for candidate in (name, getattr(layer, "name", None)):
        if candidate and not _AUTO_NAME.fullmatch(candidate):
            return str(candidate)
    return None


def flatten_tf_outputs(out: Any) -> dict[str, Any]:
    """The model's output tensors (eager or symbolic), named as `flatten_outputs` names them."""
    import tensorflow as tf

    return flatten_outputs(out, tf.is_tensor, lambda t: t)


def _declared_inputs(model: Any) -> list[tuple[str | None, tuple[int | None, ...], str]]:
    """(name, shape, dtype) of each input a Keras model or a tf.function-decorated tf.Module declares.

    The name is a dict input's key or the Input layer's own name; None where Keras made one up.
    """
    import keras
    import tensorflow as tf

    if isinstance(model, keras.Model):
        structure = _input_structure(model)
        if isinstance(structure, Mapping):
            return [(str(k), tuple(t.shape), str(t.dtype)) for k, t in structure.items()]
        inputs = list(tf.nest.flatten(structure)) if structure is not None else []
        return [(_stable_name(t), tuple(t.shape), str(t.dtype)) for t in inputs]
    signature = getattr(model.__call__, "input_signature", None) if callable(model) else None
    specs = [s for s in tf.nest.flatten(signature or []) if isinstance(s, tf.TensorSpec)]
    return [(s.name, tuple(s.shape.as_list()), s.dtype.name) for s in specs]


def _keras_seed_restorer() -> Callable[[], None]:
    """A function that puts Keras's global seed and seed generator back as they are now.

    Keras keeps them in its private global state; where that moves in a later Keras, the restorer
    does nothing and only the Python, NumPy and TensorFlow states are restored.
    """
    try:
        from keras.src.backend.common import global_state
        from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
        from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    except ImportError:
        return lambda: None
    saved = {k: global_state.get_global_attribute(k) for k in (GLOBAL_RANDOM_SEED, GLOBAL_SEED_GENERATOR)}

    def restore() -> None:
        for key, value in saved.items():
            global_state.set_global_attribute(key, value)

    return restore


_LOW_PRECISION = frozenset({"float32", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16"})


def _as_float64(config: Any) -> Any:
    """A Keras config with every float dtype and dtype policy made float64."""
    if isinstance(config, list):
        return [_as_float64(v) for v in config]
    if not isinstance(config, dict):
        return config
    inner = config.get("config")
    policy = "DTypePolicy" in str(config.get("class_name"))
    if policy and isinstance(inner, dict) and inner.get("name") in _LOW_PRECISION:
        return {**config, "config": {**inner, "name": "float64"}}
    return {
        k: "float64" if k == "dtype" and isinstance(v, str) and v in _LOW_PRECISION else _as_float64(v)
        for k, v in config.items()
    }


class TensorFlowFramework(Framework):
    name = "tensorflow"

    def owns(self, obj: Any) -> bool:
        import keras
        import tensorflow as tf

        return isinstance(obj, (keras.Model, tf.Module))

    @contextmanager
    def seeded(self, seed: int) -> Iterator[None]:
        """keras.utils.set_random_seed inside the block; the RNG states it touches are restored after."""
        import keras
        import tensorflow as tf

        python_state, numpy_state = random.getstate(), np.random.get_state()
        tf_seed = tf.compat.v1.get_seed(None)[0]
        restore_keras = _keras_seed_restorer()
        keras.utils.set_random_seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            tf.random.set_seed(tf_seed)
            restore_keras()

    def prepare(self, model: Any) -> Any:
        # Keras has no inference mode to switch on: every call passes training=False instead.
        return model

    def run_eager(self, model: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = flatten_tf_outputs(call_model(model, list(feeds), to_tf(feeds)))
        return {name: np.asarray(tensor) for name, tensor in out.items()}

    def infer_inputs(self, model: Any) -> list[str]:
        """Specs from a Keras model's Input layers (or a tf.Module's input_signature).

        A leading unknown dim is "batch"; any other unknown dim at axis k is "dimk", the same name in
        every input, so inputs that share a length (tokens and their mask) vary it together.
        """
        specs = []
        taken: set[str] = set()
        declared = _declared_inputs(model)
        for index, (raw_name, shape, dtype) in enumerate(declared):
            if dtype not in DTYPES:
                return []
            name = re.sub(r"\W", "_", raw_name or "")
            if not _NAME.fullmatch(name) or name in taken:
                name = "input" if len(declared) == 1 else f"input_{index}"
            taken.add(name)
            dims = [
                str(size) if size is not None else ("batch" if axis == 0 else f"dim{axis}")
                for axis, size in enumerate(shape)
            ]
            specs.append(f"{name}:{dtype}[{','.join(dims)}]")
        return specs

    def weights(self, model: Any) -> dict[str, np.ndarray]:
        named: dict[str, np.ndarray] = {}
        weights: Any = getattr(model, "weights", None)
        for index, variable in enumerate(weights or getattr(model, "variables", ())):
            name = getattr(variable, "path", None) or getattr(variable, "name", None) or f"weight_{index}"
            named[name if name not in named else f"{name}_{index}"] = np.asarray(variable)
        return named

    def load_weights(self, model: Any, path: Path, trust: bool) -> None:
        from graphmint.models.frameworks.weights import load_keras_weights

        load_keras_weights(model, path, trust)

    def float64_copy(self, model: Any) -> Any:
        """The Keras model rebuilt from its config with float64 dtype policies, given its weights.

        A model whose class cannot be rebuilt from its config (a subclass without `get_config`
        arguments) or a plain tf.Module has no copy.
        """
        import keras

        if not isinstance(model, keras.Model):
            raise TypeError(f"a {type(model).__name__} is no Keras model, which could be rebuilt in float64")
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("float64")
        try:
            clone = type(model).from_config(_as_float64(model.get_config()))
        finally:
            keras.config.set_dtype_policy(previous)
        weights = model.get_weights()
        if not clone.built and weights:
            clone.build_from_config(model.get_build_config())
        clone.set_weights([w.astype(np.float64) if w.dtype.kind == "f" else w for w in weights])
        return clone

    def probe(self, model: Any, input_names: Sequence[str]) -> tuple[Any, list[tuple[str, str]]]:
        """A functional Keras model with every layer's output after the model's own (layers called more
        than once, and those whose output is not one tensor, are left out)."""
        import keras

        if not isinstance(model, keras.Model) or _input_structure(model) is None:
            raise TypeError(
                f"a {type(model).__name__} is no functional Keras model: its layers have no symbolic "
                "outputs to compare one by one"
            )
        names, tensors = [], []
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            try:
                output = layer.output
            except (AttributeError, ValueError):  # called more than once, or never
                continue
            if isinstance(output, keras.KerasTensor):
                names.append((layer.name, type(layer).__name__))
                tensors.append(output)
        if not names:
            raise ValueError("the model has no layer with one output tensor to compare")
        structure = model.output  # in the order run_eager names them: a dict's own order, not sorted
        outputs = list(structure.values()) if isinstance(structure, Mapping) else list(model.outputs)
        return keras.Model(model.inputs, [*outputs, *tensors], name=f"{model.name}_probe"), names
