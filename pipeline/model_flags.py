"""The flags of `graphmint export` and `graphmint explain`: the model, where it comes from, and how it
is checked (pipeline.arguments builds the rest of the command line)."""

from __future__ import annotations

import argparse
from pathlib import Path

from graphmint.pipeline import values

__all__ = ["add_model_flags"]


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """The model and how it is checked: what `export` and `explain` take."""
    parser.add_argument(
        "ref",
        help="the model: module:callable (a function or class that builds it), a transformers folder "
        "(save_pretrained), a .keras file, or a keras-hub preset folder (save_to_preset)",
    )
    parser.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a keyword argument of the callable, its value as JSON (10, 0.5, true, [1,2]) or else "
        "as text (repeat for several)",
    )
    parser.add_argument(
        "--weights",
        metavar="FILE",
        help="weights loaded strictly into the built model: .safetensors or a .pt/.pth state dict "
        "(PyTorch), .weights.h5 (Keras)",
    )
    parser.add_argument(
        "--custom-objects",
        metavar="MODULE",
        help="a module imported before a .keras file or preset is loaded: it registers the file's "
        "custom classes (@keras.saving.register_keras_serializable)",
    )
    parser.add_argument(
        "--trust",
        action="store_true",
        help="load a model whose files run code when loaded (a pickled module, a Lambda layer's "
        "Python code, a transformers folder's own code): only for files you trust",
    )
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="SPEC",
        help="an input, name:dtype[d0,d1,...] (repeat for several; optional for Keras "
        "models with known input shapes)",
    )
    parser.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="N=A..B",
        help="range of a dynamic dim, inclusive; N=A..B@E also picks the traced size",
    )
    parser.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="N=A..B",
        help="value range of an integer input, inclusive",
    )
    parser.add_argument(
        "--routes", type=values.names, help="comma-separated routes (default: the framework's)"
    )
    parser.add_argument("--name", help="folder name under --out (default: the callable's name)")
    parser.add_argument(
        "--generator",
        metavar="MODULE:CALLABLE",
        help="makes inputs that need structure: fn(shapes, rng) -> dict",
    )
    parser.add_argument("--seed", type=values.seed, default=0, help="seed for weights and inputs (default 0)")
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="your own samples, checked beside the seeded grid: .npz files (an array per input) "
        "or test_data_set_N folders",
    )
    parser.add_argument(
        "--atol",
        type=values.tolerance,
        help="absolute tolerance for every output (judges with --rule tolerance)",
    )
    parser.add_argument(
        "--rtol",
        type=values.tolerance,
        help="relative tolerance for every output (judges with --rule tolerance)",
    )
    parser.add_argument(
        "--rule",
        choices=("noise", "scaled", "tolerance"),
        help="what gates a float output: its error against a float64 copy of the model within a multiple "
        "of eager float32's own (noise), atol/rtol at the output's scale (scaled), or atol/rtol per "
        "element (tolerance); default: tolerance with --atol/--rtol, else noise",
    )
