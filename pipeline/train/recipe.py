"""A training recipe (loss, optimizer, learning rate, steps, target) and the data stream it trains on.

Every form of the training step sees the same stream: batch k of a seed is the same arrays wherever
it is made (the inputs at the model's example sizes, the target beside them, as the inference grid
makes inputs: floats normal, integers in their range).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from graphmint.pipeline.errors import SpecError
from graphmint.pipeline.spec.inputs import GridPoint, make_inputs
from graphmint.pipeline.spec.specs import InputSpec, ModelSpec, parse_input_spec, parse_range

__all__ = ["LOSSES", "OPTIMIZERS", "Batch", "Recipe", "batches", "make_recipe"]

LOSSES = ("cross-entropy", "mse")
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class Recipe:
    """How a model is trained: the same in every form of its step."""

    target: InputSpec
    #: integer targets' value range, inclusive (class ids): (low, high)
    target_range: tuple[int, int] | None = None
    loss: str = "cross-entropy"
    optimizer: str = "adam"
    lr: float = 0.01
    steps: int = 20
    #: Adam's epsilon; None: each framework's own default (1e-8 in torch, 1e-7 in Keras)
    epsilon: float | None = None
    #: compiled forms known to part from eager, and why (reported as skipped, with what was seen)
    known_failures: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "target": str(self.target),
            "target_range": list(self.target_range) if self.target_range else None,
            "loss": self.loss,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "steps": self.steps,
            "epsilon": self.epsilon,
            "known_failures": dict(self.known_failures),
        }


def make_recipe(
    target: str,
    target_range: str | None = None,
    loss: str = "cross-entropy",
    optimizer: str = "adam",
    lr: float = 0.01,
    steps: int = 20,
    epsilon: float | None = None,
    known_failures: dict[str, str] | None = None,
) -> Recipe:
    """A checked recipe; SpecError (exit 2) naming what is wrong."""
    spec = parse_input_spec(target)
    if loss not in LOSSES:
        raise SpecError(f"loss {loss!r} is not one of {', '.join(LOSSES)}")
    if optimizer not in OPTIMIZERS:
        raise SpecError(f"optimizer {optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    if not (lr > 0 and np.isfinite(lr)):
        raise SpecError(f"learning rate {lr!r} must be a positive number")
    if steps < 1:
        raise SpecError(f"steps {steps!r} must be at least 1")
    integer = spec.dtype.startswith(("int", "uint"))
    if loss == "cross-entropy" and not integer:
        raise SpecError(
            f"target {target!r}: cross-entropy takes class ids: declare an integer target, "
            "e.g. y:int64[batch]"
        )
    if loss == "mse" and integer:
        raise SpecError(f"target {target!r}: mse takes a float target, e.g. y:float32[batch,2]")
    bounds = None
    if target_range is not None:
        vr = parse_range(target_range)
        if vr.name != spec.name:
            raise SpecError(f"target range {target_range!r} names {vr.name!r}, not the target {spec.name!r}")
        bounds = (vr.low, vr.high)
    elif integer:
        raise SpecError(f"target {target!r}: give the class ids' range, e.g. {spec.name}=0..1")
    return Recipe(spec, bounds, loss, optimizer, float(lr), int(steps), epsilon, dict(known_failures or {}))


@dataclass(frozen=True)
class Batch:
    inputs: dict[str, np.ndarray]
    target: np.ndarray


def batches(spec: ModelSpec, recipe: Recipe) -> list[Batch]:
    """The data stream: `recipe.steps` batches at the model's example sizes, from the spec's seed."""
    target = recipe.target
    unknown = [d for d in target.dynamic_dims if d not in spec.dims]
    if unknown:
        raise SpecError(
            f"target {target}: dim {unknown[0]!r} is no dim of the model's inputs "
            f"({', '.join(spec.dims) or 'none'}): use theirs or a fixed size"
        )
    ranges = dict(spec.ranges)
    if recipe.target_range is not None:
        ranges[target.name] = parse_range(f"{target.name}={recipe.target_range[0]}..{recipe.target_range[1]}")
    with_target = replace(spec, inputs=(*spec.inputs, target), ranges=ranges)
    point = GridPoint("example", {d: r.example for d, r in spec.dims.items()})
    stream = []
    for step in range(recipe.steps):
        arrays = make_inputs(with_target, point, 1000 + step)
        stream.append(Batch({i.name: arrays[i.name] for i in spec.inputs}, arrays[target.name]))
    return stream
