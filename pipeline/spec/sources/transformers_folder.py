"""A transformers folder (`save_pretrained`: config.json naming its `architectures`, weights as
safetensors): the class it names, loaded offline from the folder alone, and its inputs read off the
model's forward signature and config, as transformers itself declares them (`main_input_name`, the
forward's parameters, `vocab_size`, `type_vocab_size`, `num_channels`, `image_size`, the position
limits, `is_encoder_decoder`), not from a table per architecture."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from graphmint.pipeline.errors import ModelLoadError
from graphmint.pipeline.spec.sources import Inferred, ModelRef, Source, json_object, weights_in

__all__ = ["MASKS", "TransformersFolder", "transformers_inputs"]

#: the built-in generator of right-padded attention masks (pipeline.spec.inputs)
MASKS = "graphmint.pipeline.spec.inputs:padded_masks"
#: the longest sequence the grid tries, where the model allows as many positions
MAX_SEQUENCE = 64
#: the batch sizes the grid tries
BATCH = "batch=1..8"
#: weights formats that load without running code; anything else is a pickle
_SAFE_WEIGHTS = "*.safetensors"


def _config(path: Path) -> dict[str, Any] | None:
    return json_object(path / "config.json")


def _positions(config: Any, *names: str) -> int:
    """The longest sequence the grid tries: MAX_SEQUENCE, or fewer where the config's limit is lower."""
    limits = [v for n in names if isinstance(v := getattr(config, n, None), int) and v > 0]
    return min([MAX_SEQUENCE, *limits])


def _pair(size: Any) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(s, int) for s in size):
        return size[0], size[1]
    return 224, 224


def _text(params: set[str], config: Any, inferred: Inferred) -> None:
    text = config.get_text_config(decoder=False) if hasattr(config, "get_text_config") else config
    longest = _positions(text, "max_position_embeddings", "n_positions", "max_source_positions")
    inferred.inputs.append("input_ids:int64[batch,sequence]")
    inferred.dims.append(f"sequence=1..{longest}")
    inferred.ranges.append(f"input_ids=0..{text.vocab_size - 1}")
    if "attention_mask" in params:
        inferred.inputs.append("attention_mask:int64[batch,sequence]")
    segments = getattr(text, "type_vocab_size", None)
    if "token_type_ids" in params and isinstance(segments, int) and segments > 0:
        inferred.inputs.append("token_type_ids:int64[batch,sequence]")
        inferred.ranges.append(f"token_type_ids=0..{segments - 1}")


def _vision(config: Any, inferred: Inferred) -> None:
    vision = getattr(config, "vision_config", None) or config
    height, width = _pair(getattr(vision, "image_size", None))
    channels = getattr(vision, "num_channels", 3)
    inferred.inputs.append(f"pixel_values:float32[batch,{channels},{height},{width}]")


def _audio(main: str, config: Any, extractor: dict[str, Any], inferred: Inferred) -> None:
    """Waveforms of 0.1 to 0.2 s at the feature extractor's sampling rate (16 kHz where the folder
    has none), or features of its (else the config's) size."""
    if main == "input_values":  # raw waveforms (wav2vec2, HuBERT)
        rate = extractor.get("sampling_rate")
        rate = rate if isinstance(rate, int) and rate > 0 else 16000
        inferred.inputs.append("input_values:float32[batch,samples]")
        inferred.dims.append(f"samples={rate // 10}..{rate // 5}")
        return
    size = extractor.get("feature_size")
    mels = size if isinstance(size, int) else getattr(config, "num_mel_bins", None)
    mels = mels or getattr(config, "input_feat_per_channel", 80)
    sources = getattr(config, "max_source_positions", None)
    if isinstance(sources, int) and getattr(config, "model_type", "") == "whisper":
        # Whisper's encoder takes exactly its positions' worth of frames, after a stride-2 conv
        inferred.inputs.append(f"input_features:float32[batch,{mels},{2 * sources}]")
        return
    inferred.inputs.append(f"input_features:float32[batch,frames,{mels}]")
    inferred.dims.append(f"frames=8..{_positions(config, 'max_source_positions')}")


def transformers_inputs(model: Any, extractor: dict[str, Any] | None = None) -> Inferred | None:
    """The inputs a transformers model takes, from its main input, forward signature and config: text
    (token ids over the vocabulary, a right-padded attention mask, segment ids where the model has
    segment embeddings), vision (pixel values at the config's size), audio (waveforms or features),
    and, for an encoder-decoder, the decoder's token ids. `extractor` is the feature extractor's
    config (preprocessor_config.json), where there is one. None where the model is none of these."""
    config = getattr(model, "config", None)
    main = getattr(model, "main_input_name", None)
    if config is None or not isinstance(main, str):
        return None
    try:
        params = set(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return None
    inferred = Inferred(inputs=[], dims=[BATCH])
    if main == "input_ids":
        _text(params, config, inferred)
    elif main == "pixel_values":
        _vision(config, inferred)
    elif main in ("input_values", "input_features"):
        _audio(main, config, extractor or {}, inferred)
    else:
        return None
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        decoder = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
        longest = _positions(decoder, "max_position_embeddings", "max_target_positions", "n_positions")
        inferred.inputs.append("decoder_input_ids:int64[batch,decoder_sequence]")
        inferred.dims.append(f"decoder_sequence=1..{longest}")
        inferred.ranges.append(f"decoder_input_ids=0..{decoder.vocab_size - 1}")
    masks = any(spec.partition(":")[0].endswith("attention_mask") for spec in inferred.inputs)
    return replace(inferred, generator=MASKS) if masks else inferred


class TransformersFolder(Source):
    kind = "transformers"

    def claims(self, ref: str) -> bool:
        path = Path(ref)
        config = _config(path) if path.is_dir() else None
        return bool(config and isinstance(config.get("architectures"), list) and config["architectures"])

    def factory(self, ref: ModelRef) -> Callable[[], Any]:
        path = Path(ref.ref)
        config = _config(path) or {}
        architecture = str(config["architectures"][0])
        if not any(path.glob(_SAFE_WEIGHTS)) and not ref.trust:
            raise ModelLoadError(
                f"{ref.ref} holds no safetensors weights: its weights are a pickle, which runs code when "
                "loaded; save it with save_pretrained (safetensors, the default) or pass --trust"
            )
        if "auto_map" in config and not ref.trust:
            raise ModelLoadError(
                f"{ref.ref}: config.json's auto_map names the folder's own Python code for "
                f"{architecture}, which runs when loaded: pass --trust to run it"
            )

        def build() -> Any:
            import transformers

            cls = getattr(transformers, architecture, None) if "auto_map" not in config else None
            if cls is None and not ref.trust:
                raise ModelLoadError(
                    f"{ref.ref}: transformers {transformers.__version__} has no class {architecture!r} "
                    "(config.json's architectures): upgrade transformers, or pass --trust for the "
                    "folder's own code"
                )
            loader = cls or transformers.AutoModel
            options: dict[str, Any] = {"local_files_only": True, "trust_remote_code": ref.trust}
            if "use_cache" in config:  # a cache object is no tensor output: graphmint checks tensors
                options["use_cache"] = False
            model, info = loader.from_pretrained(str(path), output_loading_info=True, **options)
            missing = info.get("missing_keys") or []
            if missing:
                raise ModelLoadError(
                    f"{ref.ref}: the weights lack {len(missing)} of {architecture}'s tensors "
                    f"({', '.join(sorted(missing)[:5])}{', ...' if len(missing) > 5 else ''}): save the "
                    "whole model with save_pretrained"
                )
            return model

        return build

    def frameworks(self, ref: ModelRef) -> set[str]:
        return {"torch"}

    def infer(self, ref: ModelRef, model: Any) -> Inferred | None:
        return transformers_inputs(model, json_object(Path(ref.ref) / "preprocessor_config.json") or {})

    def warm(self, ref: ModelRef) -> None:
        import transformers

        getattr(transformers, str((_config(Path(ref.ref)) or {}).get("architectures", [""])[0]), None)

    def files(self, ref: ModelRef) -> list[Path]:
        return sorted(p for p in Path(ref.ref).rglob("*") if p.is_file())

    def describe(self, ref: ModelRef, model: Any) -> dict[str, Any]:
        weights = weights_in(Path(ref.ref), (".safetensors", ".bin", ".pt", ".pth"))
        return {**super().describe(ref, model), "weights": weights}
