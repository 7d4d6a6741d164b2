"""Typed results of a run: one per route, one per model. Formatting lives in pipeline.reports.

A model's result is its manifest (pipeline.publish.manifest.ModelManifest) and what the run keeps
besides: where it was published, whether from the cache, and every route's log (`dump(full=True)`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from graphmint.pipeline.publish.manifest import ModelManifest, ModelSource
from graphmint.validators.results import FileEntry, Rejected, RouteResult

__all__ = ["FileEntry", "ModelResult", "ModelSource", "Rejected", "RouteResult"]


class ModelResult(ModelManifest):
    """A model's run: its manifest, and where it was published."""

    published: Path | None = None
    #: published again from the cache: nothing that decides the result changed since it was run
    cached: bool = False
    private: ClassVar[tuple[str, ...]] = ("published", "cached")

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.routes)

    @property
    def ref(self) -> str:
        """The model's `module:callable` ("" where the manifest names none)."""
        return self.model.ref if self.model else ""

    @property
    def seed(self) -> int:
        return self.model.seed if self.model else 0

    @property
    def float64_reason(self) -> str:
        """Why no float64 copy judged the model ("" where one did)."""
        return "" if self.float64_reference == "ok" else self.float64_reference
