"""Typed sub-records of a route's result: budgets, what a runtime measured, its files, and what each
format's exporter says about its artifact (`RouteDetails`, held beside the route's keys in a manifest)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from graphmint.validators.records import Record, RelPath

__all__ = [
    "BoundProbe",
    "BudgetLimits",
    "BudgetReached",
    "BundledCheck",
    "DivergenceRecord",
    "EventGap",
    "FileEntry",
    "LayerError",
    "OpsetUpgrade",
    "ReducedPrecision",
    "RouteDetails",
    "RuntimeFacts",
    "RuntimeTrace",
    "file_sha256",
]


class BudgetLimits(Record):
    """What a reduced-precision output must reach (validators.budget.Budget, as data)."""

    cosine: float
    snr_db: float
    max_abs: float
    topk: int = 1
    topk_agreement: float | None = None
    omitted_when_none: ClassVar[tuple[str, ...]] = ("topk_agreement",)


class BudgetReached(Record):
    """One output's budget, what it reached over the whole grid, and whether it holds."""

    budget: BudgetLimits
    cosine: float | None = None
    snr_db: float | None = None
    max_abs: float | None = None
    topk_agreement: float | None = None
    nonfinite: int = 0
    passed: bool
    omitted_when_none: ClassVar[tuple[str, ...]] = ("cosine", "snr_db", "max_abs", "topk_agreement")


class BoundProbe(Record):
    """One dynamic dim run one past the upper bound its file holds (the others at theirs): whether the
    runtime refused it, and what it said."""

    dim: str
    bound: int
    size: int
    refused: bool
    error: str = ""


class BundledCheck(Record):
    """The golden cases a bundled program carries, verified by its runtime's own bundled-program API
    at graphmint's tolerances: how many held, and the largest difference it saw."""

    file: str
    cases: int
    passed: int
    rtol: float
    atol: float
    max_abs_diff: float | None = None
    #: per case that did not hold, the runtime's error
    failures: list[str] = []
    omitted_when_none: ClassVar[tuple[str, ...]] = ("max_abs_diff",)


class RuntimeFacts(Record):
    """What a runtime measured while it served (a runner's `facts`)."""

    #: graphs torch.compile compiled again while the grid ran (a recompile per new shape)
    recompiles: int | None = None
    #: dynamic dims the loaded graph holds fixed, one line each
    frozen_dims: list[str] | None = None
    #: the precision the runtime reports it computes in (OpenVINO's INFERENCE_PRECISION_HINT, read back
    #: from the compiled model), as exporters.base.Precision names it
    inference_precision: str | None = None
    #: ExecuTorch: each dim one past its bound in the file, which the runtime must refuse
    bound_probes: list[BoundProbe] | None = None
    #: ExecuTorch: the bundled program's golden cases, verified by the runtime
    bundled_check: BundledCheck | None = None
    omitted_when_none: ClassVar[tuple[str, ...]] = (
        "recompiles",
        "frozen_dims",
        "inference_precision",
        "bound_probes",
        "bundled_check",
    )


class OpsetUpgrade(Record):
    """An ONNX file that its runtime refused at its opset, upgraded and checked at another."""

    from_opset: int | None = None
    to_opset: int
    converter: str
    original_load_error: str


class ReducedPrecision(Record):
    """What a reduced-precision conversion found and did: its SNR after each round of keeping layers in
    float, the layers it kept and why, and (fp16) the largest activation and the layers beyond fp16."""

    conversion: str
    #: per output, SNR (dB) against the float32 file after each round
    snr_db: list[dict[str, float]] = []
    #: the layers kept in float, worst first, with the SQNR of their output and the loss they added
    kept_float: list[dict[str, Any]] | None = None
    #: every layer the file keeps in float, as the converter named them
    kept: list[str] | None = None
    #: the op types the retry quantizes, where it quantizes only those
    quantized_ops: list[str] | None = None
    max_activation: dict[str, Any] | None = None
    overflow: list[str] | None = None
    why: str | None = None
    omitted_when_none: ClassVar[tuple[str, ...]] = (
        "kept_float",
        "kept",
        "quantized_ops",
        "max_activation",
        "overflow",
        "why",
    )


class LayerError(Record):
    """One layer's error at the grid point the first diverging layer was looked for."""

    layer: str
    kind: str
    max_abs_error: float | None = None
    noise_multiple: float | None = None
    passed: bool


class EventGap(Record):
    """One event of a runtime's own trace (an ExecuTorch delegate call or a portable op) against the same
    ops run ahead of time: whether its outputs agree at the tolerance, and the largest difference."""

    #: the ahead-of-time graph's ops the event computes, and the runtime's name for it
    aot_ops: list[str]
    runtime_ops: list[str]
    outputs: int
    max_abs_error: float | None = None
    passed: bool
    message: str = ""
    omitted_when_none: ClassVar[tuple[str, ...]] = ("max_abs_error",)


class RuntimeTrace(Record):
    """A runtime's events at one grid point, each judged against its ahead-of-time ops (the runtime's
    own debugger, validators.executorch_trace): where, inside the artifact, the runtime parts from
    the graph it was given."""

    tool: str
    point: str
    rtol: float
    atol: float
    events: list[EventGap] = []

    @property
    def first(self) -> EventGap | None:
        return next((e for e in self.events if not e.passed), None)

    def line(self) -> str:
        """What the trace says, in one sentence."""
        kinds = ", ".join(sorted({op for e in self.events for op in e.runtime_ops})) or "none"
        if not self.events:
            return f"the runtime's trace at {self.point} pairs no event with its ahead-of-time ops"
        first = self.first
        if first is None:
            worst = max((e.max_abs_error or 0.0) for e in self.events)
            return (
                f"at the runtime's own granularity ({self.tool}, {len(self.events)} events: {kinds}) "
                f"every event at {self.point} computes what its ahead-of-time ops compute (largest "
                f"difference {worst:.3g}): where the layers part from eager, the difference is in the "
                "exported graph, not the runtime"
            )
        at = self.events.index(first) + 1
        error = f"max abs error {first.max_abs_error:.3g}" if first.max_abs_error is not None else ""
        why = "; ".join(w for w in (error, first.message) if w)
        return (
            f"at the runtime's own granularity ({self.tool}), event {at} of {len(self.events)} at "
            f"{self.point} is the first the runtime computes differently from its ahead-of-time ops: "
            f"{'/'.join(first.runtime_ops)} holding {', '.join(first.aot_ops)} ({why}; tolerance rtol "
            f"{self.rtol:g}, atol {self.atol:g})"
        )


class DivergenceRecord(Record):
    """Each layer's error at one grid point (pipeline.run.explain): the first that diverges, the last
    that matched, and whether the per-layer probe reproduced the route's failure at all."""

    point: str
    reproduced: bool = True
    first: str | None = None
    last_matching: str | None = None
    layers: list[LayerError] = []
    #: the runtime's own trace at the same point, where its format has a tracer
    runtime_trace: RuntimeTrace | None = None
    omitted_when_none: ClassVar[tuple[str, ...]] = ("runtime_trace",)


class RouteDetails(Record):
    """What a route's exporter and runtime say about its artifact, by format; the manifest holds each
    beside the route's other keys, where it is known."""

    # ONNX: the opset, graph inputs the converter pruned, how many XLA-compiled calls it inlined,
    # an upgrade
    opset: int | None = None
    pruned_inputs: list[str] | None = None
    inlined_xla_calls: int | None = None
    opset_upgrade: OpsetUpgrade | None = None
    # SavedModel: the serving signature
    signature: str | None = None
    # TFLite: the op sets allowed, the quantization asked for
    ops: str | None = None
    quantization: str | None = None
    # reduced precision: what a retry kept in float and why, the reduced tensors the file holds, and
    # the inputs a static quantizer calibrated on
    reduced_precision: ReducedPrecision | None = None
    reduced_tensors: int | None = None
    calibration_inputs: int | None = None
    # torch.compile: its graphs and graph breaks, how its dims were compiled, recompiles while it served
    graphs: int | None = None
    graph_breaks: int | None = None
    graph_break_reasons: list[str] | None = None
    dynamic_dims: str | None = None
    recompiles: int | None = None
    frozen_dims: list[str] | None = None
    # OpenVINO: whether the IR was saved with float constants compressed to f16 (never, here), and the
    # precision the compiled model reports it computes in
    compress_to_fp16: bool | None = None
    inference_precision: str | None = None
    # ExecuTorch: each dim's upper bound the .pte holds, what XNNPACK took (its delegates, the nodes in
    # them, the ops left to portable kernels), the bundled program beside it; the bound probes and the
    # bundled check its runtime ran
    dim_bounds: dict[str, int] | None = None
    xnnpack_delegates: int | None = None
    delegated_nodes: int | None = None
    undelegated_ops: list[str] | None = None
    bundled_program: str | None = None
    bound_probes: list[BoundProbe] | None = None
    bundled_check: BundledCheck | None = None
    # the first diverging layer (pipeline.run.explain), and the upstream issue a known failure names
    divergence: DivergenceRecord | None = None
    upstream: str | None = None
    omitted_when_none: ClassVar[tuple[str, ...]] = (
        "opset",
        "pruned_inputs",
        "inlined_xla_calls",
        "opset_upgrade",
        "signature",
        "ops",
        "quantization",
        "reduced_precision",
        "reduced_tensors",
        "calibration_inputs",
        "graphs",
        "graph_breaks",
        "graph_break_reasons",
        "dynamic_dims",
        "recompiles",
        "frozen_dims",
        "compress_to_fp16",
        "inference_precision",
        "dim_bounds",
        "xnnpack_delegates",
        "delegated_nodes",
        "undelegated_ops",
        "bundled_program",
        "bound_probes",
        "bundled_check",
        "divergence",
        "upstream",
    )


class FileEntry(Record):
    """A file of a published folder: its path there, its sha256 and size."""

    model_config = ConfigDict(frozen=True)
    path: RelPath
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    #: why two builds of the same inputs cannot give this file's bytes again (None: they do)
    unreproducible: str | None = None
    omitted_when_none: ClassVar[tuple[str, ...]] = ("unreproducible",)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (a FileEntry's), read a MiB at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
