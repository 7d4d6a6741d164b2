"""A user's own samples (`--data DIR`), validated on beside the seeded grid.

DIR holds `.npz` files (one sample each: an array per input, named after the inputs, or `arr_0`,
`arr_1`, ... in input order) and/or `test_data_set_N` folders in the ONNX model-zoo layout
(`input_K.pb`, serialized TensorProtos; the layout graphmint publishes golden data in). Every array
must have its input's dtype, its fixed dims, and dynamic dims within their ranges; a sample that does
not fit is a SpecError naming the file, the input and what to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphmint.pipeline.errors import SpecError
from graphmint.pipeline.spec.specs import ModelSpec

__all__ = ["Sample", "read_samples"]


@dataclass(frozen=True)
class Sample:
    label: str
    feeds: dict[str, np.ndarray]
    #: each dynamic dim's size in this sample
    sizes: dict[str, int]


def _npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except Exception as exc:
        raise SpecError(
            f"--data {path}: not a readable .npz file ({type(exc).__name__}): save it with numpy.savez"
        ) from None


def _data_set(folder: Path, names: list[str]) -> dict[str, np.ndarray]:
    from onnx import TensorProto, numpy_helper

    files = sorted(folder.glob("input_*.pb"), key=lambda p: int(p.stem.partition("_")[2] or 0))
    arrays: dict[str, np.ndarray] = {}
    for index, path in enumerate(files):
        tensor = TensorProto()
        try:
            tensor.ParseFromString(path.read_bytes())
            value = numpy_helper.to_array(tensor)
        except Exception as exc:
            raise SpecError(
                f"--data {path}: not a serialized onnx.TensorProto ({type(exc).__name__})"
            ) from None
        name = (
            tensor.name if tensor.name in names else (names[index] if index < len(names) else f"arr_{index}")
        )
        arrays[name] = value
    return arrays


def _fit(
    spec: ModelSpec, where: Path, arrays: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    names = [i.name for i in spec.inputs]
    positional = [f"arr_{i}" for i in range(len(names))]
    if set(arrays) == set(positional) and set(arrays) != set(names):
        arrays = {name: arrays[key] for name, key in zip(names, positional, strict=True)}
    if set(arrays) != set(names):
        raise SpecError(
            f"--data {where}: holds {sorted(arrays)}, the model takes {names}: "
            "name the arrays after the inputs"
        )
    sizes: dict[str, int] = {}
    for spec_input in spec.inputs:
        value = arrays[spec_input.name]
        if str(value.dtype) != spec_input.dtype:
            raise SpecError(
                f"--data {where}: {spec_input.name!r} is {value.dtype}, the input is {spec_input.dtype}: "
                f"save it as {spec_input.dtype}"
            )
        if value.ndim != len(spec_input.dims):
            raise SpecError(
                f"--data {where}: {spec_input.name!r} has shape {list(value.shape)}, the input has "
                f"{len(spec_input.dims)} dims {list(spec_input.dims)}"
            )
        for dim, size in zip(spec_input.dims, value.shape, strict=True):
            if isinstance(dim, int):
                if size != dim:
                    raise SpecError(
                        f"--data {where}: {spec_input.name!r} has shape {list(value.shape)}, the input "
                        f"{list(spec_input.dims)}: a fixed dim is {dim}"
                    )
                continue
            if sizes.setdefault(dim, size) != size:
                raise SpecError(
                    f"--data {where}: dim {dim!r} is {sizes[dim]} in one input and {size} in another"
                )
            bounds = spec.dims[dim]
            if not bounds.min <= size <= bounds.max:
                raise SpecError(
                    f"--data {where}: {dim}={size} is outside its range {bounds.min}..{bounds.max}: "
                    f"widen it with --dim {dim}=MIN..MAX"
                )
    return {name: np.ascontiguousarray(arrays[name]) for name in names}, sizes


def read_samples(spec: ModelSpec, folder: Path) -> list[Sample]:
    """Every sample in `folder`, checked against the spec's inputs; SpecError (one line) otherwise."""
    if not folder.is_dir():
        raise SpecError(
            f"--data {folder}: not a folder: pass a folder of .npz files or test_data_set_N folders"
        )
    files = sorted(folder.glob("*.npz"))
    sets = sorted((p for p in folder.glob("test_data_set_*") if p.is_dir()), key=lambda p: p.name)
    if not files and not sets:
        raise SpecError(f"--data {folder}: holds no .npz file and no test_data_set_N folder")
    names = [i.name for i in spec.inputs]
    samples = []
    for path in files:
        feeds, sizes = _fit(spec, path, _npz(path))
        samples.append(Sample(f"data:{path.name}", feeds, sizes))
    for path in sets:
        feeds, sizes = _fit(spec, path, _data_set(path, names))
        samples.append(Sample(f"data:{path.name}", feeds, sizes))
    return samples
