"""Split a run over CI jobs (`graphmint run --shard I/N`) and combine their outputs (`graphmint merge`).

Shard I of N takes the models at positions I, I+N, I+2N... of the config (after --models), so every
model lands in exactly one shard and its cells stay together: a model is published whole or not at all.
A shard writes `shard.json` beside its reports: which shard it was, the config's models, and every
model's full result. `merge` reads the shard folders, checks that they are the N shards of one run
(each once, nothing missing), copies each published model folder into the output atomically after
checking every file against the sha256 its manifest records, and returns the results, from which the
reports of the whole run are written as a single run would write them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.manifest import GRAPHMINT_VERSION, read_model_manifest
from graphmint.pipeline.publish.staging import Staging, differing_files, write_text_atomic
from graphmint.pipeline.run.results import ModelResult

__all__ = ["SHARD_FILE", "Shard", "merge_shards", "write_shard"]

SHARD_FILE = "shard.json"


@dataclass(frozen=True)
class Shard:
    """Shard `index` (from 1) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, items: Sequence[Any]) -> list[Any]:
        return list(items[self.index - 1 :: self.count])


def write_shard(folder: Path, shard: Shard, models: Sequence[str], results: Sequence[ModelResult]) -> Path:
    """`shard.json`: this shard, every model of the run it is part of, and its models' results."""
    data = {
        "graphmint": GRAPHMINT_VERSION,
        "shard": {"index": shard.index, "count": shard.count},
        "models": list(models),
        "results": [r.dump(full=True) for r in results],
    }
    return write_text_atomic(folder / SHARD_FILE, json.dumps(data, default=str) + "\n")


def _read(folder: Path) -> dict[str, Any]:
    path = folder / SHARD_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        data["shard"] = Shard(data["shard"]["index"], data["shard"]["count"])
    except FileNotFoundError:
        raise UsageError(
            f"{folder} holds no {SHARD_FILE}: pass the --out (or --report-dir) folders of "
            "`graphmint run --shard I/N`"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path} cannot be read ({exc}): run that shard again") from None
    return data


def _check_complete(shards: list[tuple[Path, dict[str, Any]]]) -> None:
    """The folders are the N shards of one run, each once."""
    counts = {data["shard"].count for _, data in shards}
    runs = {tuple(data["models"]) for _, data in shards}
    if len(counts) > 1 or len(runs) > 1:
        raise UsageError(
            "the folders are shards of different runs (another shard count or model list): "
            "merge the shards of one `graphmint run --shard I/N` only"
        )
    (count,) = counts
    seen: dict[int, Path] = {}
    for folder, data in shards:
        index = data["shard"].index
        if index in seen:
            raise UsageError(f"shard {index}/{count} given twice ({seen[index]} and {folder}): pass it once")
        seen[index] = folder
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in seen]
    if missing:
        raise UsageError(f"shard {', '.join(missing)} missing: pass the folder of every shard to merge")


def _verified(folder: Path) -> None:
    """Every file of a published model folder matches the sha256 its manifest records."""
    changed = differing_files(folder, read_model_manifest(folder))
    if changed:
        raise UsageError(
            f"{folder}: {changed[0]} differs from what its manifest records: run that shard again"
        )


def merge_shards(folders: Sequence[Path], out: Path) -> list[ModelResult]:
    """The results of the shards in `folders`, in the run's model order, each published model folder
    copied into `out` (atomically; a folder already there from the same place stays as it is)."""
    shards = [(folder, _read(folder)) for folder in folders]
    _check_complete(shards)
    results: dict[str, ModelResult] = {}
    sources: dict[str, Path | None] = {}
    for folder, data in shards:
        for item in data["results"]:
            result = ModelResult.read(item)
            results[result.name] = result
            # where the shard's folder is now (CI moves it), else where the shard published it
            beside = folder / result.name
            sources[result.name] = beside if (beside / "manifest.json").is_file() else result.published
    order = shards[0][1]["models"]
    for name, result in results.items():
        source = sources[name] if result.published is not None else None
        if source is None:
            continue
        if not source.is_dir():
            raise UsageError(f"{name}: its published folder {source} is gone: run that shard again")
        if (out / name).resolve() != source.resolve():
            _verified(source)
            with Staging(out, name) as staging:
                assert staging.path is not None
                shutil.copytree(source, staging.path, symlinks=True, dirs_exist_ok=True)
                result.published = staging.commit()
    return [results[name] for name in order if name in results]
