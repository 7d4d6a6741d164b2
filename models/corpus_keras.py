"""Keras corpus: keras.applications and keras-hub architectures, and plain Keras built four ways.

Every factory builds its model with the library's own code and random weights drawn from the RNGs
graphmint seeds (keras.utils.set_random_seed); nothing is downloaded (`weights=None`, no presets, no
tokenizer). Sizes are kept small (64x64 images, two-layer encoders): the plain Keras and keras-hub
models build and run in well under a second on a CPU; a keras.applications model takes a few seconds
to build and a few hundred milliseconds per eager call, most of it Keras's per-layer overhead.

Where a library's default initialisation makes the output nearly constant (BatchNorm statistics of a
network that was never trained), the factory re-draws them, so that every output varies with the
input. Models take channels-last inputs, as Keras has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
from keras import layers

__all__ = [
    "RMSScale",
    "ResidualMLP",
    "bert_backbone",
    "conv_bilstm",
    "convnext",
    "custom_layer_net",
    "dict_outputs_net",
    "efficientnet_b0",
    "gemma_backbone",
    "masked_bigru",
    "mobilenet_v3_small",
    "padded_tokens",
    "resnet50",
    "subclassed_net",
    "text_inputs",
    "time_distributed_net",
]

#: every keras.applications model sees 64x64 RGB images
IMAGE_SHAPE = (64, 64, 3)
#: labels of every classification head
LABELS = 10


def text_inputs(shapes: Mapping[str, tuple[int, ...]], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A `padding_mask` of right-padded sequences: each row keeps 1..seq leading tokens.

    Graphmint calls this as an input generator (`generator = "graphmint.models.corpus_keras:text_inputs"`);
    token and segment ids come from the spec's value ranges.
    """
    out: dict[str, np.ndarray] = {}
    if "padding_mask" in shapes:
        batch, seq = shapes["padding_mask"]
        lengths = rng.integers(1, seq, size=batch, endpoint=True)
        out["padding_mask"] = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    return out


def padded_tokens(shapes: Mapping[str, tuple[int, ...]], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`tokens` of right-padded sequences: ids in 1..99, then the padding id 0 to the row's end.

    Each row keeps 1..seq leading ids and the last row is always padded (where seq > 1), so that an
    `Embedding(mask_zero=True)` has a mask that matters at every grid point.
    """
    out: dict[str, np.ndarray] = {}
    if "tokens" in shapes:
        batch, seq = shapes["tokens"]
        lengths = rng.integers(1, seq, size=batch, endpoint=True)
        if seq > 1:
            lengths[-1] = rng.integers(1, seq)
        ids = rng.integers(1, 99, size=(batch, seq), endpoint=True)
        out["tokens"] = np.where(np.arange(seq)[None, :] < lengths[:, None], ids, 0).astype(np.int32)
    return out


def _calibrate_batchnorm(model: keras.Model, batch: int) -> keras.Model:
    """Random BatchNorm scales and offsets, and moving statistics measured on one random batch.

    keras.applications start every BatchNorm at mean 0 and variance 1; untrained, the activations of
    EfficientNetB0 and MobileNetV3Small then shrink layer after layer until the logits are constant
    to 1e-8. One call in training mode over a batch drawn from the Keras RNG, with momentum 0, gives
    each BatchNorm the statistics of that batch, so activations keep unit scale and exporters that
    fold BatchNorm fold non-trivial numbers. Dropout (EfficientNet's drop-connect included) is off
    for that call, or the statistics would not match what inference computes.

    The deepest stages see 2x2 maps, so a deep network needs a larger `batch` for statistics that
    hold on other inputs too; otherwise its activations grow with depth at inference (EfficientNetB0's
    logits reach std ~60 when calibrated on 8 images, ~10 on 32).
    """
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    dropouts = [layer for layer in model.layers if isinstance(layer, layers.Dropout)]
    momenta = [layer.momentum for layer in norms]
    rates = [layer.rate for layer in dropouts]
    for layer in norms:
        shape = tuple(layer.gamma.shape)
        layer.gamma.assign(keras.random.uniform(shape, 0.5, 1.5))
        layer.beta.assign(keras.random.uniform(shape, -0.2, 0.2))
        layer.momentum = 0.0
    for layer in dropouts:
        layer.rate = 0.0
    model(keras.random.normal((batch, *IMAGE_SHAPE)), training=True)
    for layer, momentum in zip(norms, momenta, strict=True):
        layer.momentum = momentum
    for layer, rate in zip(dropouts, rates, strict=True):
        layer.rate = rate
    return model


def _application(name: str, calibration_batch: int) -> keras.Model:
    """A keras.applications classifier: random weights, LABELS logits, one input named `images`.

    The application is rebuilt as a model of its input tensor (not a one-element list), so that it
    is called with a tensor as graphmint calls single-input models.
    """
    images = keras.Input(IMAGE_SHAPE, name="images")
    app = getattr(keras.applications, name)(
        weights=None,
        input_tensor=images,
        input_shape=IMAGE_SHAPE,
        classes=LABELS,
        classifier_activation=None,
    )
    return _calibrate_batchnorm(keras.Model(images, app.output, name=app.name), calibration_batch)


# --- keras.applications -------------------------------------------------------------------------


def efficientnet_b0() -> keras.Model:
    """EfficientNetB0 (MBConv, squeeze-and-excitation, swish), with its built-in rescaling layers."""
    return _application("EfficientNetB0", calibration_batch=32)


def mobilenet_v3_small() -> keras.Model:
    """MobileNetV3Small (hard-swish, squeeze-and-excitation), with its built-in rescaling layer."""
    return _application("MobileNetV3Small", calibration_batch=16)


def resnet50() -> keras.Model:
    """ResNet50 (bottleneck blocks, BatchNorm), 23.6M parameters at ten classes."""
    return _application("ResNet50", calibration_batch=4)


def convnext() -> keras.Model:
    """keras.applications' ConvNeXt builder at one block per stage and widths 8 to 64: patchify stem,
    depthwise 7x7 convs, LayerNorm, layer scale, and downsampling to 2x2 maps at 64x64.

    Without its built-in preprocessing, which expects pixels in 0..255 and would scale graphmint's
    standard-normal images down 255-fold (the logits then vary with the input by 0.3%): the model
    takes normalised images. The builder starts every layer scale at 1e-6, which makes each block the
    identity to six digits (a wrong block would go unseen); the gammas are re-drawn in 0.1..1 from
    the Keras RNG.
    """
    from keras.src.applications.convnext import ConvNeXt, LayerScale

    depths = [1, 1, 1, 1]
    images = keras.Input(IMAGE_SHAPE, name="images")
    app = ConvNeXt(
        depths=depths,
        projection_dims=[8, 16, 32, 64],
        drop_path_rate=0.0,
        layer_scale_init_value=1e-6,
        default_size=IMAGE_SHAPE[0],
        name="convnext_corpus",
        include_preprocessing=False,
        weights=None,
        input_tensor=images,
        input_shape=IMAGE_SHAPE,
        classes=LABELS,
        classifier_activation=None,
    )
    scales = [layer for layer in app.layers if isinstance(layer, LayerScale)]
    assert len(scales) == sum(depths), f"expected a layer scale per block, found {len(scales)}"
    for layer in scales:
        layer.gamma.assign(keras.random.uniform(tuple(layer.gamma.shape), 0.1, 1.0))
    return keras.Model(images, app.output, name=app.name)


# --- keras-hub ----------------------------------------------------------------------------------


def bert_backbone() -> keras.Model:
    """keras_hub BertBackbone, tiny: a functional model that takes a dict of three int32 inputs.

    Inputs `token_ids`, `segment_ids` and `padding_mask` ([batch, seq] each); outputs the dict
    {"sequence_output": [batch, seq, 32], "pooled_output": [batch, 32]}.
    """
    import keras_hub

    return keras_hub.models.BertBackbone(
        vocabulary_size=100,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=64,
        num_segments=2,
    )


def gemma_backbone() -> keras.Model:
    """keras_hub GemmaBackbone, tiny: RMSNorm, rotary positions, multi-query attention, GeGLU.

    Inputs `token_ids` and `padding_mask` ([batch, seq] each, passed as a dict); outputs the final
    hidden states [batch, seq, 32].
    """
    import keras_hub

    return keras_hub.models.GemmaBackbone(
        vocabulary_size=100,
        num_layers=2,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=32,
        intermediate_dim=64,
        head_dim=16,
    )


# --- plain Keras --------------------------------------------------------------------------------


def conv_bilstm(features: int = 8, filters: int = 16, units: int = 16, classes: int = 4) -> keras.Model:
    """Conv1D over a variable-length sequence, then a bidirectional LSTM and a Dense head."""
    x = inputs = keras.Input((None, features), name="x")
    x = layers.Conv1D(filters, 3, padding="same", activation="relu")(x)
    x = layers.Bidirectional(layers.LSTM(units))(x)
    outputs = layers.Dense(classes)(x)
    return keras.Model(inputs, outputs, name="ConvBiLSTM")


def masked_bigru(vocabulary: int = 100, width: int = 16, units: int = 16, classes: int = 4) -> keras.Model:
    """Token ids into an Embedding with `mask_zero=True`, a bidirectional GRU that skips the padded
    steps (id 0), and a Dense head.

    Embeddings are drawn with std 1, not Keras's uniform 0.05, so that the GRU's gates leave their
    linear range and its output is not a near-constant of order 1e-2.
    """
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = layers.Embedding(
        vocabulary, width, mask_zero=True, embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0)
    )(tokens)
    x = layers.Bidirectional(layers.GRU(units))(x)
    outputs = layers.Dense(classes)(x)
    return keras.Model(tokens, outputs, name="MaskedBiGRU")


def time_distributed_net(size: int = 8, filters: int = 4, classes: int = 4) -> keras.Model:
    """TimeDistributed Conv2D, global pooling and Dense over a clip of any number of frames."""
    x = frames = keras.Input((None, size, size, 3), name="frames")
    x = layers.TimeDistributed(layers.Conv2D(filters, 3))(x)
    x = layers.TimeDistributed(layers.GlobalAveragePooling2D())(x)
    outputs = layers.TimeDistributed(layers.Dense(classes))(x)
    return keras.Model(frames, outputs, name="TimeDistributedNet")


@keras.saving.register_keras_serializable(package="graphmint_corpus")
class RMSScale(layers.Layer):
    """RMS normalisation with its own learnt per-feature gain (a weight made by `add_weight`)."""

    def __init__(self, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.gain = self.add_weight(
            name="gain",
            shape=(int(input_shape[-1]),),  # type: ignore[arg-type]
            initializer=keras.initializers.RandomUniform(0.5, 1.5),
        )

    def call(self, x: Any) -> Any:
        ms = keras.ops.mean(keras.ops.square(x), axis=-1, keepdims=True)
        return x * keras.ops.rsqrt(ms + self.epsilon) * self.gain

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


def custom_layer_net(features: int = 16, hidden: int = 32, classes: int = 4) -> keras.Model:
    """Functional model around a custom layer: Dense, RMSScale, GELU, Dense."""
    x = inputs = keras.Input((features,), name="x")
    x = layers.Dense(hidden)(x)
    x = RMSScale(name="rms_scale")(x)
    x = layers.Activation("gelu")(x)
    outputs = layers.Dense(classes)(x)
    return keras.Model(inputs, outputs, name="CustomLayerNet")


def dict_outputs_net(features: int = 12, categories: int = 20, classes: int = 3) -> keras.Model:
    """Two inputs (floats and a category id) into a shared trunk, and three named outputs."""
    feats = keras.Input((features,), name="features")
    category = keras.Input((), dtype="int32", name="category")
    embedded = layers.Embedding(
        categories, 8, embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0)
    )(category)
    trunk = layers.Dense(32, activation="relu")(layers.Concatenate()([feats, embedded]))
    outputs = {
        "logits": layers.Dense(classes, name="logits")(trunk),
        "score": layers.Dense(1, activation="sigmoid", name="score")(trunk),
        "embedding": layers.LayerNormalization(name="embedding_norm")(layers.Dense(16)(trunk)),
    }
    return keras.Model([feats, category], outputs, name="DictOutputsNet")


@keras.saving.register_keras_serializable(package="graphmint_corpus")
class ResidualMLP(keras.Model):
    """Subclassed model: an input projection, `blocks` pre-norm residual MLP blocks, a head.

    `call` loops over the blocks in Python and returns a tuple (logits, features).
    """

    def __init__(self, hidden: int = 32, blocks: int = 3, classes: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden, self.blocks, self.classes = hidden, blocks, classes
        self.project = layers.Dense(hidden)
        self.norms = [layers.LayerNormalization() for _ in range(blocks)]
        self.ups = [layers.Dense(2 * hidden, activation="gelu") for _ in range(blocks)]
        self.downs = [layers.Dense(hidden) for _ in range(blocks)]
        self.head = layers.Dense(classes)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.project.build(input_shape)
        hidden_shape = (*input_shape[:-1], self.hidden)
        for norm, up, down in zip(self.norms, self.ups, self.downs, strict=True):
            norm.build(hidden_shape)
            up.build(hidden_shape)
            down.build((*input_shape[:-1], 2 * self.hidden))
        self.head.build(hidden_shape)

    def call(self, x: Any) -> Any:
        h = self.project(x)
        for norm, up, down in zip(self.norms, self.ups, self.downs, strict=True):
            h = h + down(up(norm(h)))
        return self.head(h), h

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden": self.hidden, "blocks": self.blocks, "classes": self.classes}


def subclassed_net(features: int = 10) -> keras.Model:
    model = ResidualMLP(name="ResidualMLP")
    model.build((None, features))
    return model
