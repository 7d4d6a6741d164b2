"""Routes `onnx-fp16`, `onnx-int8-dynamic`, `onnx-int8-static` (opt-in, both frameworks): the float32
ONNX file of the framework's `onnx` route, converted (exporters._onnx_precision), run in ONNX Runtime
and judged by the precision's accuracy budget.

Each route's chain is the plain conversion first, then the same conversion with the layers that lose
the most kept in float (what was kept and why is in the manifest's `reduced_precision`): the pipeline
moves to the retry when the plain file misses its budget against eager, and records why, as it does
for the ONNX exporter's fallback.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from graphmint.exporters import onnx_tf, onnx_torch
from graphmint.exporters._onnx_precision import CONVERSIONS, ROUNDS, Conversion, keep_float, name_nodes
from graphmint.exporters.base import CapturedLog, ExportContext, Exporter, Made, Route

__all__ = ["ROUTES"]


class Reduced(Exporter):
    """The float32 file from `base` (a strategy of the framework's onnx route), then `conversion`."""

    package = "onnxruntime"
    format = "onnx"

    def __init__(self, base: Exporter, conversion: Conversion, rounds: int) -> None:
        self.base, self.conversion, self.rounds = base, conversion, rounds
        self.tool = conversion.tool

    def label(self) -> str:
        kept = ", worst layers kept in float" if self.rounds else ""
        return f"{self.base.label()} + {self.conversion.tool}{kept}"

    def capture(self) -> contextlib.AbstractContextManager[CapturedLog]:
        return self.base.capture()

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import onnx

        assert path is not None
        source = path.with_name("float32.onnx")
        try:
            made = self.base.export(ctx, source) or Made()
            model = onnx.load(str(source))
            name_nodes(model)
            onnx.save(model, str(source))
            targets = {o: float(b["snr_db"]) for o, b in ctx.budgets.items() if "snr_db" in b}
            diagnosis = keep_float(self.conversion, source, path, ctx, targets, self.rounds)
        finally:
            for leftover in path.parent.glob("float32.onnx*"):
                leftover.unlink()
        return Made(details={**made.details, "reduced_precision": diagnosis.to_json()})


def _route(framework: str, base: Route, conversion: str) -> Route:
    conv = CONVERSIONS[conversion]
    strategies = tuple(
        (f"{label}+{conversion}{'+keep-float' if rounds else ''}", Reduced(exporter, conv, rounds))
        for label, exporter in base.strategies
        if isinstance(exporter, Exporter)
        for rounds in (0, ROUNDS)
    )
    return Route(
        name=f"onnx-{conversion}",
        framework=framework,
        strategies=strategies,
        default=False,
        description=f"ONNX {conv.precision} ({conv.tool}) in ONNX Runtime, judged by its accuracy budget",
        precision=conv.precision,
    )


#: (framework, route name) -> route
ROUTES: dict[tuple[str, str], Route] = {
    (framework, f"onnx-{conversion}"): _route(framework, base, conversion)
    for framework, base in (("torch", onnx_torch.ROUTE), ("tensorflow", onnx_tf.ROUTE))
    for conversion in CONVERSIONS
}
