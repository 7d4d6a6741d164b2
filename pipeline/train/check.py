"""`graphmint train-check`: every form of a model's training step, N steps on one data stream, judged
step by step against a float64 eager run (pipeline.train.compare).

Each form runs in a fresh child process (validators.children), where the model is built from its
reference and seed: every form starts from the same weights, and one form's compiler state (Dynamo's
caches, XLA's) cannot reach another. A form that raises or crashes is an error with its reason; a
form whose numbers leave their bound fails, naming the first step and parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphmint.pipeline.errors import SpecError
from graphmint.pipeline.run.verdicts import known_verdict
from graphmint.pipeline.spec.loader import build_model
from graphmint.pipeline.spec.specs import ModelSpec
from graphmint.pipeline.train.compare import FormResult, judge
from graphmint.pipeline.train.recipe import Recipe, batches
from graphmint.pipeline.train.steps import FORMS, REFERENCE, Trace, trace_form
from graphmint.validators.children import ChildError, default_pool
from graphmint.validators.results import Status

__all__ = ["TrainResult", "train_check"]


@dataclass
class TrainResult:
    """A model's training-step check: the recipe, every form's verdict, each form's loss per step."""

    name: str
    ref: str
    framework: str
    recipe: Recipe
    forms: list[FormResult] = field(default_factory=list)
    #: per form, the loss at every step (eager and float64 included), for the plot
    losses: dict[str, list[float]] = field(default_factory=dict)
    #: why there is no float64 reference ("" where there is one)
    reference_reason: str = ""
    #: layers that draw random numbers in training, switched off in every form (pipeline.train.steps)
    quieted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.status in (Status.PASSED, Status.SKIPPED) for f in self.forms)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ref": self.ref,
            "framework": self.framework,
            "ok": self.ok,
            "recipe": self.recipe.to_json(),
            "reference": "float64"
            if not self.reference_reason
            else f"eager float32 ({self.reference_reason})",
            "dropout_off": self.quieted,
            "losses": self.losses,
            "forms": [f.to_json() for f in self.forms],
        }


def _traced(
    spec: ModelSpec, framework: str, form: str, stream: Any, recipe: Recipe, timeout_s: float | None
) -> Trace:
    names = [i.name for i in spec.inputs]
    args = (spec.model_ref, spec.seed, framework, form, stream, recipe, names)
    try:
        trace: Trace = default_pool().call(trace_form, *args, name=f"train {form}", timeout_s=timeout_s)
    except ChildError as exc:
        return Trace(form, error=f"{exc.kind}: {exc.detail}" if exc.kind != "error" else exc.detail)
    return trace


def _known(verdict: FormResult, recipe: Recipe) -> FormResult:
    """A form the recipe lists as known to part from eager: skipped, saying why and what was seen."""
    why = recipe.known_failures.get(verdict.form)
    if why is not None:
        verdict.status, verdict.reason = known_verdict(
            verdict.status, f"in {verdict.form}: {verdict.reason}", why, "known divergence"
        )
    return verdict


def train_check(
    spec: ModelSpec,
    recipe: Recipe,
    forms: Sequence[str] | None = None,
    timeout_s: float | None = 600.0,
    progress: Callable[[str], None] = lambda line: None,
) -> TrainResult:
    """Run eager, float64 and every compiled form (or those in `forms`) of the model's step."""
    if not spec.inputs:
        raise SpecError(
            f"model {spec.name!r}: train-check needs its inputs declared (--input, or inputs = [...])"
        )
    built, _ = build_model(
        spec.model_ref, spec.seed, timeout_s
    )  # a model that does not build: one line, exit 2
    known = FORMS[built.name]
    wanted = [f for f in known[2:] if forms is None or f in forms]
    unknown = [f for f in [*(forms or ()), *recipe.known_failures] if f not in known[2:]]
    if unknown:
        raise SpecError(
            f"form {', '.join(unknown)} is not one of a {built.name} model's: {', '.join(known[2:])}"
        )
    stream = batches(spec, recipe)
    result = TrainResult(spec.name, spec.ref, built.name, recipe)
    default_pool().start({built.name})
    eager = _traced(spec, built.name, "eager", stream, recipe, timeout_s)
    if eager.error:
        raise SpecError(f"model {spec.name!r}: its eager training step fails: {eager.error}")
    reference: Trace | None = _traced(spec, built.name, REFERENCE, stream, recipe, timeout_s)
    assert reference is not None
    result.losses["eager"] = eager.loss
    result.quieted = eager.quieted
    if reference.error:
        result.reference_reason = f"no float64 copy: {reference.error}"
        reference = None
    else:
        result.losses[REFERENCE] = reference.loss
    progress(f"{spec.name} ({built.name}): eager {eager.seconds:.1f}s, {recipe.steps} steps")
    if eager.quieted:
        progress(f"  dropout off in {len(eager.quieted)} layer(s): no two forms draw the same random numbers")
    for form in wanted:
        trace = _traced(spec, built.name, form, stream, recipe, timeout_s)
        verdict = _known(judge(trace, eager, reference), recipe)
        result.forms.append(verdict)
        if not trace.error:
            result.losses[form] = trace.loss
        progress(
            f"  {spec.name} × {form}: {verdict.status} ({verdict.seconds:.1f}s) {verdict.reason}".rstrip()
        )
    return result
