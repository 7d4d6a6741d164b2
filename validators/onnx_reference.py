"""Runner for ONNX files on onnx.reference.ReferenceEvaluator: a second, pure-Python implementation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from validators.base import Runner, RuntimeUnavailable


class OnnxReferenceRunner(Runner):
    name = "onnx-reference"

    def __init__(self, artifact: Any) -> None:
        super().__init__(artifact)
        self.evaluator: Any = None

    def activate_impl(self) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator

        try:
            self.evaluator = ReferenceEvaluator(str(self.artifact.path))
        except NotImplementedError as exc:
            raise RuntimeUnavailable(f"ReferenceEvaluator lacks an operator: {exc}") from None
        except Exception as exc:
            if "no implementation" in str(exc).lower() or "not implemented" in str(exc).lower():
                raise RuntimeUnavailable(f"ReferenceEvaluator lacks an operator: {exc}") from None
            raise
        self.runtime = f"onnx.reference.ReferenceEvaluator (onnx {onnx.__version__})"

    def deactivate_impl(self) -> None:
        self.evaluator = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        outputs: list[Any] = self.evaluator.run(None, dict(feeds))
        return outputs
