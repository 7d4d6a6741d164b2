"""Known upstream causes: root-cause patterns of exporter failures, and where upstream tracks them.

Data, not logic: a pattern matched against an `unsupported` route's reason, and the upstream
reference a user can follow (or subscribe to) instead of debugging the model.
"""

from __future__ import annotations

import re

__all__ = ["KNOWN_UPSTREAM", "UNREPRODUCIBLE_FILES", "unreproducible", "upstream_reference"]

#: (pattern in the exporter's reason, upstream reference)
KNOWN_UPSTREAM: tuple[tuple[str, str], ...] = (
    (
        r"ValueRangeError: Invalid ranges \[0:-1\]",
        "pytorch/pytorch#188422 (Inductor lowering of convolutions with dynamic shapes, torch 2.13)",
    ),
    (
        r"no fake impl registered|no fake impl",
        "custom operators need a fake kernel for torch.export/compile: torch.library.register_fake",
    ),
    (
        r"litert-torch cannot keep .*-9223372036854775808",
        "google-ai-edge/litert-torch#685 (a dynamic dim reaches its JAX lowering as INT64_MIN, "
        "-9223372036854775808: a plain Linear MLP with a dynamic batch does not convert)",
    ),
    (
        r"'<=' not supported between instances of 'int' and 'Node'",
        "google-ai-edge/litert-torch#870 (its int64-to-int32 pass, backend/export.py's "
        "_convert_i64_to_i32, range-checks aten.arange's start and end as ints; a dynamic sequence dim "
        "makes the end a graph node, as in BERT's position ids; PR #1024, closed, proposed skipping them)",
    ),
    (
        r"litert-torch cannot keep",
        "google-ai-edge/litert-torch#870 (litert-torch lowers each aten op through jax.jit, which needs "
        "concrete shapes: dynamic shapes are unsupported)",
    ),
    (
        r"Keras's ONNX export wrote an Erfc node",
        "onnx/tensorflow-onnx#2463 (tf2onnx, which keras.Model.export(format='onnx') calls, has no "
        "conversion for TensorFlow's Erfc, which exact GELU lowers to, and leaves the node as it is)",
    ),
    (
        r"Select TF op(\(s\))? \(the Flex delegate\)",
        "google-ai-edge/LiteRT#6458 (no TFLite interpreter on PyPI links the Flex delegate that "
        "'Select TF ops' need)",
    ),
)


def upstream_reference(reason: str) -> str | None:
    """The upstream reference for the first known pattern in `reason`, or None."""
    return next((ref for pattern, ref in KNOWN_UPSTREAM if re.search(pattern, reason)), None)


#: files whose bytes differ between two exports of the same model and seed, by file name, and why
UNREPRODUCIBLE_FILES: dict[str, str] = {
    "fingerprint.pb": "TensorFlow writes a random id into every SavedModel's fingerprint",
}


def unreproducible(path: str) -> str | None:
    """Why a file written by an exporter cannot be byte-identical across builds, or None."""
    return UNREPRODUCIBLE_FILES.get(path.rsplit("/", 1)[-1])
