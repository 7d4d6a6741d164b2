"""Resolve a `module:callable` reference and build the eager model it returns."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from graphmint.models.frameworks import Framework, detect, imported_frameworks
from graphmint.pipeline import interrupts
from graphmint.pipeline.errors import ModelLoadError

__all__ = ["build_model", "resolve_callable"]


def resolve_callable(ref: str) -> Callable[..., Any]:
    """Import `module:callable` (module from the current directory or PYTHONPATH)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ModelLoadError(
            f"model reference {ref!r} is not of the form module:callable (e.g. mymodels:build)"
        )
    if "" not in sys.path:
        sys.path.insert(0, "")  # the current directory, as `python -m` would have it
    try:
        module = _import(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ModelLoadError(
                f"cannot import module {module_name!r} of {ref!r}: run from the folder that holds it "
                "or add that folder to PYTHONPATH"
            ) from None
        raise ModelLoadError(f"importing {module_name!r} failed: {exc}") from None
    except BaseException as exc:
        if interrupts.signalled():
            raise
        raise ModelLoadError(f"importing {module_name!r} {_raised(exc)}") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ModelLoadError(f"module {module_name!r} has no attribute {attr!r} (from {ref!r})")
        target = getattr(target, part)
    if not callable(target):
        raise ModelLoadError(f"{ref!r} is not callable: it should be a function or class returning a model")
    fn: Callable[[], Any] = target
    return fn


#: the built-in zoo's modules as configs named them before graphmint was installed under its own name
#: ("models.torch_zoo:simple_net"); a user's own `models` package, where there is one, comes first
_LEGACY_ZOO = "models."


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        legacy = module_name.startswith(_LEGACY_ZOO) and exc.name in ("models", module_name)
        if not legacy or importlib.util.find_spec(f"graphmint.{module_name}") is None:
            raise
        return importlib.import_module(f"graphmint.{module_name}")


def _raised(exc: BaseException) -> str:
    """What a user's code did instead of returning: 'raised ValueError: ...', 'called sys.exit(3)'."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r}) instead of returning"
    if isinstance(exc, interrupts.DeadlineExceeded):
        return str(exc)
    return f"raised {type(exc).__name__}: {exc}" if str(exc) else f"raised {type(exc).__name__}"


def build_model(ref: str, seed: int, timeout_s: float | None = None) -> tuple[Framework, Any]:
    """Call the model factory with every imported framework's RNG seeded; return (framework, model).

    The factory runs under `timeout_s` (in the main thread); whatever it raises, `sys.exit()` and
    `KeyboardInterrupt` included (unless a real interrupt came), is a ModelLoadError.
    """
    factory = resolve_callable(ref)
    frameworks = imported_frameworks()
    model = _call(factory, ref, frameworks, seed, timeout_s)
    framework = detect(model)
    if framework is not None and framework not in frameworks:
        # the factory imported its framework itself: build again, now that its RNG can be seeded
        model = _call(factory, ref, [framework], seed, timeout_s)
    if framework is None:
        raise ModelLoadError(
            f"{ref!r} returned a {type(model).__module__}.{type(model).__qualname__}, not a model: "
            "it must return a torch.nn.Module, a keras.Model or a tf.Module"
        )
    return framework, framework.prepare(model)


def _call(
    factory: Callable[[], Any], ref: str, frameworks: list[Framework], seed: int, timeout_s: float | None
) -> Any:
    try:
        with ExitStack() as stack:
            for framework in frameworks:
                stack.enter_context(framework.seeded(seed))
            with interrupts.time_limit(timeout_s):
                return factory()
    except BaseException as exc:
        if interrupts.signalled():
            raise
        raise ModelLoadError(f"calling {ref!r} {_raised(exc)}") from None
