"""The exception tree.

`UsageError` and its subclasses are the user's to fix: the CLI prints their message as one line and
exits 2. Anything else that escapes is a bug in graphmint and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "GraphmintError",
    "InputMismatchError",
    "ModelLoadError",
    "SpecError",
    "UsageError",
]


class GraphmintError(Exception):
    """Base of every error graphmint raises on purpose."""


class UsageError(GraphmintError):
    """Bad input from the user (exit code 2). The message says what was wrong and what to do."""


class SpecError(UsageError):
    """An input, dimension or value-range spec that does not parse or does not fit together."""


class ConfigError(UsageError):
    """A TOML config that cannot be read or holds an unknown or malformed field."""


class ModelLoadError(UsageError):
    """A `module:callable` that cannot be imported, called, or does not return a model."""


class InputMismatchError(UsageError):
    """The eager model rejects the inputs its spec declares."""
