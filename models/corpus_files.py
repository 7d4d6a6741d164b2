"""Corpus models as their users hold them: folders and files written by the libraries' own save
functions (transformers' save_pretrained, Keras's .keras, keras-hub's save_to_preset), from the
corpus factories with their seeded random weights. corpus.toml names them by path; `make corpus`
writes them first:

    python -m graphmint.models.corpus_files corpus-models

A file already there is kept: the writer is deterministic (seed 0), so it would write the same model.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["FILES", "FOLDER", "write"]

#: where corpus.toml looks for them, relative to it
FOLDER = "corpus-models"


def _pretrained(factory: str) -> Callable[[Path], None]:
    def save(path: Path) -> None:
        _built("torch", "graphmint.models.corpus_torch", factory).save_pretrained(path)

    return save


def _keras_file(factory: str) -> Callable[[Path], None]:
    def save(path: Path) -> None:
        _built("tensorflow", "graphmint.models.corpus_keras", factory).save(path)

    return save


def _preset(factory: str) -> Callable[[Path], None]:
    def save(path: Path) -> None:
        _built("tensorflow", "graphmint.models.corpus_keras", factory).save_to_preset(str(path))

    return save


def _built(framework: str, module: str, factory: str) -> Any:
    import importlib

    from graphmint.models.frameworks import get_framework

    build = getattr(importlib.import_module(module), factory)
    with get_framework(framework).seeded(0):
        return build()


#: each file or folder: how it is written, and the packages that takes
FILES: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "hf-bert": (_pretrained("bert"), ("torch", "transformers")),
    "hf-t5-encoder": (_pretrained("t5_encoder"), ("torch", "transformers")),
    "mobilenet_v3_small.keras": (_keras_file("mobilenet_v3_small"), ("tensorflow", "keras")),
    "keras-hub-bert": (_preset("bert_backbone"), ("tensorflow", "keras", "keras_hub")),
}


def write(folder: Path, names: tuple[str, ...] = tuple(FILES)) -> list[Path]:
    """Write the named corpus files under `folder` (those not there yet); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        path = folder / name
        if not path.exists():
            writing = folder / ".writing"  # what a killed writer left half-written is never taken
            shutil.rmtree(writing, ignore_errors=True)
            writing.mkdir()
            FILES[name][0](writing / name)
            (writing / name).rename(path)
            writing.rmdir()
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else FOLDER)):
        print(path)
