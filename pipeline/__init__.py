"""graphmint: export eager models to static graphs and prove, from disk, that they compute the same thing.

Importing this package loads neither PyTorch nor TensorFlow; frameworks load when a model needs them.
"""

from graphmint.pipeline.errors import (
    ConfigError,
    GraphmintError,
    InputMismatchError,
    ModelLoadError,
    SpecError,
    UsageError,
)
from graphmint.pipeline.run.executors import run_models
from graphmint.pipeline.run.results import ModelResult, RouteResult
from graphmint.pipeline.run.stages import RunOptions, run_model
from graphmint.pipeline.spec.config import load_config
from graphmint.pipeline.spec.inputs import GridPoint, make_inputs, shape_grid
from graphmint.pipeline.spec.specs import (
    DimRange,
    InputSpec,
    ModelSpec,
    ValueRange,
    make_model_spec,
    parse_input_spec,
)

__all__ = [
    "ConfigError",
    "DimRange",
    "GraphmintError",
    "GridPoint",
    "InputMismatchError",
    "InputSpec",
    "ModelLoadError",
    "ModelResult",
    "ModelSpec",
    "RouteResult",
    "RunOptions",
    "SpecError",
    "UsageError",
    "ValueRange",
    "load_config",
    "make_inputs",
    "make_model_spec",
    "parse_input_spec",
    "run_model",
    "run_models",
    "shape_grid",
]
