"""Writing golden data in the ONNX model-zoo layout: `test_data_set_N/input_K.pb` and `output_K.pb`
(validators.golden reads it).

Each file is a serialized `onnx.TensorProto` named like the model's input or output. A published model
carries one set per grid point, so anyone can re-check its artifacts without graphmint's model code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from graphmint.pipeline.publish.manifest import GoldenEntry
from graphmint.pipeline.publish.staging import hash_files
from graphmint.validators.check import Case
from graphmint.validators.golden import GoldenSet, read_golden_sets

__all__ = ["GoldenSet", "read_golden_sets", "write_golden", "write_golden_set"]


def write_golden_set(
    folder: Path, index: int, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]
) -> Path:
    from onnx import numpy_helper

    target = folder / f"test_data_set_{index}"
    target.mkdir(parents=True, exist_ok=False)
    for kind, arrays in (("input", inputs), ("output", outputs)):
        for k, (name, array) in enumerate(arrays.items()):
            tensor = numpy_helper.from_array(np.asarray(array), name=name)
            (target / f"{kind}_{k}.pb").write_bytes(tensor.SerializeToString())
    return target


def write_golden(folder: Path, cases: Sequence[Case]) -> list[GoldenEntry]:
    """Every grid point's inputs and eager outputs as test_data_set_N folders, each file hashed."""
    sets = []
    for index, case in enumerate(cases):
        path = write_golden_set(folder, index, case.feeds, case.expected)
        files = hash_files(folder, path)
        sets.append(GoldenEntry(path=path.name, label=case.label, sizes=dict(case.sizes), files=files))
    return sets
