"""Weights files loaded strictly into a built model (`--weights`): every tensor the model has must be
in the file with its shape, and nothing else; a file whose loading would run code needs `trust`."""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["WeightsError", "load_keras_weights", "load_torch_weights"]

#: how many names of each kind of mismatch the one line lists
_LISTED = 5


class WeightsError(ValueError):
    """A weights file that does not fit the model or may not be loaded; the message is one line."""


def _names(names: list[str]) -> str:
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return ", ".join(names[:_LISTED]) + more


def check_fit(expected: Mapping[str, tuple[int, ...]], given: Mapping[str, tuple[int, ...]]) -> None:
    """WeightsError listing the missing and unexpected names and the shapes that differ."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = [
        f"{k} {list(given[k])} for {list(v)}" for k, v in expected.items() if k in given and given[k] != v
    ]
    problems = [
        f"{what} {_names(names)}"
        for what, names in (("missing", missing), ("unexpected", unexpected), ("shapes differ:", shapes))
        if names
    ]
    if problems:
        raise WeightsError(f"does not fit the model: {'; '.join(problems)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _torch_state(path: Path, trust: bool) -> Any:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise WeightsError(f"is not a safetensors file ({_first_line(exc)})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not trust:
            raise WeightsError(
                "is a pickle that holds more than tensors (a whole module saved with torch.save(model)?), "
                "and unpickling it runs code: save model.state_dict() or a safetensors file, or pass --trust"
            ) from None
    except Exception as exc:
        raise WeightsError(f"cannot be read as a state dict ({_first_line(exc)})") from None
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state.state_dict() if isinstance(state, torch.nn.Module) else state


def load_torch_weights(model: Any, path: Path, trust: bool) -> None:
    """A safetensors file, or a `.pt`/`.pth` state dict (weights_only unpickling; a whole pickled
    module only with `trust`), loaded into `model` with strict keys and shapes."""
    import torch

    state = _torch_state(path, trust)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"holds a {type(state).__name__}, not a state dict of tensors")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_fit(expected, {str(k): tuple(v.shape) for k, v in state.items()})
    model.load_state_dict(state, strict=True)


def _h5_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    import h5py

    shapes: dict[str, tuple[int, ...]] = {}

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset):
            shapes[name] = tuple(node.shape)

    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(visit)
    except OSError as exc:
        raise WeightsError(f"is not an HDF5 weights file ({_first_line(exc)})") from None
    return shapes


def load_keras_weights(model: Any, path: Path, trust: bool) -> None:
    """A `.weights.h5` file (model.save_weights), checked against the layout the model itself saves
    (the same names and shapes, nothing more) before Keras loads it."""
    if not path.name.endswith(".weights.h5"):
        raise WeightsError("is not a Keras weights file: pass the .weights.h5 that model.save_weights wrote")
    with tempfile.TemporaryDirectory() as folder:
        own = Path(folder) / "model.weights.h5"
        model.save_weights(own)
        expected = _h5_shapes(own)
    check_fit(expected, _h5_shapes(path))
    model.load_weights(path)
