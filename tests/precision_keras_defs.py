"""A Keras model with inputs of several names, as keras-hub's text backbones have."""

from __future__ import annotations

import keras


def two_embeddings() -> keras.Model:
    """Token ids (0..99) and segment ids (0..1), each into its own embedding: an int8 TFLite file
    calibrated with the inputs in the wrong order looks token ids up in the segment table."""
    keras.utils.set_random_seed(0)
    tokens = keras.Input((8,), dtype="int32", name="token_ids")
    segments = keras.Input((8,), dtype="int32", name="segment_ids")
    hidden = keras.layers.Embedding(100, 16)(tokens) + keras.layers.Embedding(2, 16)(segments)
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(16, activation="relu")(hidden))
    return keras.Model([tokens, segments], keras.layers.Dense(4)(pooled))


def tiny_dense() -> keras.Model:
    """Two Dense layers of fewer than 1024 weights each: TFLite's dynamic-range quantization leaves
    both in float32, so its "int8" file holds no int8 tensor."""
    x = keras.Input((8,), name="x")
    return keras.Model(x, keras.layers.Dense(4)(keras.layers.Dense(8, activation="relu")(x)))
