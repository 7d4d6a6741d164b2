"""Build the eager model a reference names: a `module:callable` with its arguments, or a model file
or folder (pipeline.spec.sources), and load a weights file into it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from graphmint.models.frameworks import Framework, detect, imported_frameworks
from graphmint.pipeline import interrupts
from graphmint.pipeline.errors import ModelLoadError
from graphmint.pipeline.spec.sources import ModelRef, source_of
from graphmint.pipeline.spec.sources.factory import raised, resolve_callable

__all__ = ["build_model", "resolve_callable", "warm"]


def warm(ref: str | ModelRef) -> None:
    """Import what building the model imports (its module, its framework), so children start warm."""
    model_ref = ModelRef.of(ref)
    source_of(model_ref).warm(model_ref)


def build_model(ref: str | ModelRef, seed: int, timeout_s: float | None = None) -> tuple[Framework, Any]:
    """Build the model with every imported framework's RNG seeded, load its weights file where it has
    one; return (framework, model).

    The build, then the weights' loading, each run under `timeout_s` (in the main thread); whatever
    either raises, `sys.exit()` and `KeyboardInterrupt` included (unless a real interrupt came), is a
    ModelLoadError.
    """
    model_ref = ModelRef.of(ref)
    source = source_of(model_ref)
    factory = source.factory(model_ref)
    label = f"{source.verb} {model_ref.ref!r}"
    frameworks = imported_frameworks()
    model = _call(factory, label, frameworks, seed, timeout_s)
    framework = detect(model)
    if framework is not None and framework not in frameworks:
        # the factory imported its framework itself: build again, now that its RNG can be seeded
        model = _call(factory, label, [framework], seed, timeout_s)
    if framework is None:
        raise ModelLoadError(
            f"{model_ref.ref!r} returned a {type(model).__module__}.{type(model).__qualname__}, not a model: "
            "it must return a torch.nn.Module, a keras.Model or a tf.Module"
        )
    if model_ref.weights is not None:  # under the same bound as the build: a weights file may load slowly
        label = f"loading --weights {model_ref.weights}"
        _call(lambda: _load_weights(framework, model, model_ref), label, [], seed, timeout_s)
    return framework, framework.prepare(model)


def _load_weights(framework: Framework, model: Any, ref: ModelRef) -> None:
    from graphmint.models.frameworks.weights import WeightsError

    assert ref.weights is not None
    path = Path(ref.weights)
    if not path.is_file():
        raise ModelLoadError(
            f"--weights {ref.weights}: no such file: pass the weights file the model was saved to"
        )
    try:
        framework.load_weights(model, path, ref.trust)
    except WeightsError as exc:
        raise ModelLoadError(f"--weights {ref.weights} {exc}") from None


def _call(
    factory: Callable[[], Any], label: str, frameworks: list[Framework], seed: int, timeout_s: float | None
) -> Any:
    try:
        with ExitStack() as stack:
            for framework in frameworks:
                stack.enter_context(framework.seeded(seed))
            with interrupts.time_limit(timeout_s):
                return factory()
    except ModelLoadError:
        raise
    except BaseException as exc:
        if interrupts.signalled():
            raise
        raise ModelLoadError(f"{label} {raised(exc)}") from None
