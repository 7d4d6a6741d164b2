"""Route `pt2e-int8` (opt-in): PT2E post-training quantization through torch.export, saved as .pt2.

torch.export captures the model, torchao's `prepare_pt2e` inserts observers where the x86 Inductor
quantizer says (int8 activations per tensor, int8 weights per channel: the CPU backend's scheme),
the model runs on the context's calibration inputs, and `convert_pt2e` folds the observed ranges into
quantize/dequantize ops; the result is exported again with the same dynamic dims. The .pt2 is
reloaded with torch.export.load (the runner registers torch's quantized_decomposed ops first) and
judged by the int8 accuracy budget; Inductor lowers those ops to int8 kernels where it compiles it.
Where torchao is not installed the route is skipped with that reason.
"""

from __future__ import annotations

from pathlib import Path

from graphmint.exporters._torch import TorchExporter, example_args, export_dynamic_shapes, export_program
from graphmint.exporters.base import ExportContext, Made, Precision, Route


class Pt2eInt8(TorchExporter):
    tool = "torchao.quantization.pt2e(X86InductorQuantizer)"
    format = "torch-export"
    requires = ("torchao",)

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        import torch
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

        from graphmint.models.frameworks.torch_fw import to_torch

        quantizer = x86.X86InductorQuantizer()
        quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(export_program(ctx).module(), quantizer)
        feeds = list(ctx.calibration) or [dict(ctx.example_inputs)]
        with torch.no_grad():
            for feed in feeds:
                prepared(*to_torch({n: feed[n] for n in ctx.input_names}))
        converted = convert_pt2e(prepared)
        # the converted GraphModule takes the inputs as its own parameters, not as *args
        shapes = export_dynamic_shapes(ctx)[0]
        program = torch.export.export(converted, example_args(ctx), dynamic_shapes=shapes)
        torch.export.save(program, str(path))
        return Made(details={"calibration_inputs": len(feeds)})


ROUTE = Route(
    name="pt2e-int8",
    framework="torch",
    strategies=(("prepare_pt2e+convert_pt2e", Pt2eInt8()),),
    default=False,
    description="int8 by PT2E quantization (torchao, x86 Inductor quantizer) through torch.export (.pt2), "
    "judged by its accuracy budget",
    precision=Precision.INT8,
)
