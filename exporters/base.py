"""What every exporter shares: the export context, the artifact it writes, and the route it serves.

An exporter is a *strategy*: a callable from an `ExportContext` to an `ExportResult` that returns its
failure instead of raising it. `Exporter` owns that skeleton (capture what the toolchain prints and
logs, turn an exception into a one-line reason, label the artifact with the exporter's version); a
route module only implements `Exporter.export`. A `Route` is an ordered fallback chain of
strategies; the pipeline tries them in turn and records why each rejected candidate was rejected.
An exporter names the format it writes (exporters.formats); its runner and file name, and its route's
runner, follow from that format, and one that contradicts it raises FormatError at import.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from graphmint.exporters.capture import CapturedLog, captured_output, not_installed
from graphmint.exporters.formats import FORMATS, FormatError

__all__ = [
    "Artifact",
    "CapturedLog",
    "ExportContext",
    "ExportResult",
    "ExportState",
    "Exporter",
    "Made",
    "NotApplicable",
    "Precision",
    "Route",
    "Strategy",
    "Unsupported",
    "captured_output",
    "clean_text",
    "first_line",
]


@dataclass(frozen=True)
class ExportContext:
    """The eager model and what an exporter needs to know about its inputs and outputs."""

    model: Any
    framework: str
    workdir: Path
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    example_inputs: Mapping[str, np.ndarray]
    #: per input, per axis: (dim name, min, max) for every dynamic dim
    dynamic_axes: Mapping[str, Mapping[int, tuple[str, int, int]]]
    dtypes: Mapping[str, str]
    route: str = ""
    #: inputs a quantizer calibrates on and a precision retry measures with (the grid's points)
    calibration: tuple[Mapping[str, np.ndarray], ...] = ()
    #: per output, what a reduced-precision route must reach (its budget as data: snr_db, cosine, ...)
    budgets: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: write what the format's tracer needs beside the artifact (Format.tracer: ExecuTorch's ETRecord)
    debug_record: bool = False

    def artifact(
        self,
        *,
        exporter: str,
        runner: str,
        path: Path | None,
        in_process: Any = None,
        details: dict[str, Any] | None = None,
    ) -> Artifact:
        """An artifact of this context's route, carrying its input/output names and dynamic axes."""
        return Artifact(
            route=self.route,
            exporter=exporter,
            runner=runner,
            path=path,
            input_names=self.input_names,
            output_names=self.output_names,
            dynamic_axes={n: {a: d[0] for a, d in axes.items()} for n, axes in self.dynamic_axes.items()},
            in_process=in_process,
            details=details or {},
        )


@dataclass
class Artifact:
    """A static form of the model, as an exporter left it.

    `path` is the file (or folder) a runner loads; `in_process` holds an object for routes that have
    no file (torch.compile). Validators only ever read `path`, never exporter objects, otherwise.
    """

    route: str
    exporter: str
    runner: str
    path: Path | None
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    #: per input, per axis: the name of each declared dynamic dim
    dynamic_axes: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    in_process: Any = None
    details: dict[str, Any] = field(default_factory=dict)
    #: modules a process imports before it loads the artifact: the model's own module, which may
    #: register what the file refers to (custom operators, pytree node types)
    imports: tuple[str, ...] = ()


class ExportState(StrEnum):
    EXPORTED = "exported"
    FAILED = "failed"
    #: the strategy does not apply to this model (not "broke"): the route is skipped with the reason
    SKIPPED = "skipped"
    #: a known limit of the toolchain (exporters.base.Unsupported): unsupported, even when named
    UNSUPPORTED = "unsupported"


@dataclass
class ExportResult:
    """What one strategy did: an artifact (exported), or the reason there is none (failed, skipped)."""

    state: ExportState
    artifact: Artifact | None = None
    reason: str = ""
    log: str = ""
    #: it did not finish within its time limit and was stopped
    overran: bool = False

    @classmethod
    def failed(cls, reason: str, log: str = "", overran: bool = False) -> ExportResult:
        return cls(ExportState.FAILED, reason=reason, log=log, overran=overran)


Strategy = Callable[[ExportContext], ExportResult]


class NotApplicable(Exception):
    """Raised by `Exporter.export`: the strategy does not apply to this model; the message says why."""


class Unsupported(Exception):
    """Raised by `Exporter.export`: a known limit of the toolchain keeps this form from this model."""


@dataclass(frozen=True)
class Made:
    """What `Exporter.export` made besides its file: an object checked in-process, manifest details."""

    in_process: Any = None
    details: dict[str, Any] = field(default_factory=dict)


#: the log of the export running in this context (Exporter.logged)
_CAPTURE: contextvars.ContextVar[CapturedLog | None] = contextvars.ContextVar(
    "graphmint_capture", default=None
)


class Exporter(ABC):
    """One strategy of a route. The base runs the skeleton every strategy shares: it captures what the
    toolchain prints, warns and logs (`capture`), calls `export`, and returns an `ExportResult`:
    `exported` with an artifact labelled `tool (package version)`, `failed` with `reason(exc)` for any
    exception, `skipped` for `NotApplicable`. Subclasses set the class attributes and implement `export`.
    """

    #: what made the file, as the manifest's `exporter` names it (the package's version is appended);
    #: a class attribute, which a strategy that wraps another's conversion sets per instance (onnx_reduced)
    tool: str
    #: the distribution whose version labels the artifact ("torch", "tensorflow", "tf2onnx")
    package: ClassVar[str]
    #: the format `export` writes, a name in exporters.formats.FORMATS
    format: ClassVar[str]
    #: the runner that loads the artifact: the format's deploying runner, unless the class names another
    runner: ClassVar[str]
    #: the file (or folder) `export` writes in the work folder: the format's, unless the class names
    #: another; None for a format that leaves no file
    filename: ClassVar[str | None] = None
    #: the modules `export` imports beyond the framework: without one, the strategy does not apply
    #: here (skipped, naming what is missing)
    requires: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "format" not in own and "runner" not in own:
            return  # a shared base (TorchExporter), or a strategy that keeps its parent's format
        if not hasattr(cls, "format"):
            raise FormatError(f"exporter {cls.__qualname__} names a runner but no format")
        fmt = FORMATS[cls.format]
        cls.runner = own.get("runner", fmt.runner)
        fmt.check_deploys(cls.runner, f"exporter {cls.__qualname__}")
        if "filename" not in own:
            cls.filename = fmt.filename
        elif (own["filename"] is None) != fmt.in_process:
            raise FormatError(f"exporter {cls.__qualname__}: {own['filename']!r} is no {fmt.name} file")

    @abstractmethod
    def export(self, ctx: ExportContext, path: Path | None) -> Made | None:
        """Write the static form to `path` (or make it in-process); raise on failure."""

    def capture(self) -> contextlib.AbstractContextManager[CapturedLog]:
        """Where the toolchain's output goes while it runs: the route's log."""
        return captured_output()

    @staticmethod
    def logged(logger: str) -> list[str]:
        """Inside `export`: what `logger` (and its children) has logged to the route's log so far."""
        log = _CAPTURE.get()
        return log.messages(logger) if log is not None else []

    def reason(self, exc: Exception) -> str:
        """The one line a failure is reported with."""
        return first_line(exc)

    def label(self) -> str:
        return self.tool

    def __call__(self, ctx: ExportContext) -> ExportResult:
        missing = not_installed(self.requires)
        if missing:
            return ExportResult(ExportState.SKIPPED, reason=f"{self.label()} needs {missing}")
        path = ctx.workdir / self.filename if self.filename else None
        with self.capture() as log:
            token = _CAPTURE.set(log)
            try:
                made = self.export(ctx, path) or Made()
            except (NotApplicable, Unsupported) as exc:
                state = ExportState.SKIPPED if isinstance(exc, NotApplicable) else ExportState.UNSUPPORTED
                return ExportResult(state, reason=str(exc), log=log.getvalue())
            except Exception as exc:  # the whole message goes to the log: the reason is its first line
                log.write(f"{type(exc).__name__}: {clean_text(str(exc))}\n")
                return ExportResult.failed(self.reason(exc), log.getvalue())
            finally:
                _CAPTURE.reset(token)
        version = getattr(importlib.import_module(self.package), "__version__", "?")
        artifact = ctx.artifact(
            exporter=f"{self.label()} ({self.package} {version})",
            runner=self.runner,
            path=path,
            in_process=made.in_process,
            details=made.details,
        )
        return ExportResult(ExportState.EXPORTED, artifact=artifact, log=log.getvalue())


class Precision(StrEnum):
    """The numeric precision a route's artifact computes in (its outputs stay float32)."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"


@dataclass(frozen=True)
class Route:
    """A named static form: its framework, fallback chain of strategies, and the runner that checks it.

    `format` is what its strategies write (each declares it); `runner` is that format's deploying
    runner unless the route names another of its deploying runners. A route whose strategies write
    different formats, or whose runner or `in_process` contradicts its format, raises FormatError.
    """

    name: str
    framework: str
    #: (candidate name, strategy), in the order they are tried
    strategies: tuple[tuple[str, Strategy], ...]
    runner: str = ""
    default: bool = True
    description: str = ""
    #: True for routes that leave no file and are checked on the object the exporter made; they run in
    #: the pipeline's process. Every other route exports in a fresh process of its own.
    in_process: bool = False
    #: fp16 and int8 routes are judged by an accuracy budget (validators.budget), not float32's noise
    precision: Precision = Precision.FP32
    #: why the converter may leave a reduced-precision file with nothing reduced, where that is known
    unreduced: str = ""
    #: the format its artifact has (exporters.formats), from its strategies' own declarations
    format: str = ""

    def __post_init__(self) -> None:
        who = f"route {self.framework}/{self.name}"
        declared = {f for _, s in self.strategies if (f := getattr(s, "format", None))} | {self.format} - {""}
        if len(declared) != 1:
            what = f"formats {sorted(declared)}" if declared else "no format"
            raise FormatError(f"{who}: its strategies write {what}; a route writes one format")
        fmt = FORMATS[declared.pop()]
        runner = self.runner or fmt.runner
        fmt.check_deploys(runner, who)
        for label, strategy in self.strategies:
            own = getattr(strategy, "runner", runner)
            if own != runner:
                raise FormatError(f"{who}: strategy {label!r} is loaded by {own!r}, the route by {runner!r}")
        if self.in_process != fmt.in_process:
            raise FormatError(f"{who}: in_process={self.in_process}, format {fmt.name!r}: {fmt.description}")
        object.__setattr__(self, "format", fmt.name)
        object.__setattr__(self, "runner", runner)


#: terminal colour and cursor codes (torch.export and Dynamo colour some of their messages)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
#: lines that only point elsewhere, never the cause itself
_FILLER = re.compile(
    r"^(the above exception was the direct cause|during handling of the above exception|"
    r"traceback \(most recent call last\)|please check the warnings above|"
    r"set torch_logs=|for more information, run with|from user code:|while executing)",
    re.IGNORECASE,
)


def clean_text(text: str) -> str:
    """`text` without ANSI codes."""
    return _ANSI.sub("", text)


def _message_line(text: str) -> str:
    lines = [ln.strip() for ln in clean_text(text).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not _FILLER.match(ln)]
    return (useful or lines or [""])[0]


#: exceptions that code raises and catches to look something up: one being handled when another is
#: raised (its implicit context) is no cause of that other one
_LOOKUPS = (LookupError, NameError, AttributeError, ImportError, StopIteration)


def _root(exc: BaseException) -> BaseException:
    """The innermost exception of a chain (`raise ... from`, or raised while handling another, unless
    what was being handled was a lookup that failed: code probes with those, and they cause nothing)."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__
        if inner is None and not exc.__suppress_context__ and not isinstance(exc.__context__, _LOOKUPS):
            inner = exc.__context__
        if inner is None or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


def first_line(exc: BaseException | str, limit: int = 300) -> str:
    """A one-line reason, root cause first: the innermost exception's first telling line, with its
    type, then the outer one's where it says something else. No ANSI codes."""
    if isinstance(exc, BaseException):
        root = _root(exc)
        text = f"{type(root).__name__}: {_message_line(str(root))}".rstrip(": ")
        if root is not exc:
            outer = _message_line(str(exc))
            if outer and outer not in text:
                text += f" (raised as {type(exc).__name__}: {outer})"
    else:
        text = _message_line(exc)
    return text if len(text) <= limit else text[: limit - 1] + "…"
