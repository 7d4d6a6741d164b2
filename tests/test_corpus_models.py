"""Every corpus.toml model builds from its library's code, runs eagerly, and gives finite outputs that vary.

Nothing is exported here: this only checks that the corpus keeps the model contract (a zero-argument
factory, inputs as declared, deterministic given the seed) and that each output is worth comparing.
The larger models are marked `corpus` (deselect them with `-m "not corpus"`); the rest are fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphmint.models import corpus_files
from graphmint.models.frameworks import Framework, flatten_outputs
from graphmint.pipeline.run.reference import with_inputs
from graphmint.pipeline.spec.config import load_config
from graphmint.pipeline.spec.inputs import make_inputs, shape_grid
from graphmint.pipeline.spec.loader import build_model
from graphmint.pipeline.spec.specs import ModelSpec
from tests.conftest import ROOT

CORPUS = ROOT / "corpus.toml"
SPECS = load_config(CORPUS)
#: the folder the corpus's models given by path are written to (models.corpus_files)
HELD = ROOT / corpus_files.FOLDER

#: quick to build and run (well under a second each); the others carry the `corpus` mark
FAST = {
    "HFConvNeXt",
    "HFViT",
    "HFSwin",
    "HFBert",
    "HFLlama",
    "HFWav2Vec2",
    "KerasHubBert",
    "KerasHubGemma",
    "KerasConvBiLSTM",
    "KerasMaskedBiGRU",
    "KerasTimeDistributed",
    "KerasCustomLayer",
    "KerasDictOutputs",
    "KerasSubclassed",
}
#: the third-party libraries each factory needs beyond its framework: a test without them is skipped
REQUIRES = {
    "graphmint.models.corpus_torch": ("torch", "transformers"),
    "graphmint.models.corpus_keras": ("tensorflow", "keras"),
    "graphmint.models.corpus_keras:bert_backbone": ("tensorflow", "keras", "keras_hub"),
    "graphmint.models.corpus_keras:gemma_backbone": ("tensorflow", "keras", "keras_hub"),
}
#: an output whose two answers differ by less than this is taken as constant
MIN_CHANGE = 1e-4


def _call(framework: Framework, model: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the eager model as the contract says: positionally, in the declared order.

    A Keras functional model over a dict of inputs (keras-hub's backbones) is given them by name.
    """
    if framework.name == "torch":
        import torch

        with torch.inference_mode():
            out = model(*(torch.from_numpy(v) for v in feeds.values()))
        return flatten_outputs(out, lambda t: isinstance(t, torch.Tensor), lambda t: t.numpy())
    import tensorflow as tf

    try:
        structure = model.input
    except (AttributeError, ValueError):  # a subclassed model has no symbolic inputs
        structure = None
    args = list(feeds.values())
    inputs = dict(feeds) if isinstance(structure, dict) else args[0] if len(args) == 1 else args
    out = model(inputs, training=False)
    return flatten_outputs(out, tf.is_tensor, lambda t: np.asarray(t))


def _held(spec: ModelSpec) -> str | None:
    """The name under corpus-models/ of a model given by path (None for a factory)."""
    path = Path(spec.ref)
    return path.name if path.parent == HELD else None


def _requirements(spec: ModelSpec) -> tuple[str, ...]:
    held = _held(spec)
    if held is not None:
        return corpus_files.FILES[held][1]
    return REQUIRES.get(spec.ref) or REQUIRES[spec.ref.partition(":")[0]]


def test_corpus_is_large_and_every_entry_is_tested() -> None:
    assert len(SPECS) >= 22
    names = {s.name for s in SPECS}
    assert names >= FAST, f"FAST names models the corpus lacks: {sorted(FAST - names)}"
    assert all(s.ref.partition(":")[0] in REQUIRES or _held(s) in corpus_files.FILES for s in SPECS)
    # at least three are given as the folders and files users hold, not as factories
    assert len([s for s in SPECS if _held(s) is not None]) >= 3


# keras's attention warns, rightly and harmlessly, that a softmax over one key (seq=1) is always 1
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis:UserWarning")
@pytest.mark.parametrize(
    "spec",
    [pytest.param(s, id=s.name, marks=() if s.name in FAST else pytest.mark.corpus) for s in SPECS],
)
def test_corpus_model(spec: ModelSpec) -> None:
    for package in _requirements(spec):
        pytest.importorskip(package, reason=f"{spec.name} is built with {package}, which is not installed")
    held = _held(spec)
    if held is not None:  # written as `make corpus` writes it: by the library's own save function
        corpus_files.write(HELD, (held,))
    framework, model = build_model(spec.model_ref, spec.seed)
    spec = with_inputs(spec, framework, model)
    grid = shape_grid(spec)
    first = _call(framework, model, make_inputs(spec, grid[0], 0))
    second = _call(framework, model, make_inputs(spec, grid[0], 1))
    assert first, f"{spec.name} returned no tensor"
    assert first.keys() == second.keys()
    for name, value in first.items():
        assert np.isfinite(value).all(), f"{spec.name} output {name!r} is not finite"
        change = float(np.abs(value - second[name]).max())
        assert change > MIN_CHANGE, f"{spec.name} output {name!r} hardly depends on the input ({change:.2g})"

    # the same seed builds the same weights (each export builds the model again in a fresh process)
    _, again = build_model(spec.model_ref, spec.seed)
    for name, value in _call(framework, again, make_inputs(spec, grid[0], 0)).items():
        np.testing.assert_allclose(value, first[name], rtol=1e-5, atol=1e-5, err_msg=f"{spec.name} {name}")

    # every dynamic dim at its other sizes (min, max, 1 and a prime): the outputs stay finite
    for index, point in enumerate(grid[1:], start=2):
        for name, value in _call(framework, model, make_inputs(spec, point, index)).items():
            assert np.isfinite(value).all(), f"{spec.name} output {name!r} is not finite at {point.label}"
