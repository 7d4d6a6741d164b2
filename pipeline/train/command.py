"""`graphmint train-check` in its two forms: one model from the command line (REF --input ... --target
...), or the models of a config that have a `[models.train]` recipe."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from graphmint.pipeline.errors import SpecError, UsageError
from graphmint.pipeline.reports import write_text_atomic
from graphmint.pipeline.spec.config import load_config, train_tables, twin_tables
from graphmint.pipeline.spec.inputs import GridPoint, make_inputs
from graphmint.pipeline.spec.specs import ModelSpec, make_model_spec, parse_range
from graphmint.pipeline.train.check import TrainResult, train_check
from graphmint.pipeline.train.parity import PairResult, parity_job
from graphmint.pipeline.train.recipe import Recipe, batches, make_recipe
from graphmint.validators.children import ChildError, default_pool

__all__ = [
    "ParityOptions",
    "TrainOptions",
    "parity_command",
    "plan_parity",
    "plan_train_check",
    "train_check_command",
    "write_parity_report",
]


@dataclass(frozen=True)
class TrainOptions:
    """What `graphmint train-check` checks: one model (`config` a module:callable, with its inputs,
    dims, ranges, target and recipe here) or a config's models with recipes, and how."""

    #: module:callable of one model, or a config whose models have [models.train] recipes
    config: str = "graphmint.toml"
    #: with a config: the models to check (None: every one with a recipe)
    models: tuple[str, ...] | None = None
    inputs: tuple[str, ...] = ()
    dims: tuple[str, ...] = ()
    #: the integer inputs' and the target's value ranges
    ranges: tuple[str, ...] = ()
    target: str | None = None
    loss: str | None = None
    optimizer: str | None = None
    lr: float | None = None
    epsilon: float | None = None
    #: training steps (None: 20 with a reference, or the recipe's)
    steps: int | None = None
    seed: int = 0
    name: str | None = None
    #: compiled forms to check (None: every one)
    forms: tuple[str, ...] | None = None
    timeout_s: float | None = 300.0


@dataclass(frozen=True)
class ParityOptions:
    """What `graphmint parity` checks: the [[twins]] pairs of `config` (or those `pairs` names)."""

    config: Path = Path("graphmint.toml")
    pairs: tuple[str, ...] | None = None
    #: training steps (None: the recipe's)
    steps: int | None = None
    timeout_s: float | None = 300.0


def _from_command_line(options: TrainOptions) -> list[tuple[ModelSpec, Recipe]]:
    if not options.target:
        raise UsageError(
            f"train-check {options.config}: give the training target, e.g. --target y:int64[batch]"
        )
    target = options.target.partition(":")[0]
    target_ranges = [r for r in options.ranges if parse_range(r).name == target]
    name = options.name or options.config.partition(":")[2].split(".")[-1] or "model"
    spec = make_model_spec(
        name=name,
        ref=options.config,
        inputs=options.inputs,
        dims=options.dims,
        ranges=[r for r in options.ranges if r not in target_ranges],
        seed=options.seed,
    )
    recipe = make_recipe(
        options.target,
        target_ranges[-1] if target_ranges else None,
        options.loss or "cross-entropy",
        options.optimizer or "adam",
        0.01 if options.lr is None else options.lr,
        options.steps or 20,
        options.epsilon,
    )
    return [(spec, recipe)]


def _from_config(options: TrainOptions) -> list[tuple[ModelSpec, Recipe]]:
    path = Path(options.config)
    specs = {s.name: s for s in load_config(path)}
    tables = train_tables(path)
    names = list(options.models) if options.models else [n for n in specs if n in tables]
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise UsageError(f"unknown model(s) {', '.join(unknown)}; the config has: {', '.join(sorted(specs))}")
    untrained = [n for n in names if n not in tables]
    if untrained:
        raise UsageError(
            f"model(s) {', '.join(untrained)} of {path} have no [models.train] recipe: add one "
            "(target, loss, optimizer, lr, steps)"
        )
    if not names:
        raise UsageError(f"{path}: no model has a [models.train] recipe")
    pairs = []
    for name in names:
        table = dict(tables[name])
        if options.steps:
            table["steps"] = options.steps
        try:
            pairs.append((specs[name], make_recipe(**table)))
        except SpecError as exc:
            raise SpecError(f"{path}: model {name!r}: [models.train]: {exc}") from None
    return pairs


#: the flags that describe one model given as module:callable, and the option each sets
_REF_ONLY = {
    "input": "inputs",
    "dim": "dims",
    "range": "ranges",
    "target": "target",
    "loss": "loss",
    "optimizer": "optimizer",
    "lr": "lr",
    "epsilon": "epsilon",
    "name": "name",
}


def plan_train_check(options: TrainOptions) -> list[tuple[ModelSpec, Recipe]]:
    """The models and recipes the options name; UsageError (exit 2) before anything runs."""
    is_ref = ":" in options.config and not Path(options.config).exists()
    if is_ref and options.models:
        raise UsageError(
            f"--models picks models of a config; {options.config} is one model (module:callable)"
        )
    given = [
        f"--{flag}" for flag, field in _REF_ONLY.items() if getattr(options, field) not in (None, (), "")
    ]
    if not is_ref and given:
        raise UsageError(
            f"{', '.join(given)} describe one model given as module:callable; {options.config} is a config: "
            "put the recipe in its [models.train] tables"
        )
    plan = _from_command_line(options) if is_ref else _from_config(options)
    for spec, recipe in plan:
        if not spec.inputs:
            raise SpecError(
                f"model {spec.name!r}: train-check needs its inputs declared (--input, or inputs = [...])"
            )
        batches(spec, recipe)  # a target that does not fit the inputs: one line before anything runs
    return plan


def train_check_command(
    plan: list[tuple[ModelSpec, Recipe]], options: TrainOptions, echo: Callable[[str], None]
) -> list[TrainResult]:
    """Each planned model's training step checked in every form (or those `options.forms` names)."""
    return [train_check(spec, recipe, options.forms, options.timeout_s, echo) for spec, recipe in plan]


def plan_parity(options: ParityOptions) -> list[tuple[ModelSpec, ModelSpec, Recipe]]:
    """Every [[twins]] pair of the config (or those `options.pairs` names), with its recipe."""
    path = Path(options.config)
    specs = {s.name: s for s in load_config(path)}
    tables = train_tables(path)
    twins = twin_tables(path)
    if not twins:
        raise UsageError(f"{path} pairs no twins: add [[twins]] tables (torch = ..., keras = ...)")
    unknown = [p for p in options.pairs or () if not any(p in (t["torch"], t["keras"]) for t in twins)]
    if unknown:
        raise UsageError(f"no [[twins]] pair of {path} names {', '.join(unknown)}")
    plan = []
    for twin in twins:
        if options.pairs and not {twin["torch"], twin["keras"]} & set(options.pairs):
            continue
        torch_spec, keras_spec = specs[twin["torch"]], specs[twin["keras"]]
        if twin["ranges"]:
            torch_spec = make_model_spec(
                name=torch_spec.name,
                ref=torch_spec.ref,
                inputs=torch_spec.inputs,
                dims=[f"{d}={r.min}..{r.max}@{r.example}" for d, r in torch_spec.dims.items()],
                ranges=twin["ranges"],
                seed=torch_spec.seed,
            )
        table = tables.get(torch_spec.name)
        if table is None:
            raise UsageError(
                f"{path}: twin {torch_spec.name} has no [models.train] recipe to train the pair with"
            )
        plan.append(
            (torch_spec, keras_spec, make_recipe(**{**table, "steps": options.steps or table["steps"]}))
        )
    return plan


def parity_command(
    plan: list[tuple[ModelSpec, ModelSpec, Recipe]], options: ParityOptions, echo: Callable[[str], None]
) -> list[PairResult]:
    """Each pair checked in a child process of its own (pipeline.train.parity)."""
    results = []
    for torch_spec, keras_spec, recipe in plan:
        stream = batches(torch_spec, recipe)
        point = GridPoint("example", {d: r.example for d, r in torch_spec.dims.items()})
        feeds = make_inputs(torch_spec, point, 0)
        job = (torch_spec.ref, keras_spec.ref, torch_spec.seed, feeds, stream, recipe)
        try:
            result: PairResult = default_pool().call(
                parity_job, *job, name="parity", timeout_s=options.timeout_s
            )
        except ChildError as exc:
            result = PairResult(torch_spec.ref, keras_spec.ref, ok=False, problems=[exc.detail])
        result.torch, result.keras = torch_spec.name, keras_spec.name
        losses = result.loss_error
        echo(
            f"{torch_spec.name} ↔ {keras_spec.name}: {'ok' if result.ok else 'DIFFER'}; max abs eager "
            f"{_fmt(result.eager_error)}, ONNX {_fmt(result.onnx_error)}; |loss difference| at step 1 "
            f"{_fmt(losses[0] if losses else None)}, at step {len(losses)} "
            f"{_fmt(losses[-1] if losses else None)} "
            f"({result.seconds:.1f}s)"
        )
        for problem in result.problems:
            echo(f"  {problem}")
        results.append(result)
    return results


def write_parity_report(results: list[PairResult], folder: Path) -> Path:
    data = {"ok": all(r.ok for r in results), "pairs": [r.to_json() for r in results]}
    return write_text_atomic(folder / "parity.json", json.dumps(data, indent=2) + "\n")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2e}"
