"""Reading golden data in the ONNX model-zoo layout: `test_data_set_N/input_K.pb` and `output_K.pb`.

Each file is a serialized `onnx.TensorProto` named like the model's input or output (written by
pipeline.publish.golden). A published model carries one set per grid point, so anyone can re-check
its artifacts without graphmint's model code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["GoldenSet", "read_golden_sets"]

_SET_RE = re.compile(r"^test_data_set_(\d+)$")
_FILE_RE = re.compile(r"^(input|output)_(\d+)\.pb$")


@dataclass(frozen=True)
class GoldenSet:
    """One test_data_set folder: named inputs and outputs, in file order."""

    path: Path
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]


def _read_tensor(path: Path) -> tuple[str, np.ndarray]:
    from onnx import TensorProto, numpy_helper

    tensor = TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return tensor.name, numpy_helper.to_array(tensor)


def _files(folder: Path, kind: str) -> list[Path]:
    found = [
        (int(m.group(2)), p) for p in folder.iterdir() if (m := _FILE_RE.match(p.name)) and m.group(1) == kind
    ]
    return [p for _, p in sorted(found)]


def read_golden_sets(
    folder: Path, input_names: Sequence[str] = (), output_names: Sequence[str] = ()
) -> list[GoldenSet]:
    """Every test_data_set_N under `folder`, in N order; unnamed tensors take the given names by position."""
    sets = sorted(
        ((int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _SET_RE.match(p.name))),
    )
    golden = []
    for _, path in sets:
        arrays = {}
        for kind, names in (("input", input_names), ("output", output_names)):
            named: dict[str, np.ndarray] = {}
            for k, file in enumerate(_files(path, kind)):
                name, array = _read_tensor(file)
                name = name or (names[k] if k < len(names) else f"{kind}_{k}")
                if name in named:
                    raise ValueError(f"{path.name} holds {kind} {name!r} twice ({file.name})")
                named[name] = array
            arrays[kind] = named
        golden.append(GoldenSet(path=path, inputs=arrays["input"], outputs=arrays["output"]))
    return golden
