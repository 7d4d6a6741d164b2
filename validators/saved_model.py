"""Runner for SavedModels: the `serving_default` signature, called with named inputs, in a fresh process.

`SavedModelRunner` hosts `SignatureRunner` in a child process (validators.isolated), so the check
sees only what tf.saved_model.load rebuilds from disk, never the Python objects of the export.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graphmint.validators._tf import outputs_in_order
from graphmint.validators.base import Runner
from graphmint.validators.isolated import IsolatedRunner

__all__ = ["SavedModelRunner", "SignatureRunner"]


class SignatureRunner(Runner):
    """Loads the SavedModel in this process and calls its signature with keyword inputs."""

    name = "saved-model-signature"
    signature = "serving_default"

    def __init__(self, artifact: Any) -> None:
        super().__init__(artifact)
        self.loaded: Any = None
        self.fn: Any = None

    def activate_impl(self) -> None:
        import tensorflow as tf

        self.loaded = tf.saved_model.load(str(self.artifact.path))
        signatures = self.loaded.signatures
        if self.signature not in signatures:
            raise ValueError(f"the SavedModel has no {self.signature!r} signature, only {list(signatures)}")
        self.fn = signatures[self.signature]
        self.runtime = f"tensorflow {tf.__version__} CPU, SavedModel signature {self.signature!r}"

    def deactivate_impl(self) -> None:
        self.fn = self.loaded = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        import tensorflow as tf

        outputs = self.fn(**{name: tf.constant(value) for name, value in feeds.items()})
        return outputs_in_order({k: v.numpy() for k, v in outputs.items()}, self.artifact.output_names)


class SavedModelRunner(IsolatedRunner):
    name = "saved-model"
    inner = f"{__name__}:SignatureRunner"
