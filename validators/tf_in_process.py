"""Runner for TensorFlow routes that have no file (tf.function): it calls the concrete function itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graphmint.validators._tf import outputs_in_order
from graphmint.validators.base import Runner


class TfInProcessRunner(Runner):
    name = "tf-in-process"

    def __init__(self, artifact: Any) -> None:
        super().__init__(artifact)
        self.fn: Any = None

    def activate_impl(self) -> None:
        import tensorflow as tf

        if self.artifact.in_process is None:
            raise ValueError(f"route {self.artifact.route} produced no in-process function")
        self.fn = self.artifact.in_process
        self.runtime = f"tensorflow {tf.__version__} CPU (in-process)"

    def deactivate_impl(self) -> None:
        self.fn = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        from graphmint.models.frameworks.tensorflow_fw import flatten_tf_outputs, to_tf

        return outputs_in_order(flatten_tf_outputs(self.fn(*to_tf(feeds))), self.artifact.output_names)
