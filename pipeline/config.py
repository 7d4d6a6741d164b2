"""Read model specs from a TOML config (graphmint.toml describes the built-in zoo)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, UsageError
from pipeline.specs import ModelSpec, make_model_spec
from validators.tolerance import DEFAULT_TOLERANCES, Tolerance, TolerancePolicy

__all__ = ["DEFAULT_CONFIG", "load_config"]

DEFAULT_CONFIG = Path("graphmint.toml")
_MODEL_KEYS = {
    "name",
    "ref",
    "inputs",
    "dims",
    "ranges",
    "seed",
    "routes",
    "tolerance",
    "known_failures",
    "generator",
}
_TOL_KEYS = {"atol", "rtol"}


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _tol_values(table: Any, where: str) -> dict[str, float]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table with atol and/or rtol")
    _check_keys(table, _TOL_KEYS, where)
    for key, value in table.items():
        if not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{where}.{key} must be a non-negative number, got {value!r}")
    return {k: float(v) for k, v in table.items()}


def _policy(table: Mapping[str, Any], defaults: Mapping[str, Tolerance], where: str) -> TolerancePolicy:
    _check_keys(table, _TOL_KEYS | {"routes", "outputs"}, where)
    model = _tol_values({k: v for k, v in table.items() if k in _TOL_KEYS}, where)
    routes = {r: _tol_values(t, f"{where}.routes.{r}") for r, t in table.get("routes", {}).items()}
    outputs = {o: _tol_values(t, f"{where}.outputs.{o}") for o, t in table.get("outputs", {}).items()}
    return TolerancePolicy(model=model, routes=routes, outputs=outputs, defaults=dict(defaults))


def _string_list(entry: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key} must be a list of strings")
    return value


def load_config(path: Path = DEFAULT_CONFIG) -> list[ModelSpec]:
    """Parse every [[models]] entry; raises ConfigError (exit 2) with the entry and key at fault."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config {str(path)!r} not found: pass the path of a graphmint TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {str(path)!r} is not valid TOML: {exc}") from None
    _check_keys(data, {"defaults", "models"}, str(path))
    defaults = data.get("defaults", {})
    _check_keys(defaults, {"seed", "routes", "tolerances"}, f"{path}: [defaults]")
    dtype_tols = dict(DEFAULT_TOLERANCES)
    for dtype, table in defaults.get("tolerances", {}).items():
        merged = {**dtype_tols.get(dtype, Tolerance(0.0, 0.0)).to_json(), **_tol_values(table, dtype)}
        dtype_tols[dtype] = Tolerance(**merged)
    models = data.get("models", [])
    if not models:
        raise ConfigError(f"config {str(path)!r} lists no [[models]]")
    specs = []
    for index, entry in enumerate(models):
        where = f"{path}: models[{index}]"
        _check_keys(entry, _MODEL_KEYS, where)
        for key in ("name", "ref"):
            if not isinstance(entry.get(key), str):
                raise ConfigError(f"{where} needs a string {key!r}")
        where = f"{path}: model {entry['name']!r}"
        routes = entry.get("routes", defaults.get("routes"))
        try:
            specs.append(
                make_model_spec(
                    name=entry["name"],
                    ref=entry["ref"],
                    inputs=_string_list(entry, "inputs", where),
                    dims=_string_list(entry, "dims", where),
                    ranges=_string_list(entry, "ranges", where),
                    seed=int(entry.get("seed", defaults.get("seed", 0))),
                    routes=routes,
                    tolerances=_policy(entry.get("tolerance", {}), dtype_tols, f"{where} tolerance"),
                    known_failures=entry.get("known_failures", {}),
                    generator=entry.get("generator"),
                )
            )
        except ConfigError:
            raise
        except UsageError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: model name(s) {', '.join(duplicates)} appear more than once")
    return specs
