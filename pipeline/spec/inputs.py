"""The shape grid every artifact is checked on, and seeded, dtype-aware example inputs."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from graphmint.pipeline.spec.specs import InputSpec, ModelSpec

__all__ = ["GRID_BUDGET_BYTES", "GridPoint", "check_grid_budget", "make_inputs", "padded_masks", "shape_grid"]

#: the inputs `padded_masks` makes: transformers' attention masks and keras-hub's padding masks
_MASK_NAMES = ("attention_mask", "padding_mask")

#: the most bytes of inputs a model's whole shape grid may take: every point's inputs and the eager
#: outputs on them are held in memory and written as golden data
GRID_BUDGET_BYTES = 2 << 30


@dataclass(frozen=True)
class GridPoint:
    """One set of sizes for the dynamic dims. `varied` names the dim moved off its example size."""

    label: str
    sizes: dict[str, int] = field(default_factory=dict)
    varied: str | None = None


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % k for k in range(2, int(n**0.5) + 1))


def _prime_between(low: int, high: int) -> int | None:
    """The largest prime strictly inside (low, high), searched downward from the midpoint."""
    for n in range((low + high) // 2, low, -1):
        if low < n < high and _is_prime(n):
            return n
    return None


def shape_grid(spec: ModelSpec) -> list[GridPoint]:
    """The example point, then for each dynamic dim: its min, max, 1 and a prime in between.

    Every other dynamic dim stays at its example size, so a failure points at one dimension.
    """
    examples = {d: r.example for d, r in spec.dims.items()}
    points = [GridPoint("example", dict(examples))]
    for dim, r in spec.dims.items():
        candidates = [r.min, r.max, 1, _prime_between(r.min, r.max)]
        sizes = sorted({c for c in candidates if c is not None and r.min <= c <= r.max} - {r.example})
        for size in sizes:
            points.append(GridPoint(f"{dim}={size}", {**examples, dim: size}, varied=dim))
    return points


def check_grid_budget(spec: ModelSpec, budget: int = GRID_BUDGET_BYTES) -> None:
    """SpecError, before anything is allocated, when the grid's inputs would exceed `budget` bytes."""
    from graphmint.pipeline.errors import SpecError

    total, largest = 0, (0, "")
    for point in shape_grid(spec):
        for i in spec.inputs:
            shape = spec.shape_at(i, point.sizes)
            size = int(np.prod(shape, dtype=object)) * np.dtype(i.dtype).itemsize
            total += size
            largest = max(largest, (size, f"{i.name}{list(shape)} at {point.label}"))
    if total > budget:
        raise SpecError(
            f"model {spec.name!r}: the shape grid's inputs alone need {total / 2**30:.3g} GiB (largest: "
            f"{largest[1]}, {largest[0] / 2**30:.3g} GiB), over graphmint's {budget / 2**30:g} GiB "
            "budget: narrow the --dim ranges or the fixed sizes"
        )


def _generate(
    spec: InputSpec, shape: tuple[int, ...], low_high: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    if spec.dtype == "bool":
        return rng.random(shape) < 0.5
    if spec.dtype.startswith(("int", "uint")):
        low, high = low_high
        return rng.integers(low, high, size=shape, endpoint=True).astype(spec.dtype)
    return rng.standard_normal(shape).astype(spec.dtype)


def make_inputs(spec: ModelSpec, point: GridPoint, index: int) -> dict[str, np.ndarray]:
    """Inputs for grid point number `index`: the same seed and point always give the same arrays.

    A spec's `generator` (`module:callable`) is called as `generator(shapes, rng)` with every input's
    shape at this point and a seeded numpy Generator; it returns arrays for some or all inputs, and
    the others are generated as usual (floats normal, integers in their value range, bools fair).
    """
    rng = np.random.default_rng([spec.seed, index])
    shapes = {i.name: spec.shape_at(i, point.sizes) for i in spec.inputs}
    custom = _from_generator(spec, shapes, rng) if spec.generator else {}
    return {
        i.name: custom[i.name]
        if i.name in custom
        else _generate(i, shapes[i.name], spec.value_range(i.name), rng)
        for i in spec.inputs
    }


def _from_generator(
    spec: ModelSpec, shapes: dict[str, tuple[int, ...]], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    from graphmint.pipeline.errors import SpecError
    from graphmint.pipeline.spec.loader import resolve_callable

    assert spec.generator is not None
    generator = resolve_callable(spec.generator)
    dtypes = {i.name: i.dtype for i in spec.inputs}
    try:
        takes_dtypes = len(inspect.signature(generator).parameters) >= 3
    except (TypeError, ValueError):
        takes_dtypes = False
    try:
        produced = generator(dict(shapes), rng, dtypes) if takes_dtypes else generator(dict(shapes), rng)
    except Exception as exc:
        raise SpecError(f"input generator {spec.generator!r} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(produced, dict):
        raise SpecError(
            f"input generator {spec.generator!r} must return a dict of arrays, not {type(produced).__name__}"
        )
    declared = {i.name: i for i in spec.inputs}
    arrays = {}
    for name, value in produced.items():
        if name not in declared:
            raise SpecError(
                f"input generator {spec.generator!r} made {name!r}, which is not a declared input"
            )
        array = np.asarray(value)
        if array.shape != shapes[name] or array.dtype != np.dtype(declared[name].dtype):
            raise SpecError(
                f"input generator {spec.generator!r} made {name!r} as {array.dtype}{list(array.shape)}, "
                f"where the spec declares {declared[name].dtype}{list(shapes[name])}"
            )
        arrays[name] = array
    return arrays


def padded_masks(
    shapes: Mapping[str, tuple[int, ...]], rng: np.random.Generator, dtypes: Mapping[str, str]
) -> dict[str, np.ndarray]:
    """Right-padded masks of [batch, seq] inputs named like attention or padding masks: each row keeps
    1..seq leading positions, as a batch of padded sequences does. The input generator graphmint
    gives the models whose inputs it reads off their config (pipeline.spec.sources)."""
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        if not name.endswith(_MASK_NAMES) or len(shape) != 2:
            continue
        batch, seq = shape
        lengths = rng.integers(1, seq, size=batch, endpoint=True)
        out[name] = (np.arange(seq)[None, :] < lengths[:, None]).astype(dtypes[name])
    return out
