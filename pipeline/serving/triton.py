"""Triton model configurations (config.pbtxt), built with Triton's own ModelConfig protobuf."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["TRITON_TYPES", "batch_dim", "model_config_text"]

#: graphmint dtype -> Triton data type
TRITON_TYPES = {
    "float32": "TYPE_FP32",
    "float64": "TYPE_FP64",
    "float16": "TYPE_FP16",
    "int64": "TYPE_INT64",
    "int32": "TYPE_INT32",
    "int16": "TYPE_INT16",
    "int8": "TYPE_INT8",
    "uint8": "TYPE_UINT8",
    "bool": "TYPE_BOOL",
}


def batch_dim(tensors: Sequence[Mapping[str, Any]]) -> str | None:
    """The dynamic dim that leads every input and output, which Triton can batch on; None if none does."""
    leads = {t["shape"][0] if t["shape"] else None for t in tensors}
    lead = leads.pop() if len(leads) == 1 else None
    return lead if isinstance(lead, str) else None


def model_config_text(
    name: str,
    platform: str,
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
    dims: Mapping[str, Mapping[str, int]],
    tensor_names: Sequence[str] | None = None,
    backend: str | None = None,
) -> str:
    """config.pbtxt for one model: names, Triton types, dims (-1 for dynamic), max_batch_size; run by
    `platform`, or by `backend` where one is named.

    A dynamic dim leading every tensor becomes Triton's batch dim: max_batch_size is its maximum and it
    is left out of the dims. `tensor_names` renames inputs then outputs (PyTorch's `NAME__INDEX`).
    """
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as pb

    config = (
        pb.ModelConfig(name=name, backend=backend)
        if backend
        else pb.ModelConfig(name=name, platform=platform)
    )
    batch = batch_dim([*inputs, *outputs])
    config.max_batch_size = dims[batch]["max"] if batch else 0
    names = list(tensor_names) if tensor_names else [t["name"] for t in [*inputs, *outputs]]
    for index, (tensor, add) in enumerate(
        [(t, config.input.add) for t in inputs] + [(t, config.output.add) for t in outputs]
    ):
        entry = add()
        entry.name = names[index]
        entry.data_type = pb.DataType.Value(TRITON_TYPES[tensor["dtype"]])
        shape = tensor["shape"][1:] if batch else tensor["shape"]
        entry.dims.extend(-1 if isinstance(d, str) else int(d) for d in shape)
    return text_format.MessageToString(config)
