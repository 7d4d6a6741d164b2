"""Keras models as files: a `.keras` file (loaded in Keras's safe mode; `--custom-objects MODULE`
registers the user's classes first) and a keras-hub preset folder (`save_to_preset`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from graphmint.pipeline.errors import ModelLoadError
from graphmint.pipeline.spec.sources import (
    Inferred,
    ModelRef,
    Source,
    file_sha256,
    json_object,
    weights_in,
)
from graphmint.pipeline.spec.sources.factory import import_module
from graphmint.pipeline.spec.sources.transformers_folder import BATCH, MASKS, MAX_SEQUENCE

__all__ = ["KerasFile", "KerasHubPreset"]


def _custom_objects(ref: ModelRef) -> None:
    if ref.custom_objects:
        import_module(ref.custom_objects, f"the --custom-objects module {ref.custom_objects!r}")


def _unsafe(exc: Exception) -> bool:
    return isinstance(exc, ValueError) and "safe_mode" in str(exc)


def _load_failure(ref: ModelRef, exc: Exception) -> ModelLoadError:
    """The one line for a Keras file or preset that does not load: unsafe content names --trust, a
    class Keras cannot find names --custom-objects."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if _unsafe(exc):
        return ModelLoadError(
            f"{ref.ref} needs Keras's unsafe deserialization (it holds Python code, such as a Lambda "
            "layer's function, which runs when loaded): pass --trust if you trust the file"
        )
    if "Could not locate" in first or "Unknown layer" in first or "register_keras_serializable" in first:
        return ModelLoadError(
            f"{ref.ref}: {first.split('. ')[0]}: pass --custom-objects MODULE, the module that "
            "registers the class with @keras.saving.register_keras_serializable"
        )
    return ModelLoadError(f"loading {ref.ref} raised {type(exc).__name__}: {first}")


class _KerasSource(Source):
    def frameworks(self, ref: ModelRef) -> set[str]:
        return {"tensorflow"}

    def code(self, ref: ModelRef) -> tuple[str, ...]:
        return tuple(f"{m}:" for m in (ref.custom_objects,) if m)

    @staticmethod
    def _load(ref: ModelRef, load: Callable[[], Any]) -> Any:
        """`load()` after the custom-objects module is imported; its failure as one line."""
        _custom_objects(ref)
        try:
            return load()
        except ModelLoadError:
            raise
        except Exception as exc:
            raise _load_failure(ref, exc) from None


class KerasFile(_KerasSource):
    kind = "keras"

    def claims(self, ref: str) -> bool:
        return ref.endswith(".keras") and Path(ref).is_file()

    def factory(self, ref: ModelRef) -> Callable[[], Any]:
        def build() -> Any:
            import keras

            return self._load(
                ref, lambda: keras.saving.load_model(ref.ref, compile=False, safe_mode=not ref.trust)
            )

        return build

    def warm(self, ref: ModelRef) -> None:
        import keras  # noqa: F401

        _custom_objects(ref)

    def files(self, ref: ModelRef) -> list[Path]:
        return [Path(ref.ref)]

    def describe(self, ref: ModelRef, model: Any) -> dict[str, Any]:
        path = Path(ref.ref)
        return {**super().describe(ref, model), "weights": [{"path": path.name, "sha256": file_sha256(path)}]}


class KerasHubPreset(_KerasSource):
    kind = "keras-hub"

    def claims(self, ref: str) -> bool:
        path = Path(ref)
        if not (path / "metadata.json").is_file():
            return False
        config = json_object(path / "config.json") or {}
        return str(config.get("registered_name") or "").startswith("keras_hub>") or str(
            config.get("module") or ""
        ).startswith("keras_hub.")

    def factory(self, ref: ModelRef) -> Callable[[], Any]:
        def build() -> Any:
            import keras_hub

            def load() -> Any:
                with _safe_mode(not ref.trust):
                    # a task's preprocessor needs tokenizer libraries: graphmint feeds tensors
                    if (Path(ref.ref) / "task.json").is_file():
                        return keras_hub.models.Task.from_preset(ref.ref, preprocessor=None)
                    return keras_hub.models.Backbone.from_preset(ref.ref)

            return self._load(ref, load)

        return build

    def warm(self, ref: ModelRef) -> None:
        import keras_hub  # noqa: F401

        _custom_objects(ref)

    def files(self, ref: ModelRef) -> list[Path]:
        return sorted(p for p in Path(ref.ref).rglob("*") if p.is_file())

    def describe(self, ref: ModelRef, model: Any) -> dict[str, Any]:
        return {**super().describe(ref, model), "weights": weights_in(Path(ref.ref), (".weights.h5",))}

    def infer(self, ref: ModelRef, model: Any) -> Inferred | None:
        """The backbone's own input layers, with the ranges its config gives: token ids over the
        vocabulary, segment ids over the segments, right-padded masks, sequences within its limit."""
        from graphmint.models.frameworks import get_framework

        specs = get_framework("tensorflow").infer_inputs(model)
        if not specs:
            return None
        backbone = getattr(model, "backbone", model)
        inferred = Inferred(inputs=specs, dims=[BATCH], generator=MASKS)
        limit = getattr(backbone, "max_sequence_length", None)
        longest = min(MAX_SEQUENCE, limit) if isinstance(limit, int) and limit > 0 else MAX_SEQUENCE
        if any("[batch,dim1]" in s for s in specs):
            inferred.dims.append(f"dim1=1..{longest}")
        for spec in specs:
            name = spec.partition(":")[0]
            vocabulary = getattr(backbone, "vocabulary_size", None)
            segments = getattr(backbone, "num_segments", None)
            if name.startswith("token") and isinstance(vocabulary, int):
                inferred.ranges.append(f"{name}=0..{vocabulary - 1}")
            elif name.startswith("segment") and isinstance(segments, int) and segments > 0:
                inferred.ranges.append(f"{name}=0..{segments - 1}")
        return inferred


@contextmanager
def _safe_mode(safe: bool) -> Iterator[None]:
    """Keras's safe mode for everything deserialized inside the block: keras-hub's from_preset
    deserializes with the ambient setting, which is safe unless the user trusts the preset."""
    from keras.src.saving.serialization_lib import SafeModeScope

    with SafeModeScope(safe):
        yield
