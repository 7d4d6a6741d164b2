"""The weight bridge: a PyTorch model's parameters copied into its Keras twin, layer by layer.

The layers that hold weights are paired in order (torch modules in registration order, Keras layers
in the order the model lists them), and each pair is converted by its kinds:

- Linear ↔ Dense: the kernel is the transposed weight; a custom layer holding one (in, out) matrix
  (an `nn.Parameter` multiplied from the right) ↔ a Keras layer with one kernel of the same shape
- Conv2d ↔ Conv2D: (out, in, kh, kw) → (kh, kw, in, out), NCHW ↔ NHWC
- BatchNorm ↔ BatchNormalization: weight, bias, running mean and variance ↔ gamma, beta, moving stats
- LayerNorm ↔ LayerNormalization; Embedding ↔ Embedding
- LSTM ↔ LSTM: input and recurrent kernels transposed, the two torch biases summed (both frameworks
  order the gates input, forget, cell, output)
- MultiheadAttention ↔ MultiHeadAttention: the packed input projection split into query, key and
  value kernels of shape (d_model, heads, head_dim), the output projection to (heads, head_dim, d_model)

`bridge` returns, per Keras weight, the torch tensor it came from and how (a `Mapping`), which the
parity check uses to compare gradients and updated weights across the frameworks and name the layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BridgeError",
    "Mapping",
    "bridge",
    "to_keras_layout",
    "weighted_keras_layers",
    "weighted_torch_layers",
]


class BridgeError(ValueError):
    """The twins' layers do not pair up: which pair, and why."""


@dataclass(frozen=True)
class Mapping:
    """Keras weight `keras` (its path) is torch tensor(s) `torch` through `convert`."""

    layer: str
    keras: str
    torch: tuple[str, ...]
    convert: Callable[..., np.ndarray]

    def gradient(self, *grads: np.ndarray) -> np.ndarray:
        """The Keras weight's gradient from the torch tensors' (a summed bias: either one's)."""
        return grads[0] if self.convert is _summed else self.convert(*grads)


def _t(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.T)


def _same(w: np.ndarray) -> np.ndarray:
    return w


def _conv(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def _summed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a + b


#: (Keras weight name, torch tensor names, conversion)
_Pair = tuple[str, tuple[str, ...], Callable[..., np.ndarray]]


def weighted_torch_layers(model: Any) -> list[tuple[str, Any]]:
    """Modules that hold parameters or float buffers of their own, in registration order."""
    found: list[tuple[str, Any]] = []
    for name, module in model.named_modules():
        own = list(module.named_parameters(recurse=False)) + [
            b for b in module.named_buffers(recurse=False) if b[1].is_floating_point()
        ]
        if own and not any(name.startswith(f"{n}.") for n, _ in found):
            found.append((name, module))
    return found


def weighted_keras_layers(model: Any) -> list[Any]:
    return [layer for layer in _walk(model) if layer.weights]


def _walk(layer: Any) -> list[Any]:
    inner = getattr(layer, "layers", None)
    if not inner:
        return [layer]
    return [leaf for child in inner for leaf in _walk(child)]


def _pairs(name: str, module: Any, layer: Any) -> list[_Pair]:
    """(Keras weight name, torch tensor names, conversion) for one pair of layers."""
    kind, other = type(module).__name__, type(layer).__name__
    p = f"{name}." if name else ""
    if kind == "Linear" and other == "Dense":
        return _kernel_bias(p, module, _t)
    if kind == "Conv2d" and other == "Conv2D":
        return _kernel_bias(p, module, _conv)
    if kind.startswith("BatchNorm") and other == "BatchNormalization":
        return [
            ("gamma", (f"{p}weight",), _same),
            ("beta", (f"{p}bias",), _same),
            ("moving_mean", (f"{p}running_mean",), _same),
            ("moving_variance", (f"{p}running_var",), _same),
        ]
    if kind == "LayerNorm" and other == "LayerNormalization":
        return [("gamma", (f"{p}weight",), _same), ("beta", (f"{p}bias",), _same)]
    if kind == "Embedding" and other == "Embedding":
        return [("embeddings", (f"{p}weight",), _same)]
    if kind == "LSTM" and other == "LSTM":
        return [
            ("kernel", (f"{p}weight_ih_l0",), _t),
            ("recurrent_kernel", (f"{p}weight_hh_l0",), _t),
            ("bias", (f"{p}bias_ih_l0", f"{p}bias_hh_l0"), _summed),
        ]
    if kind == "MultiheadAttention" and other == "MultiHeadAttention":
        return _attention(p, module, layer)
    params = list(module.named_parameters(recurse=False))
    if (
        len(params) == 1
        and len(layer.weights) == 1
        and tuple(params[0][1].shape) == tuple(layer.weights[0].shape)
    ):
        return [(layer.weights[0].name, (f"{p}{params[0][0]}",), _same)]  # a custom (in, out) matrix
    raise BridgeError(f"torch {name or 'model'} ({kind}) has no known Keras twin in {layer.name} ({other})")


def _kernel_bias(p: str, module: Any, convert: Callable[..., np.ndarray]) -> list[_Pair]:
    """The kernel from `weight` through `convert`, and the bias where the module has one."""
    pairs: list[_Pair] = [("kernel", (f"{p}weight",), convert), ("bias", (f"{p}bias",), _same)]
    return pairs[: 1 + (module.bias is not None)]


def _attention(p: str, module: Any, layer: Any) -> list[_Pair]:
    d, heads = module.embed_dim, module.num_heads
    head = d // heads

    def projection(index: int) -> Callable[..., np.ndarray]:
        def kernel(w: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(w[index * d : (index + 1) * d].T.reshape(d, heads, head))

        return kernel

    def projection_bias(index: int) -> Callable[..., np.ndarray]:
        def bias(b: np.ndarray) -> np.ndarray:
            return b[index * d : (index + 1) * d].reshape(heads, head)

        return bias

    def output(w: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(w.T.reshape(heads, head, d))

    pairs: list[_Pair] = []
    for index, part in enumerate(("query", "key", "value")):
        pairs.append((f"{part}/kernel", (f"{p}in_proj_weight",), projection(index)))
        pairs.append((f"{part}/bias", (f"{p}in_proj_bias",), projection_bias(index)))
    pairs.append(("attention_output/kernel", (f"{p}out_proj.weight",), output))
    pairs.append(("attention_output/bias", (f"{p}out_proj.bias",), _same))
    return pairs


def _keras_weight(layer: Any, suffix: str) -> Any:
    matches = [w for w in layer.weights if w.path.endswith(f"/{suffix}") or w.path == suffix]
    if len(matches) != 1:
        raise BridgeError(f"Keras layer {layer.name} has no single weight named {suffix!r}")
    return matches[0]


def bridge(torch_model: Any, keras_model: Any) -> list[Mapping]:
    """Copy every weight of the torch model into the Keras twin; the mapping, per Keras weight."""
    tensors = {n: t.detach().cpu().numpy() for n, t in torch_model.state_dict().items()}
    torch_layers, keras_layers = weighted_torch_layers(torch_model), weighted_keras_layers(keras_model)
    if len(torch_layers) != len(keras_layers):
        raise BridgeError(
            f"the torch model has {len(torch_layers)} layers with weights "
            f"({', '.join(n for n, _ in torch_layers)}), the Keras twin {len(keras_layers)} "
            f"({', '.join(layer.name for layer in keras_layers)})"
        )
    mappings = []
    for (name, module), layer in zip(torch_layers, keras_layers, strict=True):
        for suffix, sources, convert in _pairs(name, module, layer):
            weight = _keras_weight(layer, suffix)
            value = convert(*(tensors[s] for s in sources))
            if tuple(value.shape) != tuple(weight.shape):
                raise BridgeError(
                    f"{name} → {layer.name}/{suffix}: shape {tuple(value.shape)} against "
                    f"{tuple(weight.shape)}"
                )
            weight.assign(value.astype(weight.dtype))
            mappings.append(Mapping(f"{name} ↔ {layer.name}", weight.path, sources, convert))
    return mappings


def to_keras_layout(
    feeds: dict[str, np.ndarray], keras_shapes: list[tuple[int | None, ...]]
) -> list[np.ndarray]:
    """The torch model's inputs as its Keras twin takes them: NCHW images as NHWC."""
    arrays = []
    for array, shape in zip(feeds.values(), keras_shapes, strict=True):
        if (
            array.ndim == 4
            and len(shape) == 4
            and shape[1:] == (array.shape[2], array.shape[3], array.shape[1])
        ):
            array = array.transpose(0, 2, 3, 1)
        arrays.append(np.ascontiguousarray(array))
    return arrays
