"""Read model specs from a TOML config (graphmint.toml describes the built-in zoo).

The file is checked against a schema (pydantic, strict: a seed is an integer, a tolerance a finite
non-negative number, every table holds only the keys it may) before anything is built from it; the
first problem is a ConfigError (exit 2) that names the entry and key at fault.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graphmint.exporters.base import Precision
from graphmint.pipeline.errors import ConfigError, UsageError
from graphmint.pipeline.spec.sources import is_callable_ref
from graphmint.pipeline.spec.specs import MAX_SEED, ModelSpec, make_model_spec
from graphmint.validators.budget import DEFAULT_BUDGETS, BudgetPolicy
from graphmint.validators.tolerance import DEFAULT_TOLERANCES, Rule, Tolerance, TolerancePolicy

__all__ = ["DEFAULT_CONFIG", "load_config"]

DEFAULT_CONFIG = Path("graphmint.toml")

_NonNegative = Annotated[float, Field(ge=0)]
_Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
_Rule = Literal["noise", "scaled", "tolerance"]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class _Tolerance(_Table):
    atol: _NonNegative | None = None
    rtol: _NonNegative | None = None

    def values(self) -> dict[str, float]:
        return {k: float(v) for k, v in (("atol", self.atol), ("rtol", self.rtol)) if v is not None}


class _OutputTolerance(_Tolerance):
    #: classifier logits: the share of rows whose arg-max must agree with eager (gates instead)
    top1: Annotated[float, Field(ge=0, le=1)] | None = None


class _ModelTolerance(_Tolerance):
    routes: dict[str, _Tolerance] = {}
    outputs: dict[str, _OutputTolerance] = {}
    #: the rule that gates (default: "tolerance" where this table sets a tolerance, else "noise")
    rule: _Rule | None = None
    multiplier: Annotated[float, Field(ge=1)] | None = None


class _Budget(_Table):
    """An accuracy budget (validators.budget): any of its keys, the rest from the level below."""

    cosine: Annotated[float, Field(ge=-1, le=1)] | None = None
    snr_db: float | None = None
    max_abs: _NonNegative | None = None
    topk: Annotated[int, Field(ge=1)] | None = None
    topk_agreement: Annotated[float, Field(ge=0, le=1)] | None = None

    def values(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"routes", "outputs"}).items() if v is not None}


class _ModelBudget(_Budget):
    routes: dict[str, _Budget] = {}
    outputs: dict[str, _Budget] = {}


class _Train(_Table):
    """A model's training recipe (graphmint train-check, parity): checked again by make_recipe."""

    target: str
    target_range: str | None = None
    loss: Literal["cross-entropy", "mse"] = "cross-entropy"
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: Annotated[float, Field(gt=0)] = 0.01
    steps: Annotated[int, Field(ge=1)] = 20
    epsilon: Annotated[float, Field(gt=0)] | None = None
    #: compiled forms known to part from eager, and why: reported as skipped with what was observed
    known_failures: dict[str, str] = {}


class _Twin(_Table):
    """A PyTorch model and its Keras twin (graphmint parity), by their names in [[models]]."""

    torch: str
    keras: str
    #: value ranges of the pair's inputs, where the twins are meant to differ outside them
    ranges: list[str] = []


class _Model(_Table):
    name: str
    #: `module:callable`, or a model folder or file relative to the config file
    ref: str
    #: the callable's keyword arguments
    args: dict[str, Any] = {}
    #: a weights file (relative to the config file) loaded strictly into the built model
    weights: str | None = None
    #: the module that registers a .keras file's custom classes
    custom_objects: str | None = None
    #: load what runs code when loaded (a pickle, a Lambda layer, a folder's own code)
    trust: bool = False
    inputs: list[str] = []
    dims: list[str] = []
    ranges: list[str] = []
    seed: _Seed | None = None
    routes: list[str] | None = None
    tolerance: _ModelTolerance = _ModelTolerance()
    #: accuracy budgets of the reduced-precision routes (fp16, int8)
    budget: _ModelBudget = _ModelBudget()
    known_failures: dict[str, str] = {}
    generator: str | None = None
    #: a folder of the model's own samples, relative to the config file
    data: str | None = None
    train: _Train | None = None


class _Defaults(_Table):
    seed: _Seed = 0
    routes: list[str] | None = None
    tolerances: dict[str, _Tolerance] = {}
    rule: _Rule | None = None
    #: per precision ("fp16", "int8"), the default budget
    budgets: dict[Literal["fp16", "int8"], _Budget] = {}


class _Config(_Table):
    defaults: _Defaults = _Defaults()
    models: list[_Model] = Field(min_length=1)
    twins: list[_Twin] = []


def _where(loc: tuple[int | str, ...], data: Any) -> str:
    """models[2] (name 'X').tolerance.atol: the entry by index and name, then the key path."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            parts[-1] += f"[{key}]"
        else:
            parts.append(str(key))
        node = _child(node, key)
        if isinstance(key, int) and isinstance(node, dict) and isinstance(node.get("name"), str):
            parts[-1] += f" ({node['name']!r})"
    return ".".join(parts) or "the top level"


def _child(node: Any, key: int | str) -> Any:
    """node[key] where `node` is a table that holds `key` or a list that holds index `key`, else None."""
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return None


def _table_in(annotation: Any) -> type[BaseModel] | None:
    """The table type an annotation holds: _Model for list[_Model], _Tolerance for dict[str, _Tolerance]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((t for arg in get_args(annotation) if (t := _table_in(arg)) is not None), None)


def _allowed(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the table at `loc` may hold."""
    table: type[BaseModel] = _Config
    for key in loc:
        if isinstance(key, str):
            field = table.model_fields.get(key)
            # a key the user chose (a route, output or dtype name) holds a table of the dict's type
            table = (_table_in(field.annotation) or table) if field else table
    return sorted(table.model_fields)


def _config_error(path: Path, exc: ValidationError, data: Any) -> ConfigError:
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        where = _where(loc[:-1], data)
        return ConfigError(
            f"{path}: {where}: unknown key {loc[-1]!r}; allowed: {', '.join(_allowed(loc[:-1]))}"
        )
    if error["type"] == "missing" and loc == ("models",):
        return ConfigError(f"config {str(path)!r} lists no [[models]]")
    if error["type"] == "missing":
        return ConfigError(f"{path}: {_where(loc[:-1], data)} needs the key {loc[-1]!r}")
    if loc == ("models",) and error["type"] == "too_short":
        return ConfigError(f"config {str(path)!r} lists no [[models]]")
    got = repr(error.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    message = error["msg"].split(" or instance of ")[0].rstrip(".")
    return ConfigError(f"{path}: {_where(loc, data)}: {message} (got {got})")


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config {str(path)!r} not found: pass the path of a graphmint TOML file") from None
    except IsADirectoryError:
        raise ConfigError(
            f"config {str(path)!r} is a folder: pass the path of a graphmint TOML file"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {str(path)!r} is not UTF-8 text: pass a graphmint TOML file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {str(path)!r}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {str(path)!r} is not valid TOML: {exc}") from None


def _rule(name: str | None) -> Rule | None:
    return Rule(name) if name else None


def _validated(path: Path) -> _Config:
    data = _read(path)
    try:
        return _Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(path, exc, data) from None


def _relative_ref(config: Path, ref: str) -> str:
    """A model folder or file, named relative to the config file, as a path from here; a
    `module:callable` as it is."""
    return ref if is_callable_ref(ref) and not (config.parent / ref).exists() else str(config.parent / ref)


def train_tables(path: Path = DEFAULT_CONFIG) -> dict[str, dict[str, Any]]:
    """Each model's [models.train] recipe, by model name (models without one are left out)."""
    return {m.name: m.train.model_dump() for m in _validated(path).models if m.train is not None}


def twin_tables(path: Path = DEFAULT_CONFIG) -> list[dict[str, Any]]:
    """The [[twins]] pairs; ConfigError where one names a model the config does not have."""
    config = _validated(path)
    names = {m.name for m in config.models}
    for index, twin in enumerate(config.twins):
        missing = [n for n in (twin.torch, twin.keras) if n not in names]
        if missing:
            raise ConfigError(
                f"{path}: twins[{index}] names {', '.join(map(repr, missing))}, which no [[models]] has"
            )
    return [t.model_dump() for t in config.twins]


def load_config(path: Path = DEFAULT_CONFIG) -> list[ModelSpec]:
    """Parse every [[models]] entry; raises ConfigError (exit 2) with the entry and key at fault."""
    config = _validated(path)
    dtype_tols = dict(DEFAULT_TOLERANCES)
    for dtype, table in config.defaults.tolerances.items():
        merged = {**dtype_tols.get(dtype, Tolerance(0.0, 0.0)).to_json(), **table.values()}
        dtype_tols[dtype] = Tolerance(**merged)
    budget_defaults = dict(DEFAULT_BUDGETS)
    for precision, budget_table in config.defaults.budgets.items():
        key = Precision(precision)
        budget_defaults[key] = replace(budget_defaults[key], **budget_table.values())
    specs = []
    for entry in config.models:
        tolerance, budget = entry.tolerance, entry.budget
        policy = TolerancePolicy(
            model=tolerance.values(),
            routes={r: t.values() for r, t in tolerance.routes.items()},
            outputs={o: t.values() for o, t in tolerance.outputs.items()},
            defaults=dtype_tols,
            rule=_rule(tolerance.rule or config.defaults.rule),
            multiplier=tolerance.multiplier,
            top1={o: t.top1 for o, t in tolerance.outputs.items() if t.top1 is not None},
            budgets=BudgetPolicy(
                model=budget.values(),
                routes={r: t.values() for r, t in budget.routes.items()},
                outputs={o: t.values() for o, t in budget.outputs.items()},
                defaults=budget_defaults,
            ),
        )
        try:
            specs.append(
                make_model_spec(
                    name=entry.name,
                    ref=_relative_ref(path, entry.ref),
                    inputs=entry.inputs,
                    dims=entry.dims,
                    ranges=entry.ranges,
                    seed=config.defaults.seed if entry.seed is None else entry.seed,
                    routes=entry.routes if entry.routes is not None else config.defaults.routes,
                    tolerances=policy,
                    known_failures=entry.known_failures,
                    generator=entry.generator,
                    data=None if entry.data is None else str(path.parent / entry.data),
                    args=entry.args,
                    weights=None if entry.weights is None else str(path.parent / entry.weights),
                    custom_objects=entry.custom_objects,
                    trust=entry.trust,
                )
            )
        except UsageError as exc:
            raise ConfigError(f"{path}: model {entry.name!r}: {exc}") from None
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: model name(s) {', '.join(duplicates)} appear more than once")
    return specs
