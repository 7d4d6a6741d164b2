"""Keras models that stand for patterns of users' own Keras code (imports TensorFlow: torch-only tests
keep to real_model_defs)."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="graphmint_tests")
class GraphGelu(keras.layers.Layer):
    """GELU that takes the tanh approximation when it runs in a graph (tf.function, SavedModel, TFLite,
    tf2onnx), the exact one eagerly: the graph holds another code path than the eager model runs."""

    def call(self, x: Any) -> Any:
        return keras.activations.gelu(x, approximate=not tf.executing_eagerly())


def keras_divergent() -> keras.Model:
    """Three residual blocks; only the middle one's activation (`act_1`) diverges in a graph."""
    inputs = keras.Input((16,), name="x")
    h = keras.layers.Dense(32, activation="relu", name="stem")(inputs)
    for i in range(3):
        act = GraphGelu(name=f"act_{i}") if i == 1 else keras.layers.Activation("gelu", name=f"act_{i}")
        inner = keras.layers.Dense(
            64, name=f"fc1_{i}", kernel_initializer=keras.initializers.RandomNormal(0, 0.5)
        )(h)
        h = keras.layers.Add(name=f"add_{i}")([h, keras.layers.Dense(32, name=f"fc2_{i}")(act(inner))])
    return keras.Model(inputs, keras.layers.Dense(4, name="head")(h))
