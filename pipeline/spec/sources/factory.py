"""`module:callable`: a function or class that builds the model, called with the entry's arguments
(`--arg name=value`, `args = {...}` in a config entry)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from graphmint.pipeline import interrupts
from graphmint.pipeline.errors import ModelLoadError
from graphmint.pipeline.spec.sources import _CALLABLE, ModelRef, Source

__all__ = ["Factory", "frameworks_named_in", "import_module", "raised", "resolve_callable"]

#: the built-in zoo's modules as configs named them before graphmint was installed under its own name
#: ("models.torch_zoo:simple_net"); a user's own `models` package, where there is one, comes first
_LEGACY_ZOO = "models."


def resolve_callable(ref: str) -> Callable[..., Any]:
    """Import `module:callable` (module from the current directory or PYTHONPATH)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ModelLoadError(
            f"model reference {ref!r} is not of the form module:callable (e.g. mymodels:build)"
        )
    module = import_module(module_name, f"module {module_name!r} of {ref!r}")
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ModelLoadError(f"module {module_name!r} has no attribute {attr!r} (from {ref!r})")
        target = getattr(target, part)
    if not callable(target):
        raise ModelLoadError(f"{ref!r} is not callable: it should be a function or class returning a model")
    fn: Callable[..., Any] = target
    return fn


def import_module(name: str, label: str) -> Any:
    """Import a module the user named (from the current directory or PYTHONPATH); ModelLoadError, one
    line, where it cannot be found or its import fails (`label` says which module it is)."""
    if "" not in sys.path:
        sys.path.insert(0, "")  # the current directory, as `python -m` would have it
    try:
        return _import(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise ModelLoadError(
                f"cannot import {label}: run from the folder that holds it or add that folder to PYTHONPATH"
            ) from None
        raise ModelLoadError(f"importing {name!r} failed: {exc}") from None
    except BaseException as exc:
        if interrupts.signalled():
            raise
        raise ModelLoadError(f"importing {name!r} {raised(exc)}") from None


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        legacy = module_name.startswith(_LEGACY_ZOO) and exc.name in ("models", module_name)
        if not legacy or importlib.util.find_spec(f"graphmint.{module_name}") is None:
            raise
        return importlib.import_module(f"graphmint.{module_name}")


def raised(exc: BaseException) -> str:
    """What a user's code did instead of returning: 'raised ValueError: ...', 'called sys.exit(3)'."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r}) instead of returning"
    if isinstance(exc, interrupts.DeadlineExceeded):
        return str(exc)
    return f"raised {type(exc).__name__}: {exc}" if str(exc) else f"raised {type(exc).__name__}"


def _check_arguments(fn: Callable[..., Any], ref: ModelRef) -> None:
    """ModelLoadError naming --arg where the callable needs arguments the entry does not give, or
    takes none of those it gives (a callable without a Python signature is called as it is)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    params = signature.parameters
    takes_any = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = [
        n
        for n, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    unknown = [a for a in ref.args if a not in named and not takes_any]
    if unknown:
        takes = ", ".join(named) or "no arguments"
        raise ModelLoadError(
            f"{ref.ref!r} takes no argument {', '.join(map(repr, unknown))} (it takes: {takes})"
        )
    missing = [
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and n not in ref.args
    ]
    if missing:
        example = " ".join(f"--arg {n}=VALUE" for n in missing)
        raise ModelLoadError(
            f"{ref.ref!r} needs the argument(s) {', '.join(missing)}: pass them as {example} "
            "(or args = {...} in the config entry)"
        )


#: top-level modules whose import in a model's module means its framework: torch or tensorflow
_FRAMEWORK_OF = {
    "torch": "torch",
    "transformers": "torch",
    "tensorflow": "tensorflow",
    "keras": "tensorflow",
    "keras_hub": "tensorflow",
    "tf_keras": "tensorflow",
}
_IMPORTS = re.compile(r"^\s*(?:import|from)\s+(\w+)", re.MULTILINE)


def frameworks_named_in(refs: Iterable[str]) -> set[str]:
    """The frameworks that the modules of `module:callable` references import by name, read from their
    source without running it (its parent packages are imported, as loading the model would anyway).
    A module that cannot be found, or is not a plain source file, tells nothing."""
    found: set[str] = set()
    for ref in refs:
        try:
            spec = importlib.util.find_spec(ref.partition(":")[0])
        except (Exception, SystemExit):  # a parent package that fails: loading the model will say so
            continue
        if spec is None or not (spec.origin or "").endswith(".py"):
            continue
        with contextlib.suppress(OSError, UnicodeDecodeError):
            source = Path(spec.origin).read_text()  # type: ignore[arg-type]
            found.update(fw for top in _IMPORTS.findall(source) if (fw := _FRAMEWORK_OF.get(top)))
    return found


class Factory(Source):
    kind = "callable"
    verb = "calling"
    is_path = False

    def claims(self, ref: str) -> bool:
        return bool(_CALLABLE.match(ref))

    def factory(self, ref: ModelRef) -> Callable[[], Any]:
        fn = resolve_callable(ref.ref)
        _check_arguments(fn, ref)
        args = dict(ref.args)
        return lambda: fn(**args)

    def frameworks(self, ref: ModelRef) -> set[str]:
        return frameworks_named_in([ref.ref])

    def warm(self, ref: ModelRef) -> None:
        resolve_callable(ref.ref)

    def code(self, ref: ModelRef) -> tuple[str, ...]:
        return (ref.ref,)

    def imports(self, ref: ModelRef) -> tuple[str, ...]:
        return (ref.ref.partition(":")[0],)

    def describe(self, ref: ModelRef, model: Any) -> dict[str, Any]:
        return {**super().describe(ref, model), **({"args": dict(ref.args)} if ref.args else {})}
