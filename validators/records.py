"""The codec every record of graphmint shares (validators.results holds the record set).

A record is a pydantic model. Built in code, or validated from a file as it is
(`model_validate`, the write schema), it is strict: a key it does not declare is a bug and raises
(keys derived from others, such as a route's worst error, are declared and derived again). Read
back from a file it is lenient (`Record.read`): keys that older or newer versions of graphmint wrote
and this one does not declare are dropped, so every older manifest still loads.
`Record.dump()` is the JSON a manifest holds (what a process keeps only for itself, such as logs, is
left out; `full=True` keeps it, for a run's own hand-over between processes). Formatting lives
elsewhere (pipeline.reports).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    model_serializer,
    model_validator,
)

__all__ = ["Record", "RelPath", "json_default"]


def json_default(obj: Any) -> Any:
    """JSON for what records and reports hold besides JSON's own types: numpy scalars, paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _relative(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not path or "\\" in path or PurePosixPath(path).is_absolute() or ".." in parts:
        raise ValueError(f"{path!r} is not a path inside the folder")
    return path


#: a path inside a published folder: relative, POSIX, without `..`
RelPath = Annotated[str, AfterValidator(_relative)]

#: the context under which `Record.read` validates: undeclared keys are dropped, not refused
_LENIENT = "lenient"
#: the context under which `Record.dump(full=True)` serializes: what a process keeps for itself too
_FULL = "full"


class Record(BaseModel):
    """The base of every record: strict when built, lenient when read, one codec (`dump`, `read`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)
    #: keys left out of the file while they hold None (optional keys later versions added)
    omitted_when_none: ClassVar[tuple[str, ...]] = ()
    #: fields a process keeps in memory and hands to another (`dump(full=True)`), never in a manifest
    private: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict):
            data = cls.gather(data)
            if info.context and info.context.get(_LENIENT):
                data = {k: v for k, v in data.items() if k in cls.model_fields}
            else:  # derived keys a file holds are declared; they are derived again, never taken
                data = {k: v for k, v in data.items() if k not in cls.model_computed_fields}
        return data

    @classmethod
    def gather(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Hook: `data` (as read) arranged into this record's fields before validation."""
        return data

    def arrange(self, data: dict[str, Any]) -> dict[str, Any]:
        """Hook: the serialized fields arranged as the file holds them."""
        return data

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not (info.context and info.context.get(_FULL)):
            for key in self.private:
                data.pop(key, None)
        for key in self.omitted_when_none:
            if data.get(key) is None:
                data.pop(key, None)
        return self.arrange(data)

    def dump(self, full: bool = False) -> dict[str, Any]:
        """The record as JSON values (enums as their values); with what stays in memory if `full`."""
        data: dict[str, Any] = json.loads(self.text(full))
        return data

    def text(self, full: bool = False, indent: int | None = 2) -> str:
        """The record as a file holds it: JSON, declared keys in their order."""
        data = self.model_dump(mode="python", context={_FULL: full})
        return json.dumps(data, indent=indent, default=json_default) + "\n"

    @classmethod
    def read(cls, data: Any) -> Any:
        """`data` (parsed JSON) as this record, leniently: undeclared keys are dropped."""
        return cls.model_validate(data, context={_LENIENT: True})
