"""Routes `tflite-fp16`, `tflite-int8-dynamic`, `tflite-int8` (opt-in): the TFLite converter of the
`tflite` route with post-training quantization, inputs and outputs kept float32, judged by the
precision's accuracy budget.

- fp16: weights stored as float16 (`target_spec.supported_types = [tf.float16]`);
- int8-dynamic: dynamic range quantization (weights int8, activations quantized at run time);
- int8: full integer quantization, calibrated on the context's inputs (`representative_dataset`);
  ops without an int8 kernel stay float. Its chain ends with a retry for a file that misses its
  budget: TFLite's QuantizationDebugger measures each layer's quantization error (RMSE over the
  quantization step, its `rmse/scale`), and the worst layers are kept in float (`denylisted_nodes`)
  one more per round until every output's SNR against the eager model reaches its budget's
  (+3 dB); what was kept and why goes to the manifest's `reduced_precision`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.exporters._tf import serving_function, trackable
from graphmint.exporters.base import ExportContext, Made, Precision, Route
from graphmint.exporters.snr import snr_db
from graphmint.exporters.tflite import BUILTINS, WITH_SELECT_TF_OPS, Convert

#: rounds of the retry (one more layer kept in float each), and its aim above each output's budget
ROUNDS, MARGIN_DB = 4, 3.0

__all__ = ["ROUTES"]


#: rows the calibrator and the debugger are given at most
CALIBRATION_ROWS = 256


def example_shaped(ctx: ExportContext) -> list[dict[str, np.ndarray]]:
    """The calibration inputs as samples of one shape: TFLite's calibrator and debugger size a model's
    inputs once, at the first sample (a multi-input model fed other sizes later fails). Every input
    of every grid point that differs from the example only in its first axis is cut into rows; a
    point that differs elsewhere (a longer sequence) is left out."""
    feeds = [dict(f) for f in ctx.calibration] or [dict(ctx.example_inputs)]
    shapes = {n: v.shape[1:] for n, v in feeds[0].items()}
    rows: list[dict[str, np.ndarray]] = []
    for feed in feeds:
        if {n: v.shape[1:] for n, v in feed.items()} != shapes or len(
            {v.shape[0] for v in feed.values()}
        ) != 1:
            continue
        count = next(iter(feed.values())).shape[0]
        rows.extend({n: v[i : i + 1] for n, v in feed.items()} for i in range(count))
    return rows[:CALIBRATION_ROWS] or feeds[:1]


class Quantized(Convert):
    """The TFLite converter with post-training quantization `kind` (fp16, int8-dynamic, int8)."""

    def __init__(self, ops: tuple[str, ...], skip_unsupported: bool, kind: str) -> None:
        super().__init__(ops, skip_unsupported)
        self.kind = kind

    def label(self) -> str:
        return f"{super().label()}+{self.kind}"

    def configure(self, converter: Any, ctx: ExportContext) -> dict[str, Any]:
        import tensorflow as tf

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if self.kind == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        elif self.kind == "int8":
            feeds = example_shaped(ctx)

            def representative() -> Iterator[dict[str, Any]]:
                for feed in feeds:  # by name: the file's input order is not the model's
                    yield {name: feed[name] for name in ctx.input_names}

            converter.representative_dataset = representative
            return {"quantization": self.kind, "calibration_inputs": len(feeds)}
        return {"quantization": self.kind}


def _outputs(
    flatbuffer: bytes, feeds: Sequence[Mapping[str, np.ndarray]], names: tuple[str, ...]
) -> list[list[Any]]:
    """The file's outputs on each feed, by output name (a fresh interpreter per feed shape)."""
    import tensorflow as tf

    results = []
    for feed in feeds:
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
        runner = interpreter.get_signature_runner()
        inputs = {n: d["index"] for n, d in runner.get_input_details().items()}
        outputs = {n: d["index"] for n, d in runner.get_output_details().items()}
        del runner  # while it lives, the interpreter refuses to resize
        for name, value in feed.items():
            interpreter.resize_tensor_input(inputs[name], value.shape)
        interpreter.allocate_tensors()
        for name, value in feed.items():
            interpreter.set_tensor(inputs[name], value)
        interpreter.invoke()
        results.append([interpreter.get_tensor(outputs[n]) for n in names])
    return results


class KeepFloat(Quantized):
    """Full integer quantization with the layers that lose most kept in float (see the module)."""

    def label(self) -> str:
        return f"{super().label()}+keep-float"

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import tensorflow as tf

        assert path is not None
        function = serving_function(ctx)
        feeds = [dict(f) for f in ctx.calibration] or [dict(ctx.example_inputs)]
        same = example_shaped(ctx)

        def converter() -> Any:
            made = tf.lite.TFLiteConverter.from_concrete_functions(
                [function.get_concrete_function()], trackable(function)
            )
            made.target_spec.supported_ops = {getattr(tf.lite.OpsSet, op) for op in self.ops}
            self.configure(made, ctx)
            return made

        plain = converter().convert()
        order = _input_order(plain)

        def debug_data() -> Iterator[list[Any]]:
            for feed in same:  # the debugger takes a list, in the file's input order
                yield [feed[name] for name in order]

        expected = [
            [np.asarray(v) for v in function(*[f[n] for n in ctx.input_names]).values()] for f in feeds
        ]
        targets = [
            float(ctx.budgets.get(n, {}).get("snr_db", -math.inf)) + MARGIN_DB for n in ctx.output_names
        ]
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter(), debug_dataset=debug_data)
        debugger.run()
        ranked = _ranked_layers(debugger)
        snr: list[dict[str, float]] = []
        kept: list[str] = []
        flatbuffer = b""
        for round_ in range(ROUNDS + 1):
            if round_:
                kept = [r["layer"] for r in ranked[:round_]]
                options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=kept)
                flatbuffer = tf.lite.experimental.QuantizationDebugger(
                    converter=converter(), debug_dataset=debug_data, debug_options=options
                ).get_nondebug_quantized_model()
            else:
                flatbuffer = plain
            actual = _outputs(flatbuffer, feeds, ctx.output_names)
            values = {
                n: snr_db([e[i] for e in expected], [a[i] for a in actual])
                for i, n in enumerate(ctx.output_names)
            }
            snr.append({n: round(v, 2) for n, v in values.items()})
            if all(v >= t for v, t in zip(values.values(), targets, strict=True)) or round_ >= len(ranked):
                break
        path.write_bytes(flatbuffer)
        worst = ranked[0] if ranked else None
        first = next(iter(snr[0].items()))
        why = (
            f"output {first[0]!r}: SNR {first[1]:.1f} dB against eager; worst layer {worst['layer']} "
            f"({worst['op']}): RMSE {worst['rmse_over_scale']:.3g} quantization steps"
            if worst
            else ""
        )
        found = {
            "conversion": "tflite-int8",
            "snr_db": snr,
            "kept_float": ranked[: len(kept)],
            "kept": kept,
            "why": why,
        }
        return Made(
            details={"ops": "+".join(self.ops), "quantization": self.kind, "reduced_precision": found}
        )


def _input_order(flatbuffer: bytes) -> list[str]:
    """The file's input names in the order of its input tensors."""
    import tensorflow as tf

    runner = tf.lite.Interpreter(model_content=flatbuffer).get_signature_runner()
    return [name for name, _ in sorted(runner.get_input_details().items(), key=lambda i: i[1]["index"])]


def _ranked_layers(debugger: Any) -> list[dict[str, Any]]:
    """The quantized layers by RMSE over their quantization step (TFLite's `rmse/scale`), worst first."""
    import csv
    import io

    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = list(csv.DictReader(io.StringIO(dump.getvalue())))
    ranked: list[dict[str, Any]] = []
    for row in rows:
        scale = float(row.get("scale") or 0)
        if scale > 0:
            ratio = math.sqrt(float(row["mean_squared_error"])) / scale
            ranked.append(
                {"layer": row["tensor_name"], "op": row["op_name"], "rmse_over_scale": round(ratio, 4)}
            )
    ranked.sort(key=lambda r: -r["rmse_over_scale"])
    return ranked


def _route(kind: str, precision: Precision, what: str, unreduced: str = "") -> Route:
    strategies: tuple[tuple[str, Any], ...] = (
        ("builtins", Quantized(BUILTINS, False, kind)),
        ("builtins+select-tf-ops", Quantized(WITH_SELECT_TF_OPS, True, kind)),
    )
    if kind == "int8":
        strategies += (("builtins+keep-float", KeepFloat(BUILTINS, False, kind)),)
    return Route(
        name=f"tflite-{kind}",
        framework="tensorflow",
        strategies=strategies,
        default=False,
        description=f"TFLite {what}, run in the TFLite interpreter, judged by its accuracy budget",
        precision=precision,
        unreduced=unreduced,
    )


#: (framework, route name) -> route
ROUTES: dict[tuple[str, str], Route] = {
    ("tensorflow", r.name): r
    for r in (
        _route("fp16", Precision.FP16, "with float16 weights"),
        _route(
            "int8-dynamic",
            Precision.INT8,
            "dynamic range quantized (int8 weights)",
            "TFLite's dynamic-range quantization leaves weights of fewer than 1024 elements in float32",
        ),
        _route("int8", Precision.INT8, "full integer quantized, calibrated on the grid's inputs"),
    )
}
