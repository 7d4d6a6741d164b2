"""What a request to the inference server may hold, checked before anything is decoded.

`Signature.check` takes a request's inputs as they claim to be (`TensorClaim`: name, shape, datatype,
JSON values or a count of binary bytes) and checks names, datatypes, shapes within the model's dim
ranges, sizes and values before any array is allocated; one that does not fit is a `RequestRejected`,
which the server answers with 400 and this one line.
"""

from __future__ import annotations

import collections
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphmint.pipeline.publish.manifest import DimEntry, TensorEntry
from graphmint.pipeline.serving.triton import TRITON_TYPES

__all__ = ["MAX_RANK", "V2_DATATYPES", "RequestRejected", "Signature", "TensorClaim", "binary_claims"]

#: the most dims a request's tensor may claim, whatever the model declares
MAX_RANK = 16
#: graphmint dtype -> KServe v2 datatype (FP32, INT64...)
V2_DATATYPES = {dtype: name.removeprefix("TYPE_") for dtype, name in TRITON_TYPES.items()}
#: numpy kinds of JSON values a tensor of each kind accepts (whole numbers are fine in a float tensor)
_VALUE_KINDS = {"f": "fiu", "i": "iu", "u": "iu", "b": "b"}


class RequestRejected(ValueError):
    """A request that does not fit its model's signature: the server answers 400 with this message."""


@dataclass(frozen=True)
class TensorClaim:
    """One input of a request as sent, before anything is decoded: what it claims and what it carries."""

    name: str
    shape: Any
    datatype: Any
    #: the JSON values; None when the tensor's bytes follow the JSON part of the body (binary data)
    data: Any = None
    #: the number of those bytes (`binary_data_size`)
    nbytes: int | None = None


@dataclass(frozen=True)
class Signature:
    """What one model takes, as the bundle's MANIFEST.json says, and how much a request may hold."""

    model: str
    inputs: tuple[TensorEntry, ...]
    dims: Mapping[str, DimEntry]
    max_bytes: int

    def check(self, claims: Sequence[TensorClaim]) -> dict[str, np.ndarray | None]:
        """Check a request's inputs before anything is allocated for them; return the JSON ones decoded
        (None for binary ones). Raises `RequestRejected` naming every input that does not fit."""
        expected = [spec.name for spec in self.inputs]
        counts = collections.Counter(c.name for c in claims)
        wrong = [f"input {n!r} is missing" for n in expected if n not in counts]
        wrong += [f"input {n!r} is given {k} times" for n, k in counts.items() if k > 1 and n in expected]
        wrong += [f"it has no input {n!r}" for n in [n for n in counts if n not in expected][:5]]
        if wrong:
            raise RequestRejected(f"model {self.model} takes inputs {expected}: {'; '.join(wrong)}")
        claimed = {c.name: c for c in claims}
        sizes: dict[str, tuple[int, str]] = {}  # dynamic dim -> (its size, the input that set it)
        total = 0
        decoded: dict[str, np.ndarray | None] = {}
        problems = []
        for spec in self.inputs:
            claim = claimed[spec.name]
            try:
                shape = self._shape(spec, claim, sizes)
                dtype = np.dtype(spec.dtype)
                nbytes = math.prod(shape) * dtype.itemsize
                total += nbytes
                if total > self.max_bytes:
                    raise RequestRejected(
                        f"input {claim.name!r} of shape {list(shape)} needs {nbytes} bytes ({total} for "
                        f"the request so far); this server takes at most {self.max_bytes} bytes a "
                        "request (--max-request-mb)"
                    )
                if claim.data is not None:
                    decoded[claim.name] = _decode(claim.name, claim.data, shape, dtype)
                elif claim.nbytes is None:
                    raise RequestRejected(f"input {claim.name!r} has no data")
                elif claim.nbytes != nbytes:
                    raise RequestRejected(
                        f"input {claim.name!r} has {claim.nbytes} bytes of binary data; shape "
                        f"{list(shape)} of {V2_DATATYPES[spec.dtype]} needs {nbytes}"
                    )
                else:
                    decoded[claim.name] = None
            except RequestRejected as exc:
                problems.append(str(exc))
        if problems:
            raise RequestRejected("; ".join(problems))
        return decoded

    def _shape(
        self, spec: TensorEntry, claim: TensorClaim, sizes: dict[str, tuple[int, str]]
    ) -> tuple[int, ...]:
        """The claimed shape, once its datatype, rank and every dim fit the declared ones."""
        name, declared = claim.name, spec.shape
        want = V2_DATATYPES[spec.dtype]
        got = claim.datatype.upper() if isinstance(claim.datatype, str) else claim.datatype
        if got != want:
            raise RequestRejected(f"input {name!r} must be {want}, got {claim.datatype!r}")
        shape = claim.shape
        if not isinstance(shape, list):
            raise RequestRejected(f"input {name!r}: shape must be a list of dims, got {shape!r}")
        if len(shape) > MAX_RANK:
            raise RequestRejected(f"input {name!r} claims {len(shape)} dims; a request may have {MAX_RANK}")
        bad = next((i for i, d in enumerate(shape) if type(d) is not int or d < 0), None)
        if bad is not None:
            raise RequestRejected(f"input {name!r}: dim {bad} is {shape[bad]!r}, not a whole number >= 0")
        if len(shape) != len(declared):
            raise RequestRejected(
                f"input {name!r} must have {len(declared)} dims {declared}, got {len(shape)}: {shape}"
            )
        for index, (dim, size) in enumerate(zip(declared, shape, strict=True)):
            if not isinstance(dim, str):
                if size != dim:
                    raise RequestRejected(f"input {name!r}: dim {index} must be {dim}, got {size}")
                continue
            low, high = self.dims[dim].min, self.dims[dim].max
            if not low <= size <= high:
                raise RequestRejected(
                    f"input {name!r}: dim {index} ({dim}) is {size}, outside its range {low}..{high}"
                )
            first, where = sizes.setdefault(dim, (size, name))
            if first != size:
                raise RequestRejected(
                    f"input {name!r}: dim {index} ({dim}) is {size}, but {first} in input {where!r}"
                )
        return tuple(shape)


def _decode(name: str, data: Any, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """JSON values as an array of `dtype` and `shape`, once their count and kind fit."""
    count = math.prod(shape)
    if not isinstance(data, (list, np.ndarray)):
        raise RequestRejected(f"input {name!r}: data must be a list of numbers, got {type(data).__name__}")
    try:
        values = np.asarray(data)
    except ValueError:  # nested lists of different lengths
        raise RequestRejected(f"input {name!r}: data is a ragged nested list") from None
    if values.size != count:
        raise RequestRejected(f"input {name!r} has {values.size} values; shape {list(shape)} needs {count}")
    if values.size and values.dtype.kind not in _VALUE_KINDS[dtype.kind]:
        what = next((repr(v) for v in _misfits(data, dtype.kind)), f"values of type {values.dtype}")
        raise RequestRejected(f"input {name!r} holds {what}, not {dtype} numbers")
    if values.size and dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = values.min(), values.max()
        if low < info.min or high > info.max:
            odd = low if low < info.min else high
            raise RequestRejected(f"input {name!r} holds {odd}, outside {dtype}'s {info.min}..{info.max}")
    with np.errstate(over="ignore"):  # overflow is reported below, as a 400
        array = values.astype(dtype)
    if dtype.kind == "f" and values.dtype.kind == "f":
        overflow = np.isinf(array) & np.isfinite(values)
        if overflow.any():
            raise RequestRejected(f"input {name!r} holds {values[overflow][0]}, beyond {dtype}'s range")
    return array.reshape(shape)


def _misfits(data: Any, kind: str) -> Iterator[Any]:
    """JSON values, in order, that are not numbers of a `kind` tensor (bools only for bool)."""
    for value in data:
        if isinstance(value, list):
            yield from _misfits(value, kind)
        elif kind == "b":
            if not isinstance(value, bool):
                yield value
        elif isinstance(value, bool) or not isinstance(value, (int, float) if kind == "f" else int):
            yield value


def binary_claims(body: bytes, json_length: str) -> list[TensorClaim]:
    """The inputs of a request whose binary data follows its JSON part, read off that JSON part."""
    if not json_length.isdigit() or int(json_length) > len(body):
        raise RequestRejected(
            f"Inference-Header-Content-Length is {json_length!r}; it must be the length of the JSON "
            f"part of the body ({len(body)} bytes in all)"
        )
    start = int(json_length)
    try:
        header = json.loads(body[:start])
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestRejected(f"the JSON part of the request does not parse: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise RequestRejected("the JSON part of the request must be an object with a list of `inputs`")
    claims, end = [], start
    for item in header["inputs"]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise RequestRejected("every input of the request must be an object with a `name`")
        name, shape, datatype = item["name"], item.get("shape"), item.get("datatype")
        if item.get("data") is not None:
            claims.append(TensorClaim(name, shape, datatype, data=item["data"]))
            continue
        parameters = item.get("parameters")
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if type(size) is not int or size < 0:
            raise RequestRejected(f"input {name!r} has neither `data` nor a `binary_data_size`")
        claims.append(TensorClaim(name, shape, datatype, nbytes=size))
        end += size
    if end != len(body):
        raise RequestRejected(
            f"the inputs' binary_data_size add up to {end - start} bytes; the body has "
            f"{len(body) - start} after its JSON part"
        )
    return claims
