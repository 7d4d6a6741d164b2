"""`graphmint train-check` in its two forms: one model from the command line (REF --input ... --target
...), or the models of a config that have a `[models.train]` recipe."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
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
    "parity_command",
    "plan_parity",
    "plan_train_check",
    "train_check_command",
    "write_parity_report",
]


def _from_command_line(args: argparse.Namespace) -> list[tuple[ModelSpec, Recipe]]:
    if not args.target:
        raise UsageError(f"train-check {args.config}: give the training target, e.g. --target y:int64[batch]")
    target = args.target.partition(":")[0]
    target_ranges = [r for r in args.range if parse_range(r).name == target]
    name = args.name or args.config.partition(":")[2].split(".")[-1] or "model"
    spec = make_model_spec(
        name=name,
        ref=args.config,
        inputs=args.input,
        dims=args.dim,
        ranges=[r for r in args.range if r not in target_ranges],
        seed=args.seed,
    )
    recipe = make_recipe(
        args.target,
        target_ranges[-1] if target_ranges else None,
        args.loss or "cross-entropy",
        args.optimizer or "adam",
        0.01 if args.lr is None else args.lr,
        args.steps or 20,
        args.epsilon,
    )
    return [(spec, recipe)]


def _from_config(args: argparse.Namespace) -> list[tuple[ModelSpec, Recipe]]:
    path = Path(args.config)
    specs = {s.name: s for s in load_config(path)}
    tables = train_tables(path)
    names = list(args.models) if args.models else [n for n in specs if n in tables]
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
        if args.steps:
            table["steps"] = args.steps
        try:
            pairs.append((specs[name], make_recipe(**table)))
        except SpecError as exc:
            raise SpecError(f"{path}: model {name!r}: [models.train]: {exc}") from None
    return pairs


_REF_ONLY = ("input", "dim", "range", "target", "loss", "optimizer", "lr", "epsilon", "name")


def plan_train_check(args: argparse.Namespace) -> list[tuple[ModelSpec, Recipe]]:
    """The models and recipes the arguments name; UsageError (exit 2) before anything runs."""
    is_ref = ":" in args.config and not Path(args.config).exists()
    if is_ref and args.models:
        raise UsageError(f"--models picks models of a config; {args.config} is one model (module:callable)")
    given = [f"--{flag}" for flag in _REF_ONLY if getattr(args, flag) not in (None, [], "")]
    if not is_ref and given:
        raise UsageError(
            f"{', '.join(given)} describe one model given as module:callable; {args.config} is a config: "
            "put the recipe in its [models.train] tables"
        )
    plan = _from_command_line(args) if is_ref else _from_config(args)
    for spec, recipe in plan:
        if not spec.inputs:
            raise SpecError(
                f"model {spec.name!r}: train-check needs its inputs declared (--input, or inputs = [...])"
            )
        batches(spec, recipe)  # a target that does not fit the inputs: one line before anything runs
    return plan


def train_check_command(
    plan: list[tuple[ModelSpec, Recipe]], args: argparse.Namespace, echo: Callable[[str], None]
) -> list[TrainResult]:
    """Each planned model's training step checked in every form (or those --forms names)."""
    return [train_check(spec, recipe, args.forms, args.timeout, echo) for spec, recipe in plan]


def plan_parity(args: argparse.Namespace) -> list[tuple[ModelSpec, ModelSpec, Recipe]]:
    """Every [[twins]] pair of the config (or those --pairs names), with the recipe it trains with."""
    path = Path(args.config)
    specs = {s.name: s for s in load_config(path)}
    tables = train_tables(path)
    twins = twin_tables(path)
    if not twins:
        raise UsageError(f"{path} pairs no twins: add [[twins]] tables (torch = ..., keras = ...)")
    unknown = [p for p in args.pairs or () if not any(p in (t["torch"], t["keras"]) for t in twins)]
    if unknown:
        raise UsageError(f"no [[twins]] pair of {path} names {', '.join(unknown)}")
    plan = []
    for twin in twins:
        if args.pairs and not {twin["torch"], twin["keras"]} & set(args.pairs):
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
        plan.append((torch_spec, keras_spec, make_recipe(**{**table, "steps": args.steps or table["steps"]})))
    return plan


def parity_command(
    plan: list[tuple[ModelSpec, ModelSpec, Recipe]], args: argparse.Namespace, echo: Callable[[str], None]
) -> list[PairResult]:
    """Each pair checked in a child process of its own (pipeline.train.parity)."""
    results = []
    for torch_spec, keras_spec, recipe in plan:
        stream = batches(torch_spec, recipe)
        point = GridPoint("example", {d: r.example for d, r in torch_spec.dims.items()})
        feeds = make_inputs(torch_spec, point, 0)
        job = (torch_spec.ref, keras_spec.ref, torch_spec.seed, feeds, stream, recipe)
        try:
            result: PairResult = default_pool().call(parity_job, *job, name="parity", timeout_s=args.timeout)
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
