"""The eager reference: the model's outputs on its seeded grid, a float64 copy's outputs on the same
inputs (the yardstick of the noise rule), and a probe for outputs that compare nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.exporters.base import first_line
from graphmint.models.frameworks import Framework
from graphmint.pipeline.errors import InputMismatchError, ModelLoadError, SpecError, UsageError
from graphmint.pipeline.interrupts import signalled, time_limit
from graphmint.pipeline.spec.data import Sample, read_samples
from graphmint.pipeline.spec.inputs import GridPoint, check_grid_budget, make_inputs, shape_grid
from graphmint.pipeline.spec.loader import build_model
from graphmint.pipeline.spec.sources import Inferred, source_of
from graphmint.pipeline.spec.specs import ModelSpec
from graphmint.validators.check import Case
from graphmint.validators.compare import compare_output, rms, rmse

__all__ = [
    "EagerRun",
    "cases_of",
    "check_builds_agree",
    "eager_reference",
    "eager_run",
    "output_specs",
    "samples",
    "vacuous_outputs",
    "with_inputs",
]

#: an output whose RMS change between two different inputs is below this fraction of its RMS is
#: (nearly) constant: any artifact that returns a constant there passes its check
_CONSTANT = 1e-4
#: an output that changes by more than this fraction of its RMS between two calls on the same inputs
#: comes from random draws (float32's own run-to-run differences, where there are any, are far below)
_RANDOM = 1e-3


@dataclass
class EagerRun:
    """What the eager model computed: per grid point its outputs, and a float64 copy's (empty with the
    reason where no copy could be made or run); at the example point, the outputs on other inputs."""

    spec: ModelSpec
    outputs: list[dict[str, np.ndarray]]
    float64: list[dict[str, np.ndarray]] = field(default_factory=list)
    float64_reason: str = ""
    alternate: dict[str, np.ndarray] = field(default_factory=dict)
    #: sha256 of the built model's weights (weights_digest), where the builder took it
    weights_digest: str = ""

    def noise(self) -> dict[str, float]:
        """Per float output, the eager model's largest error against the float64 copy (RMSE)."""
        floors: dict[str, float] = {}
        for outputs, wide in zip(self.outputs, self.float64, strict=False):
            for name, value in wide.items():
                floors[name] = max(floors.get(name, 0.0), rmse(outputs[name], value))
        return floors


def _call(
    spec: ModelSpec,
    run: Callable[[Any, Mapping[str, np.ndarray]], dict[str, np.ndarray]],
    model: Any,
    feeds: Mapping[str, np.ndarray],
    point: GridPoint,
    first: bool,
    timeout_s: float | None,
) -> dict[str, np.ndarray]:
    """`run(model, feeds)` under `timeout_s`; whatever the model raises (SystemExit included) is an
    InputMismatchError that says which inputs it rejected."""
    try:
        with time_limit(timeout_s):
            return run(model, feeds)
    except BaseException as exc:
        if signalled():
            raise
        shapes = ", ".join(f"{k}{list(v.shape)}:{v.dtype}" for k, v in feeds.items())
        if first:
            raise InputMismatchError(
                f"model {spec.name!r} rejects its declared inputs ({shapes}): {first_line(exc)}; "
                "fix the --input specs to match what the model's forward takes"
            ) from None
        raise InputMismatchError(
            f"model {spec.name!r} fails eagerly at {point.label} ({shapes}): {first_line(exc)}; "
            "narrow that dim's range with --dim NAME=MIN..MAX"
        ) from None


def eager_run(spec: ModelSpec, framework: Framework, model: Any, timeout_s: float | None = None) -> EagerRun:
    """Run the model on every grid point (each call under `timeout_s`), and its float64 copy."""
    check_grid_budget(spec)
    grid = shape_grid(spec)
    feeds = [make_inputs(spec, point, index) for index, point in enumerate(grid)]
    run = EagerRun(spec, [])
    for index, (point, inputs) in enumerate(zip(grid, feeds, strict=True)):
        run.outputs.append(_call(spec, framework.run_eager, model, inputs, point, index == 0, timeout_s))
        if index == 0 and not run.outputs[0]:
            raise UsageError(
                f"model {spec.name!r} returns no output (an empty tuple, list or dict): graphmint compares "
                "outputs, so the forward must return at least one tensor"
            )
    _check_deterministic(spec, framework, model, feeds[0], run.outputs[0], grid[0], timeout_s)
    for sample in samples(spec):  # the user's own, after the grid
        point = GridPoint(sample.label, {**grid[0].sizes, **sample.sizes})
        run.outputs.append(_call(spec, framework.run_eager, model, sample.feeds, point, False, timeout_s))
        feeds.append(sample.feeds)
    # the example point again on inputs of another seed: outputs that do not change are vacuous
    other = make_inputs(spec, grid[0], len(grid))
    run.alternate = _call(spec, framework.run_eager, model, other, grid[0], False, timeout_s)
    try:
        wide_model = framework.float64_copy(model)
        for inputs, outputs in zip(feeds, run.outputs, strict=True):
            with time_limit(timeout_s):
                run.float64.append(_comparable(framework.run_float64(wide_model, inputs), outputs))
    except BaseException as exc:  # the model's own code: whatever it raises, the noise rule steps back
        if signalled():
            raise
        run.float64, run.float64_reason = [], f"no float64 copy of the model runs: {first_line(exc)}"
    return run


def _check_deterministic(
    spec: ModelSpec,
    framework: Framework,
    model: Any,
    feeds: Mapping[str, np.ndarray],
    first: Mapping[str, np.ndarray],
    point: GridPoint,
    timeout_s: float | None,
) -> None:
    """The example again, on the same inputs: a forward that draws random numbers gives other outputs,
    and no artifact can then be compared with it. One line naming the output, exit 2."""
    again = _call(spec, framework.run_eager, model, feeds, point, False, timeout_s)
    for name, value in first.items():
        other = again.get(name)
        if other is None or other.shape != value.shape:
            continue
        if value.dtype.kind in "fc":
            change = rmse(other, value)
            moved = change > _RANDOM * rms(value) or not np.array_equal(
                np.isfinite(other), np.isfinite(value)
            )
            by = f"by {change:.3g} (RMS)"
        else:
            moved, by = not np.array_equal(other, value), f"in {int(np.sum(other != value))} element(s)"
        if moved:
            raise UsageError(
                f"model {spec.name!r} gives other outputs on the same inputs: output {name!r} changed "
                f"{by} between two calls at {point.label}: its forward draws random "
                "numbers (torch.rand, tf.random, a dropout or noise layer left in training mode?); "
                "graphmint can only check a forward that is a function of its inputs"
            )


def weights_digest(framework: Framework, model: Any) -> str:
    """sha256 over the model's weights and buffers in their order (dtypes, shapes, bytes; not their
    names, which Keras numbers by how many layers the process has made before)."""
    digest = hashlib.sha256()
    for value in framework.weights(model).values():
        array = np.ascontiguousarray(value)
        digest.update(f"{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def first_difference(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> str:
    """The first weight (by position, named as in `a`) in which two builds differ, and by how much;
    "" where they are the same."""
    if len(a) != len(b):
        return f"the first build has {len(a)} weights, the second {len(b)}"
    for name, value, other in zip(a, a.values(), b.values(), strict=True):
        if other.shape != value.shape or other.dtype != value.dtype:
            return f"{name!r} is {value.dtype}{list(value.shape)}, then {other.dtype}{list(other.shape)}"
        if not np.array_equal(value, other, equal_nan=value.dtype.kind in "fc"):
            diff = np.abs(value.astype(np.float64) - other.astype(np.float64))
            return f"{name!r} (max abs difference {float(np.nanmax(diff)):.3g})"
    return ""


def check_builds_agree(
    spec: ModelSpec, framework: Framework, model: Any, digest: str, timeout_s: float | None = None
) -> None:
    """The model built here has the weights the eager child's build had (`digest`); where it has not,
    a third build names the first weight that differs: the factory draws from an RNG graphmint does
    not seed, and every route would fail on numbers for it. Exit 2."""
    if not digest or weights_digest(framework, model) == digest:
        return
    _, again = build_model(spec.model_ref, spec.seed, timeout_s)  # a third build, under the factory's bound
    where = first_difference(framework.weights(model), framework.weights(again))
    raise ModelLoadError(
        f"two builds of {spec.ref!r} with seed {spec.seed} give other weights"
        + (f": first {where}" if where else " (each build in a process of its own)")
        + ": the factory draws them from a random generator graphmint does not seed (numpy's "
        "default_rng(), random.Random(), a generator made before the call?); draw from torch's, "
        "numpy's global or Keras's RNG inside the factory, or seed your own generator there"
    )


def _comparable(wide: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The float64 outputs that stand for a float output of the same name and shape."""
    return {
        name: value
        for name, value in wide.items()
        if name in outputs and outputs[name].dtype.kind == "f" and value.shape == outputs[name].shape
    }


def cases_of(spec: ModelSpec, run: EagerRun) -> list[Case]:
    """The grid's cases: the seeded inputs at each point (made again: the same seed gives the same
    arrays), the eager outputs and the float64 outputs."""
    cases = []
    grid = shape_grid(spec)
    for index, point in enumerate(grid):
        wide = run.float64[index] if run.float64 else {}
        feeds = make_inputs(spec, point, index)
        cases.append(Case(point.label, point.sizes, point.varied, feeds, run.outputs[index], wide))
    for index, sample in enumerate(samples(spec), start=len(grid)):
        wide = run.float64[index] if run.float64 else {}
        sizes = {**grid[0].sizes, **sample.sizes}
        cases.append(Case(sample.label, sizes, None, sample.feeds, run.outputs[index], wide))
    return cases


def samples(spec: ModelSpec) -> list[Sample]:
    """The user's own samples (--data), checked against the inputs; [] where there are none."""
    return read_samples(spec, Path(spec.data)) if spec.data and spec.inputs else []


def vacuous_outputs(run: EagerRun, cases: Sequence[Case], judge: Callable[[str, str], Any]) -> dict[str, str]:
    """Outputs whose comparison proves nothing, and why: zero everywhere, or so nearly the same for
    different inputs that a constant would pass its check. `judge(output, dtype)` is its Criterion."""
    found: dict[str, str] = {}
    example = cases[0]
    for name, value in example.expected.items():
        if all(not np.any(c.expected[name]) for c in cases):
            found[name] = "zero on every input"
            continue
        other = run.alternate.get(name)
        if other is None or other.shape != value.shape:
            continue
        floats = value.dtype.kind == "f"
        change = rmse(other, value)
        if floats and change <= _CONSTANT * rms(value):
            found[name] = (
                f"changes by {change / rms(value):.2g} of its RMS between two different inputs: "
                "nearly constant"
                if change
                else "the same for different inputs: constant"
            )
            continue
        criterion = judge(name, str(value.dtype))
        if compare_output(name, other, value, criterion, example.float64.get(name)).passed:
            found[name] = "the output for other inputs passes its check: a constant would too"
    return found


def with_inputs(spec: ModelSpec, framework: Framework, model: Any) -> ModelSpec:
    """The spec itself, or for one that declares no inputs, the spec with inputs the model declares."""
    if spec.inputs:
        return spec
    inferred = source_of(spec.model_ref).infer(spec.model_ref, model)
    if inferred is None and (declared := framework.infer_inputs(model)):
        inferred = Inferred(declared)
    if inferred is None:
        raise SpecError(
            f"model {spec.name!r} declares no inputs and its {framework.name} model does not say what it "
            "takes: add --input name:dtype[dims] for each input"
        )
    return spec.with_inputs(inferred.inputs, inferred.dims, inferred.ranges, inferred.generator)


def eager_reference(spec: ModelSpec, timeout_s: float | None = None) -> EagerRun:
    """Build the model and run it on its grid, with the spec it ran (inputs read off the model where
    the spec declares none). What `eager_isolated` runs in a child."""
    framework, model = build_model(spec.model_ref, spec.seed, timeout_s)
    digest = weights_digest(framework, model)  # before any forward (a forward may change buffers)
    run = eager_run(with_inputs(spec, framework, model), framework, model, timeout_s)
    run.weights_digest = digest
    return run


def output_specs(spec: ModelSpec, cases: Sequence[Case]) -> list[dict[str, Any]]:
    """Output names, dtypes and shapes; an axis that follows a dynamic input dim takes its name."""
    outputs = []
    for name, first in cases[0].expected.items():
        shape: list[int | str] = []
        for axis, size in enumerate(first.shape):
            sizes = [c.expected[name].shape[axis] for c in cases]
            if len(set(sizes)) == 1:
                shape.append(size)
                continue
            match = next(
                (d for d in spec.dims if all(c.sizes[d] == s for c, s in zip(cases, sizes, strict=True))),
                None,
            )
            shape.append(match or f"{name}_dim{axis}")
        outputs.append({"name": name, "dtype": str(first.dtype), "shape": shape})
    return outputs
