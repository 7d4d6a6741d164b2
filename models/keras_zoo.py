"""Keras zoo: twins of the PyTorch zoo, built the three Keras ways (Sequential, subclassed, functional).

Factories draw every weight from the RNGs graphmint seeds (keras.utils.set_random_seed); no weights
are downloaded. Each model computes in float32, takes its inputs channels-last as Keras does, and is
built before it is returned, so its weights exist when the pipeline reads them.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

__all__ = [
    "KerasCustom",
    "MatMul",
    "keras_cnn",
    "keras_custom",
    "keras_seq",
    "keras_simple_net",
    "keras_transformer",
]


class MatMul(layers.Layer):
    """A layer that owns one weight, made by `add_weight`, and multiplies by it (no bias)."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        fan_in = int(input_shape[-1])  # type: ignore[arg-type]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(fan_in, self.units),
            initializer=keras.initializers.RandomNormal(stddev=fan_in**-0.5),
        )

    def call(self, x: Any) -> Any:
        return keras.ops.matmul(x, self.kernel)


class KerasCustom(keras.Model):
    """Subclassed model: MatMul 10→20, ReLU, Dense 20→2."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.custom = MatMul(20)
        self.relu = layers.ReLU()
        self.head = layers.Dense(2)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.custom.build(input_shape)
        self.head.build((*input_shape[:-1], self.custom.units))

    def call(self, x: Any) -> Any:
        return self.head(self.relu(self.custom(x)))


def keras_simple_net() -> keras.Model:
    """Dense 10→20 with ReLU, Dense 20→2."""
    return keras.Sequential(
        [keras.Input((10,), name="x"), layers.Dense(20, activation="relu"), layers.Dense(2)],
        name="KerasSimpleNet",
    )


def keras_custom() -> keras.Model:
    model = KerasCustom(name="KerasCustom")
    model.build((None, 10))
    return model


def _randomize_batchnorm(model: keras.Model) -> keras.Model:
    """Give BatchNormalization non-trivial moving statistics so exporters that fold them are tested."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            shape = tuple(layer.moving_mean.shape)
            layer.moving_mean.assign(keras.random.uniform(shape, -0.5, 0.5))
            layer.moving_variance.assign(keras.random.uniform(shape, 0.5, 1.5))
            layer.gamma.assign(keras.random.uniform(shape, 0.5, 1.5))
            layer.beta.assign(keras.random.uniform(shape, -0.2, 0.2))
    return model


def keras_cnn(classes: int = 10) -> keras.Model:
    """Conv, batch norm, ReLU, pooling, Dense on 32×32 RGB images (channels-last). Batch norm as
    torch's (epsilon 1e-5, a 0.1 update of the moving statistics), so that it is SmallCNN's twin."""
    x = inputs = keras.Input((32, 32, 3), name="x")
    x = layers.Conv2D(16, 3, padding="same")(x)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9)(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(32, 3, padding="same")(x)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9)(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(classes)(x)
    return _randomize_batchnorm(keras.Model(inputs, outputs, name="KerasCNN"))


def keras_seq(vocab: int = 1000, embed: int = 32, hidden: int = 48, classes: int = 5) -> keras.Model:
    """Embedding with id 0 as padding (mask_zero) and an LSTM over a variable-length int32 sequence.

    The mask makes the LSTM carry its state over padded steps, which every static form must keep.
    """
    ids = keras.Input((None,), dtype="int32", name="ids")
    # unit-variance embeddings (as torch's nn.Embedding has) keep the outputs of order one
    unit_normal = keras.initializers.RandomNormal(stddev=1.0)
    embedding = layers.Embedding(vocab, embed, embeddings_initializer=unit_normal, mask_zero=True)
    x = embedding(ids)
    x = layers.LSTM(hidden)(x)
    outputs = layers.Dense(classes)(x)
    return keras.Model(ids, outputs, name="KerasSeq")


def keras_transformer(d_model: int = 64, heads: int = 4, hidden: int = 128) -> keras.Model:
    """Pre-norm encoder block: multi-head self-attention and a GELU MLP, with residuals."""
    x = inputs = keras.Input((None, d_model), name="x")
    h = layers.LayerNormalization(epsilon=1e-5)(x)
    x = x + layers.MultiHeadAttention(heads, d_model // heads)(h, h)
    h = layers.LayerNormalization(epsilon=1e-5)(x)
    h = layers.Dense(hidden, activation="gelu")(h)
    outputs = x + layers.Dense(d_model)(h)
    return keras.Model(inputs, outputs, name="KerasTransformer")
