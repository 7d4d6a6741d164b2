"""A route's verdict (validators.verdict, the one step that makes it), and whether the route is worth
explaining layer by layer."""

from __future__ import annotations

from graphmint.validators.results import ArtifactCheck, Stage, Status
from graphmint.validators.verdict import Verdict, data_dependent_branch, known_verdict

__all__ = ["data_dependent_branch", "explainable", "known_verdict"]


def explainable(verdict: Verdict, check: ArtifactCheck | None, known: bool, every: bool) -> bool:
    """A route that failed on numbers at the example point (`check`: its own runner's check), and is
    not a `known` failure; with `every`, any route whose artifact ran."""
    if every:
        return verdict.status in (Status.PASSED, Status.FAILED) and check is not None and bool(check.points)
    return (
        verdict.status == Status.FAILED
        and verdict.stage == Stage.COMPARE
        and check is not None
        and bool(check.points)
        and check.points[0].status == Status.FAILED
        and not known
    )
