"""Routes `openvino` and `openvino-bf16` (both frameworks): an OpenVINO IR made by `ov.convert_model`.

- torch: from the torch.export ExportedProgram every torch route shares (exporters._torch), not from
  the nn.Module (OpenVINO's tracing path fails on a small transformer);
- tensorflow: from a SavedModel written with the `saved-model` route's recipe into a temporary folder.

The IR's inputs and outputs are named as the spec names them (the ExportedProgram's are `args_0`...),
its inputs' static dims are set to the spec's sizes (the converter leaves every dim of an
ExportedProgram `?`), while its declared dynamic dims are left as the converter made them, so a dim
it froze is seen by the runner (validators.openvino). It is saved with compress_to_fp16=False:
`ov.save_model`'s default stores every float constant in f16.

`openvino-bf16` (opt-in) is the same IR compiled to compute in bf16, judged by bf16's accuracy budget;
on a CPU that cannot compute in bf16 its runner says so, and nothing is checked.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from graphmint.exporters._tf import captured_tf_output
from graphmint.exporters._torch import TORCH_LOGGERS, export_program
from graphmint.exporters.base import (
    CapturedLog,
    ExportContext,
    Exporter,
    Made,
    NotApplicable,
    Precision,
    Route,
    captured_output,
)
from graphmint.exporters.formats import IR_XML
from graphmint.exporters.saved_model import Save

__all__ = ["CAPABILITY", "ROUTES", "cannot_compute", "name_ports"]

#: per reduced INFERENCE_PRECISION_HINT: the CPU plugin's OPTIMIZATION_CAPABILITIES entry that means
#: it computes in it, and the CPU features that gives it
CAPABILITY = {"bf16": ("BF16", "avx512_bf16 or AMX-BF16"), "f16": ("FP16", "AVX512-FP16 or AMX-FP16")}


def cannot_compute(hint: str) -> str | None:
    """Why OpenVINO's CPU plugin cannot compute in `hint` on this CPU, or None where it can (f32)."""
    import openvino as ov

    if hint not in CAPABILITY:
        return None
    capability, features = CAPABILITY[hint]
    offered = list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    if capability in offered:
        return None
    return (
        f"this CPU cannot compute in {hint}: OpenVINO's CPU plugin offers OPTIMIZATION_CAPABILITIES "
        f"{', '.join(offered)}, no {capability} (it needs {features}); compiled with "
        f"INFERENCE_PRECISION_HINT={hint} it computes in f32 instead"
    )


def name_ports(model: Any, ctx: ExportContext, by_position: bool) -> None:
    """Name the model's inputs and outputs as the spec does (positionally, or check that the converter
    kept the spec's names), and fix the inputs' static dims to the example's sizes."""
    import openvino as ov

    for kind, ports, names in (
        ("inputs", model.inputs, ctx.input_names),
        ("outputs", model.outputs, ctx.output_names),
    ):
        if len(ports) != len(names):
            found = [p.get_any_name() for p in ports]
            raise ValueError(f"the OpenVINO model has {kind} {found}, the spec declares {list(names)}")
        if by_position:
            for port, name in zip(ports, names, strict=True):
                port.get_tensor().set_names({name})
        else:
            missing = [n for n in names if n not in {t for p in ports for t in p.get_names()}]
            if missing:
                raise ValueError(f"the OpenVINO model's {kind} lack {missing}")
    shapes = {}
    for port in model.inputs:
        name = next(n for n in ctx.input_names if n in port.get_names())
        converted = port.get_partial_shape()
        dynamic = ctx.dynamic_axes.get(name, {})
        example = ctx.example_inputs[name].shape
        shapes[port] = ov.PartialShape(
            [converted[a] if a in dynamic else ov.Dimension(size) for a, size in enumerate(example)]
        )
    model.reshape(shapes)


class OpenVinoExporter(Exporter):
    """`ov.convert_model` of the framework's static form, named and saved as an IR folder."""

    package = "openvino"
    format = "openvino"
    requires = ("openvino",)
    #: whether the converted model's ports are in the spec's order, unnamed (torch) or named (tf)
    by_position: ClassVar[bool]

    def convert(self, ctx: ExportContext, scratch: Path) -> Any:
        """The converted ov.Model; `scratch` is a folder it may write in, removed afterwards."""
        raise NotImplementedError

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import openvino as ov

        assert path is not None
        path.mkdir()
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".convert-") as scratch:
            model = self.convert(ctx, Path(scratch))
            name_ports(model, ctx, self.by_position)
            ov.save_model(model, str(path / IR_XML), compress_to_fp16=False)
        return Made(details={"compress_to_fp16": False})


class FromExportedProgram(OpenVinoExporter):
    tool = "openvino.convert_model(torch.export.ExportedProgram)"
    by_position = True

    def capture(self) -> contextlib.AbstractContextManager[CapturedLog]:
        return captured_output(TORCH_LOGGERS)

    def convert(self, ctx: ExportContext, scratch: Path) -> Any:
        import openvino as ov

        return ov.convert_model(export_program(ctx))


class FromSavedModel(OpenVinoExporter):
    tool = "openvino.convert_model(SavedModel)"
    by_position = False

    def capture(self) -> contextlib.AbstractContextManager[CapturedLog]:
        return captured_tf_output()

    def convert(self, ctx: ExportContext, scratch: Path) -> Any:
        import openvino as ov

        saved = scratch / "model.savedmodel"
        Save().export(ctx, saved)  # the saved-model route's own SavedModel
        return ov.convert_model(str(saved))


class Bf16:
    """The IR of its float32 strategy, for a CPU that computes in bf16: where this one cannot, the
    route does not apply here (checking it in f32 would pass it as bf16 without computing in bf16)."""

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        why = cannot_compute("bf16")
        if why:
            raise NotApplicable(why)
        made: Made = super().export(ctx, path)  # type: ignore[misc]
        return made


class FromExportedProgramBf16(Bf16, FromExportedProgram):
    format = "openvino-bf16"


class FromSavedModelBf16(Bf16, FromSavedModel):
    format = "openvino-bf16"


_STRATEGIES: dict[str, tuple[type[OpenVinoExporter], type[OpenVinoExporter]]] = {
    "torch": (FromExportedProgram, FromExportedProgramBf16),
    "tensorflow": (FromSavedModel, FromSavedModelBf16),
}


def _routes(framework: str) -> dict[tuple[str, str], Route]:
    fp32, bf16 = _STRATEGIES[framework]
    return {
        (framework, "openvino"): Route(
            name="openvino",
            framework=framework,
            strategies=((fp32.tool, fp32()),),
            # opt-in, like every deployment target beyond the frameworks' own forms: a default route
            # runs on every user's model, and OpenVINO cross-checks every ONNX file already
            default=False,
            description="OpenVINO IR (float32 constants) on OpenVINO's CPU plugin, f32 precision hint",
        ),
        (framework, "openvino-bf16"): Route(
            name="openvino-bf16",
            framework=framework,
            strategies=((f"{bf16.tool}+bf16", bf16()),),
            default=False,
            description="the OpenVINO IR compiled with a bf16 precision hint, judged by bf16's budget",
            precision=Precision.BF16,
        ),
    }


#: (framework, route name) -> route
ROUTES: dict[tuple[str, str], Route] = {**_routes("torch"), **_routes("tensorflow")}
