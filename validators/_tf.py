"""The part the TensorFlow runners share: outputs picked by name, in the artifact's order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["outputs_in_order"]


def outputs_in_order(named: Mapping[str, Any], names: Sequence[str]) -> list[np.ndarray]:
    """The outputs called `names`, in that order, as numpy arrays."""
    missing = [n for n in names if n not in named]
    if missing:
        raise ValueError(f"the artifact has outputs {sorted(named)}, not {missing}")
    return [np.asarray(named[n]) for n in names]
