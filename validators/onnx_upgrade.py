"""Upgrade an ONNX file that is older than ONNX Runtime's kernels, so that it can be validated at all.

ONNX Runtime promises to run opset 7 and later only; files stamped with an older ai.onnx opset fail to
load (NOT_IMPLEMENTED). `upgrade_onnx` writes a copy converted with `onnx.version_converter`; the
converter runs in a child process, as it is native code working on a file it has not seen before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ORT_MIN_OPSET", "UPGRADE_OPSET", "OpsetUpgrade", "default_opset", "upgrade_onnx"]

#: the oldest ai.onnx opset ONNX Runtime promises to run (its Versioning.md, "Backwards compatibility")
ORT_MIN_OPSET = 7
#: the opset an older file is upgraded to. Not ORT_MIN_OPSET: ONNX Runtime runs opset 7, but
#: onnx.reference.ReferenceEvaluator, the second runtime a file is checked on, mishandles
#: BatchNormalization-7 to -13 in inference mode (an error at 7 and 8, the batch's statistics for the
#: running ones from 9); from 14 on it is right. 17 is a long-standing exporter default that every
#: ONNX Runtime graphmint supports runs; each later opset adds converter adapters for no gain (17, 18
#: and 21 gave the same results on the onnx wheel's backend test models).
UPGRADE_OPSET = 17


@dataclass(frozen=True)
class OpsetUpgrade:
    """A copy of an ONNX file converted from one ai.onnx opset to another."""

    from_opset: int
    to_opset: int
    #: e.g. "onnx.version_converter (onnx 1.23.2)"
    converter: str
    path: Path

    def to_json(self) -> dict[str, Any]:
        return {"from_opset": self.from_opset, "to_opset": self.to_opset, "converter": self.converter}


def default_opset(model: Any) -> int | None:
    """The model's ai.onnx opset version, or None when it imports none."""
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _convert(source: Path, dest: Path, target: int) -> OpsetUpgrade:
    import onnx
    from onnx import helper, version_converter
    from onnx.external_data_helper import uses_external_data

    model = onnx.load(str(source), load_external_data=False)
    external = any(uses_external_data(t) for t in model.graph.initializer)
    if external:
        onnx.load_external_data_for_model(model, str(source.parent))
    original = default_opset(model)
    if original is None or original >= target:
        raise ValueError(f"{source.name} is at opset {original}, not older than opset {target}")
    converted = version_converter.convert_version(model, target)
    # the converter keeps the IR version, but its adapters may write what that IR forbids (Pad-11's pads
    # as an initializer that is no graph input, which IR 3 requires): stamp the IR that opset came with
    minimum_ir = helper.find_min_ir_version_for([helper.make_opsetid("", target)])
    converted.ir_version = max(converted.ir_version, minimum_ir)
    onnx.save_model(converted, str(dest), save_as_external_data=external, location=f"{dest.name}.data")
    return OpsetUpgrade(original, target, f"onnx.version_converter (onnx {onnx.__version__})", dest)


def upgrade_onnx(
    source: Path, dest: Path, target: int = UPGRADE_OPSET, timeout_s: float | None = None
) -> OpsetUpgrade:
    """Write `source` converted to ai.onnx opset `target` to `dest` (external data beside it).

    Raises ChildError (validators.children) when the converter fails, naming its error, or crashes or
    hangs its process.
    """
    from graphmint.validators.children import default_pool

    upgrade: OpsetUpgrade = default_pool().call(
        _convert, source, dest, target, name="onnx.version_converter", timeout_s=timeout_s
    )
    return upgrade
