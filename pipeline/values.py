"""The value types of the command line's flags: each checks its value as it is parsed (a seed in range,
a positive timeout, a port), so a bad one is one line naming the flag, exit 2, before anything is built.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from graphmint.pipeline.run.contexts import DEFAULT_EXPORT_TIMEOUT_S

__all__ = [
    "DEFAULT_EXPORT_TIMEOUT_S",
    "batches",
    "comma_separated",
    "names",
    "port",
    "positive",
    "positive_number",
    "seconds",
    "seed",
    "shard",
    "tolerance",
]


def comma_separated(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def names(text: str) -> tuple[str, ...]:
    names = comma_separated(text)
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names nothing: give comma-separated names")
    return names


def _parse(kind: type[int] | type[float], text: str, what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def seconds(text: str) -> float:
    value = _parse(float, text, "a positive number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def positive(text: str) -> int:
    value = _parse(int, text, "a positive whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(value)


def positive_number(text: str) -> float:
    value = _parse(float, text, "a positive number")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        shard = (0, 0)
    if not 1 <= shard[0] <= shard[1]:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N with 1 <= I <= N (e.g. 1/4)")
    return shard


def batches(text: str) -> tuple[int, ...]:
    parts = comma_separated(text)
    if not parts:
        raise argparse.ArgumentTypeError(f"{text!r} names no batch size: give e.g. 1,8")
    sizes = tuple(positive(p) for p in parts)
    if len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a batch size")
    return sizes


def tolerance(text: str) -> float:
    value = _parse(float, text, "a non-negative number")
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative number")
    return value


def port(text: str) -> int:
    value = _parse(int, text, "a port number (1..65535)")
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1..65535)")
    return value


def seed(text: str) -> int:
    from graphmint.pipeline.spec.specs import MAX_SEED

    value = _parse(int, text, f"a seed in 0..{MAX_SEED}")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed in 0..{MAX_SEED}")
    return value
