"""Input specs (`x:float32[batch,10]`), dimension ranges (`batch=1..64`), value ranges and model specs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from graphmint.models.frameworks import DTYPES
from graphmint.pipeline.errors import SpecError
from graphmint.pipeline.spec.sources import ModelRef
from graphmint.validators.tolerance import TolerancePolicy

__all__ = [
    "DTYPES",
    "DimRange",
    "InputSpec",
    "ModelSpec",
    "ValueRange",
    "check_model_name",
    "make_model_spec",
    "parse_dim",
    "parse_input_spec",
    "parse_range",
]

DEFAULT_DIM_MIN = 1
DEFAULT_DIM_MAX = 64
DEFAULT_INT_RANGE = (0, 9)

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
#: a model's name is its folder's name under --out: one plain path component
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
#: names of what graphmint itself writes beside the model folders (the serving bundle's default
#: folder, the reports and their folders): a model with one of these names would replace it or be
#: replaced by it
RESERVED_NAMES = frozenset(
    {
        "serving",
        "plots",
        "logs",
        "report.json",
        "report.md",
        "junit.xml",
        "bench.json",
        "bench.md",
        "shard.json",
    }
)
#: seeds every framework accepts (numpy, torch, TensorFlow)
MAX_SEED = 2**32 - 1
_INPUT_RE = re.compile(rf"^\s*({_NAME})\s*:\s*([a-z0-9]+)\s*\[(.*)\]\s*$")
_RANGE_RE = re.compile(rf"^\s*({_NAME})\s*=\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*(?:@\s*(\d+))?\s*$")


@dataclass(frozen=True)
class InputSpec:
    """One model input: a name, a dtype and dims that are fixed sizes (int) or dynamic names (str)."""

    name: str
    dtype: str
    dims: tuple[int | str, ...]

    @property
    def dynamic_dims(self) -> tuple[str, ...]:
        return tuple(d for d in self.dims if isinstance(d, str))

    def __str__(self) -> str:
        return f"{self.name}:{self.dtype}[{','.join(str(d) for d in self.dims)}]"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.dims)}


@dataclass(frozen=True)
class DimRange:
    """Inclusive range of a dynamic dimension and the size used to trace/export (`example`)."""

    name: str
    min: int
    max: int
    example: int

    def __str__(self) -> str:
        return f"{self.name}={self.min}..{self.max}@{self.example}"


@dataclass(frozen=True)
class ValueRange:
    """Inclusive range of the values generated for an integer input."""

    name: str
    low: int
    high: int


def parse_input_spec(text: str) -> InputSpec:
    """Parse `name:dtype[d0,d1,...]`; an integer is a fixed size, a name a dynamic dimension."""
    match = _INPUT_RE.match(text)
    if not match:
        raise SpecError(
            f"input spec {text!r} does not parse: write it as name:dtype[d0,d1,...], e.g. x:float32[batch,10]"
        )
    name, dtype, body = match.groups()
    if dtype not in DTYPES:
        raise SpecError(f"input spec {text!r}: unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    dims: list[int | str] = []
    for raw in (part.strip() for part in body.split(",")) if body.strip() else ():
        if re.fullmatch(r"\d+", raw):
            if int(raw) < 1:
                raise SpecError(f"input spec {text!r}: fixed dimension sizes must be >= 1")
            dims.append(int(raw))
        elif re.fullmatch(_NAME, raw):
            dims.append(raw)
        else:
            raise SpecError(
                f"input spec {text!r}: dimension {raw!r} is neither a size nor a name (e.g. batch)"
            )
    return InputSpec(name=name, dtype=dtype, dims=tuple(dims))


def _parse_pair(text: str, what: str, example: str) -> tuple[str, int, int, int | None]:
    match = _RANGE_RE.match(text)
    if not match:
        raise SpecError(f"{what} {text!r} does not parse: write it as {example}")
    name, low, high, at = match.groups()
    if int(low) > int(high):
        raise SpecError(f"{what} {text!r}: the lower bound is above the upper bound")
    return name, int(low), int(high), None if at is None else int(at)


def parse_dim(text: str) -> tuple[str, int, int, int | None]:
    """Parse `name=min..max` or `name=min..max@example` (bounds inclusive)."""
    name, low, high, example = _parse_pair(text, "dimension range", "batch=1..64 (or batch=1..64@8)")
    if low < 1:
        raise SpecError(f"dimension range {text!r}: sizes start at 1")
    if example is not None and not low <= example <= high:
        raise SpecError(f"dimension range {text!r}: the example size {example} is outside {low}..{high}")
    return name, low, high, example


def parse_range(text: str) -> ValueRange:
    """Parse `name=low..high` (both inclusive) for an integer input's values."""
    name, low, high, at = _parse_pair(text, "value range", "ids=0..999")
    if at is not None:
        raise SpecError(f"value range {text!r}: '@' only applies to dimension ranges")
    return ValueRange(name=name, low=low, high=high)


@dataclass(frozen=True)
class ModelSpec:
    """Everything graphmint needs to build, export and check one model."""

    name: str
    ref: str
    inputs: tuple[InputSpec, ...]
    dims: Mapping[str, DimRange]
    ranges: Mapping[str, ValueRange] = field(default_factory=dict)
    seed: int = 0
    routes: tuple[str, ...] | None = None
    tolerances: TolerancePolicy = field(default_factory=TolerancePolicy)
    known_failures: Mapping[str, str] = field(default_factory=dict)
    #: `module:callable` making inputs that need structure (masks, lengths); see pipeline.inputs
    generator: str | None = None
    #: --dim / --range texts kept, unchecked, until inputs read off the model let them be checked
    deferred: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    #: a folder of the user's own samples (.npz, test_data_set_N), checked beside the grid
    data: str | None = None
    #: the callable's keyword arguments (--arg, `args`), a weights file loaded into the built model
    #: (--weights), the module registering a .keras file's classes (--custom-objects), and whether
    #: what runs code when loaded may be loaded (--trust): see pipeline.spec.sources
    args: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None
    custom_objects: str | None = None
    trust: bool = False

    @property
    def model_ref(self) -> ModelRef:
        """What builds the model, as every process that builds it is handed it."""
        return ModelRef(self.ref, dict(self.args), self.weights, self.custom_objects, self.trust)

    def example_shape(self, spec: InputSpec) -> tuple[int, ...]:
        return self.shape_at(spec, {})

    def shape_at(self, spec: InputSpec, sizes: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(d if isinstance(d, int) else sizes.get(d, self.dims[d].example) for d in spec.dims)

    def value_range(self, name: str) -> tuple[int, int]:
        vr = self.ranges.get(name)
        return (vr.low, vr.high) if vr else DEFAULT_INT_RANGE

    def with_inputs(
        self,
        inputs: Iterable[str | InputSpec],
        dims: Iterable[str] = (),
        ranges: Iterable[str] = (),
        generator: str | None = None,
    ) -> ModelSpec:
        """This spec with `inputs` (read off the built model where it declared none), its deferred
        --dim / --range texts checked against them: the spec is not parsed again. `dims`, `ranges`
        and `generator` are what the model itself says of them; the user's own come after and win."""
        parsed = _parse_inputs(self.name, inputs)
        user_dims, user_ranges = self.deferred
        bound_dims, bound_ranges = _bind(parsed, (*dims, *user_dims), (*ranges, *user_ranges))
        return replace(
            self,
            inputs=parsed,
            dims=bound_dims,
            ranges=bound_ranges,
            deferred=((), ()),
            generator=self.generator or generator,
        )


def _pick_examples(
    names: Iterable[str], bounds: Mapping[str, tuple[int, int, int | None]], taken: set[int]
) -> dict[str, int]:
    """Give every dynamic dim an example size: the one asked for, else the smallest free size >= 2.

    Distinct sizes keep exporters from unifying two dims that merely happen to be equal, and sizes
    above 1 keep tracers from specializing on 0/1.
    """
    picked: dict[str, int] = {}
    for name in names:
        low, high, example = bounds[name]
        if example is None:
            example = max(low, 2)
            while example in taken and example < high:
                example += 1
            example = min(example, high)
        picked[name] = example
        taken.add(example)
    return picked


def check_model_name(name: str) -> str:
    """The name, if it can be a folder under --out; else SpecError saying why and what to do."""
    if not isinstance(name, str) or not _MODEL_NAME.match(name) or name.endswith("."):
        raise SpecError(
            f"model name {name!r} cannot be a folder name under --out: use letters, digits and _ . + -, "
            "starting with a letter or digit, at most 128 characters (e.g. --name my_model)"
        )
    if name.lower() in RESERVED_NAMES:
        raise SpecError(
            f"model name {name!r} is reserved for what graphmint writes beside the model folders "
            f"({', '.join(sorted(RESERVED_NAMES))}): choose another name"
        )
    return name


def check_seed(seed: object) -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise SpecError(f"seed {seed!r} is not an integer in 0..{MAX_SEED}: pass e.g. --seed 0")
    return seed


def make_model_spec(
    *,
    name: str,
    ref: str,
    inputs: Iterable[str | InputSpec],
    dims: Iterable[str] = (),
    ranges: Iterable[str] = (),
    seed: int = 0,
    routes: Iterable[str] | None = None,
    tolerances: TolerancePolicy | None = None,
    known_failures: Mapping[str, str] | None = None,
    generator: str | None = None,
    data: str | None = None,
    args: Mapping[str, Any] | None = None,
    weights: str | None = None,
    custom_objects: str | None = None,
    trust: bool = False,
) -> ModelSpec:
    """Parse and cross-check the pieces of a model spec (CLI flags or a config entry).

    `inputs` may be empty: the pipeline then asks the framework to read them off the built model.
    """
    check_model_name(name)
    check_seed(seed)
    spec = ModelSpec(
        name=name,
        ref=ref,
        inputs=(),
        dims={},
        seed=seed,
        routes=None if routes is None else tuple(routes),
        tolerances=tolerances or TolerancePolicy(),
        known_failures=dict(known_failures or {}),
        generator=generator,
        deferred=(tuple(dims), tuple(ranges)),
        data=data,
        args=dict(args or {}),
        weights=weights,
        custom_objects=custom_objects,
        trust=trust,
    )
    given = tuple(inputs)
    if not given:
        for text in spec.deferred[0]:
            parse_dim(text)
        for text in spec.deferred[1]:
            parse_range(text)
        return spec
    return spec.with_inputs(given)


def _parse_inputs(name: str, inputs: Iterable[str | InputSpec]) -> tuple[InputSpec, ...]:
    parsed = tuple(i if isinstance(i, InputSpec) else parse_input_spec(i) for i in inputs)
    seen: set[str] = set()
    for spec in parsed:
        if spec.name in seen:
            raise SpecError(f"model {name!r}: input {spec.name!r} is declared twice")
        seen.add(spec.name)
    return parsed


def _bind(
    parsed: tuple[InputSpec, ...], dims: Iterable[str], ranges: Iterable[str]
) -> tuple[dict[str, DimRange], dict[str, ValueRange]]:
    """The dynamic dims' ranges and the integer inputs' value ranges: --dim / --range texts checked
    against the inputs, every dim not named given the default range."""
    dynamic = list(dict.fromkeys(d for spec in parsed for d in spec.dynamic_dims))
    bounds: dict[str, tuple[int, int, int | None]] = {
        d: (DEFAULT_DIM_MIN, DEFAULT_DIM_MAX, None) for d in dynamic
    }
    for text in dims:
        dim, low, high, example = parse_dim(text)
        if dim not in bounds:
            known = ", ".join(dynamic) or "none"
            raise SpecError(
                f"dimension range {text!r} names {dim!r}, which no input uses (dynamic dims: {known})"
            )
        bounds[dim] = (low, high, example)
    fixed = {d for spec in parsed for d in spec.dims if isinstance(d, int)}
    examples = _pick_examples(dynamic, bounds, set(fixed))
    dim_ranges = {d: DimRange(d, bounds[d][0], bounds[d][1], examples[d]) for d in dynamic}
    value_ranges: dict[str, ValueRange] = {}
    by_name = {spec.name: spec for spec in parsed}
    for text in ranges:
        vr = parse_range(text)
        target = by_name.get(vr.name)
        if target is None:
            raise SpecError(f"value range {text!r} names {vr.name!r}, which is not an input")
        if not target.dtype.startswith(("int", "uint")):
            raise SpecError(f"value range {text!r}: input {vr.name!r} is {target.dtype}, not an integer")
        value_ranges[vr.name] = vr
    return dim_ranges, value_ranges
