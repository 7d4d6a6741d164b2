"""Artifact formats: one entry per format, holding everything graphmint must know about it.

A `Format` is what a route writes and a runner loads: an ONNX file, a TorchScript archive, a
torch.export .pt2, an AOTInductor package, an ExecuTorch program, a SavedModel, a TFLite flatbuffer,
or one of the in-process forms with no file (torch.compile, tf.function). Its entry says which runners
check it (each with its role: the runtime it deploys on, a cross-check's second opinion, or one hosted
inside another runner's child) and on which device, whether loading a file of it can run code, where
Triton serves it, the packages whose versions decide its results, and what a child process imports
before it loads one.

Every table that used to be kept per name is a view of `FORMATS`: the validators' runner table and
runtimes (`validators.RUNNERS`, `RUNTIMES`, `CROSS_CHECK_RUNTIMES`), the trust answer
(`pipeline.publish.trust.executes_code_on_load`), the serving bundle's Triton entries, the packages in
the cache key and the manifest (`result_packages`, `packages_for`), the GPU a Ray task asks for, and
the modules a child's forkserver preloads (`preload_for`). An exporter names its format
(`Exporter.format`) and a `Route` derives its runner from it. An entry that contradicts itself or
another raises `FormatError` when it is registered, at import. Runner classes are named as
"module:class" strings: nothing here imports a framework.
"""

from __future__ import annotations

from collections.abc import Iterable

from graphmint.exporters.registry import (
    Device,
    Format,
    FormatError,
    FormatRegistry,
    Role,
    RunnerSpec,
    Serving,
)

__all__ = [
    "EVERY_RUN_PACKAGES",
    "FORMATS",
    "IR_XML",
    "Device",
    "Format",
    "FormatError",
    "FormatRegistry",
    "Role",
    "RunnerSpec",
    "Serving",
    "packages_for",
    "preload_for",
    "result_packages",
]

#: packages whose versions decide every run, whatever its formats: the arrays compared, the content
#: checks' ONNX reader, and the model libraries the zoo builds from
EVERY_RUN_PACKAGES = ("numpy", "onnx", "transformers", "keras-hub")


def _union(groups: Iterable[Iterable[str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for group in groups for name in group))


def packages_for(framework: str, registry: FormatRegistry | None = None) -> tuple[str, ...]:
    """The packages whose versions decide a `framework` model's results (the manifest's `versions`)."""
    formats = registry or FORMATS
    return _union([("numpy",), *(f.packages.get(framework, ()) for f in formats)])


def result_packages(registry: FormatRegistry | None = None) -> tuple[str, ...]:
    """The packages whose versions decide what graphmint measures: every run's, then every format's."""
    formats = registry or FORMATS
    return _union([EVERY_RUN_PACKAGES, *(p for f in formats for p in f.packages.values())])


def preload_for(registry: FormatRegistry | None = None) -> dict[str, tuple[str, ...]]:
    """Per framework (its top-level module name): what a child imports to export or load its formats."""
    formats = registry or FORMATS
    frameworks = _union(f.preload for f in formats)
    return {fw: _union(f.preload.get(fw, ()) for f in formats) for fw in frameworks}


# --- the formats ------------------------------------------------------------------------------------

_V = "graphmint.validators"
_TORCH = ("torch",)
_TF = ("tensorflow", "tensorflow-cpu", "keras")

#: the registry every layer reads (the entries below, registered at import)
FORMATS = FormatRegistry()

FORMATS.register(
    Format(
        name="onnx",
        description="an ONNX model file",
        filename="model.onnx",
        runners=(
            RunnerSpec("onnxruntime", f"{_V}.onnxruntime:OnnxRuntimeRunner"),
            RunnerSpec("onnxruntime-noopt", f"{_V}.onnxruntime:OnnxRuntimeNoOptRunner", Role.CROSS_CHECK),
            RunnerSpec("onnx-reference", f"{_V}.onnx_reference:OnnxReferenceRunner", Role.CROSS_CHECK),
            RunnerSpec("onnxruntime-cuda", f"{_V}.onnxruntime:OnnxRuntimeCudaRunner", device=Device.CUDA),
            RunnerSpec(
                "openvino-onnx", f"{_V}.openvino:OpenVinoOnnxRunner", Role.CROSS_CHECK, deployable=True
            ),
        ),
        # external data that points outside its folder is refused where the file is loaded
        executes_code=None,
        packages={
            "torch": (*_TORCH, "onnx", "onnxruntime", "onnxscript", "openvino"),
            "tensorflow": (*_TF, "onnx", "onnxruntime", "tf2onnx", "openvino"),
        },
        preload={"torch": ("torch", "torch.onnx", "onnxscript"), "tensorflow": ("tensorflow", "tf2onnx")},
        serving=(Serving("onnx", "onnxruntime_onnx", "model.onnx", ("onnx", "onnx-optimized")),),
    )
)
FORMATS.register(
    Format(
        name="torchscript",
        description="a TorchScript archive (torch.jit.save)",
        filename="model.pt",
        runners=(
            RunnerSpec("torchscript", f"{_V}.torchscript:TorchScriptRunner"),
            RunnerSpec("torchscript-cuda", f"{_V}.torchscript:TorchScriptCudaRunner", device=Device.CUDA),
        ),
        executes_code="a TorchScript archive can run code when loaded "
        "(a pickle archive and TorchScript code)",
        packages={"torch": _TORCH},
        preload={"torch": ("torch",)},
        serving=(
            Serving(
                "torchscript", "pytorch_libtorch", "model.pt", ("torchscript-trace", "torchscript-script")
            ),
        ),
    )
)
FORMATS.register(
    Format(
        name="torch-export",
        description="a torch.export ExportedProgram (.pt2)",
        filename="model.pt2",
        runners=(
            RunnerSpec("torch-export", f"{_V}.torch_export:ExportedProgramRunner"),
            RunnerSpec(
                "torch-export-cuda", f"{_V}.torch_export:ExportedProgramCudaRunner", device=Device.CUDA
            ),
        ),
        executes_code="a .pt2 can run code when loaded "
        "(pickles, and Python in its symbolic sizes and guards)",
        # torchao's PT2E quantizer decides what a pt2e-int8 program holds; a Keras model's .pt2 is
        # made under Keras's torch backend (keras-torch)
        packages={"torch": (*_TORCH, "torchao"), "tensorflow": (*_TF, *_TORCH)},
        preload={"torch": ("torch", "torch.export")},
    )
)
FORMATS.register(
    Format(
        name="aot-inductor",
        description="an AOTInductor package (.pt2 holding a compiled shared library)",
        filename="model.pt2",
        runners=(RunnerSpec("aot-inductor", f"{_V}.aot_inductor:AOTInductorRunner"),),
        executes_code="an AOTInductor package runs code when loaded (it holds a compiled shared library)",
        packages={"torch": _TORCH},
        preload={"torch": ("torch", "torch.export")},
    )
)
FORMATS.register(
    Format(
        name="executorch",
        description="an ExecuTorch program (.pte), its ops lowered to XNNPACK where it takes them",
        filename="model.pte",
        runners=(RunnerSpec("executorch", f"{_V}.executorch:ExecuTorchRunner"),),
        # a .pte is a flatbuffer of calls to the kernels and backends the runtime links in: loading it
        # (Program::load, Method::load, with InternalConsistency verification) parses tables and
        # hands each delegate blob (a serialized XNNPACK graph) to its backend's init; it holds no
        # Python, no pickles and no native library, and the linked kernels do no file I/O
        executes_code=None,
        packages={"torch": (*_TORCH, "executorch")},
        # executorch itself is imported by its own children, not preloaded: a preload is per framework,
        # and every torch child would pay its 11 s import for a route few runs take
        preload={"torch": ("torch", "torch.export")},
        edge=True,
        tracer=f"{_V}.executorch_trace:trace_program",
    )
)
FORMATS.register(
    Format(
        name="torch-compile",
        description="a torch.compile'd module, checked in-process: no file",
        filename=None,
        runners=(RunnerSpec("torch-in-process", f"{_V}.torch_in_process:TorchInProcessRunner"),),
        executes_code=None,
        packages={"torch": _TORCH},
        preload={"torch": ("torch", "torch._dynamo")},
    )
)
FORMATS.register(
    Format(
        name="saved-model",
        description="a TensorFlow SavedModel folder",
        filename="model.savedmodel",
        runners=(
            RunnerSpec("saved-model", f"{_V}.saved_model:SavedModelRunner"),
            RunnerSpec("saved-model-signature", f"{_V}.saved_model:SignatureRunner", Role.HOSTED),
        ),
        executes_code="a SavedModel can run code when loaded (its graph ops can read and write files)",
        packages={"tensorflow": _TF},
        preload={"tensorflow": ("tensorflow", "keras")},
        serving=(Serving("savedmodel", "tensorflow_savedmodel", "model.savedmodel", ("saved-model",)),),
    )
)
FORMATS.register(
    Format(
        name="tflite",
        description="a TFLite flatbuffer",
        filename="model.tflite",
        runners=(
            RunnerSpec("tflite", f"{_V}.tflite:TFLiteRunner"),
            # LiteRT's CompiledModel: where it cannot run a shape (LiteRT#5774: after a resize, a
            # two-input model's outputs keep their old shape), a warning
            RunnerSpec(
                "litert-compiled",
                f"{_V}.litert_compiled:CompiledModelRunner",
                Role.CROSS_CHECK,
                deployable=True,
            ),
        ),
        executes_code=None,
        packages={
            "tensorflow": (*_TF, "ai-edge-litert"),
            "torch": (*_TORCH, "litert-torch", "ai-edge-litert"),
        },
        # a torch child loads a .tflite with ai_edge_litert alone (validators.tflite), never TensorFlow
        preload={"tensorflow": ("tensorflow",), "torch": ("torch",)},
        edge=True,
    )
)
FORMATS.register(
    Format(
        name="tf-function",
        description="a tf.function's concrete function, checked in-process: no file",
        filename=None,
        runners=(RunnerSpec("tf-in-process", f"{_V}.tf_in_process:TfInProcessRunner"),),
        executes_code=None,
        packages={"tensorflow": _TF},
        preload={"tensorflow": ("tensorflow", "keras")},
    )
)

#: an IR is an XML graph of OpenVINO opset operations and a .bin of their constants: reading one loads
#: no library and runs no Python (custom operations need an extension the caller adds to the Core)
#: the graph file inside an IR folder (its constants are in model.bin beside it)
IR_XML = "model.xml"
_OPENVINO = {"torch": (*_TORCH, "openvino"), "tensorflow": (*_TF, "openvino")}
# openvino itself is never preloaded: importing it starts its thread pool, and a child forked from a
# forkserver holding those threads can deadlock on their locks (seen: an export child stuck in a futex)
_OPENVINO_PRELOAD = {"torch": ("torch", "torch.export"), "tensorflow": ("tensorflow",)}
FORMATS.register(
    Format(
        name="openvino",
        description="an OpenVINO IR: a folder holding model.xml and model.bin, float32 constants",
        filename="model.openvino",
        runners=(RunnerSpec("openvino", f"{_V}.openvino:OpenVinoRunner"),),
        executes_code=None,
        packages=_OPENVINO,
        preload=_OPENVINO_PRELOAD,
        # Triton's openvino backend reads 1/model.xml and 1/model.bin; its parameters cannot ask the CPU
        # plugin for f32, so it computes in the plugin's default
        serving=(
            Serving(
                "openvino",
                "",
                None,
                ("openvino",),
                backend="openvino",
                precision="the CPU plugin's default INFERENCE_PRECISION_HINT, which Triton's openvino "
                "backend cannot set: bf16 on a CPU with AMX-BF16 or avx512_bf16 (the openvino-bf16 "
                "route's numbers), f32 elsewhere (the openvino route's)",
            ),
        ),
    )
)
# the same IR, compiled with a bf16 inference precision hint. A format of its own because every runner
# of a format checks every artifact of it: as a second runner of `openvino` it would judge the float32
# route in bf16 on a CPU that computes in bf16
FORMATS.register(
    Format(
        name="openvino-bf16",
        description="an OpenVINO IR (model.xml, model.bin) compiled to compute in bf16 on the CPU",
        filename="model.openvino",
        runners=(RunnerSpec("openvino-bf16", f"{_V}.openvino:OpenVinoBf16Runner"),),
        executes_code=None,
        packages=_OPENVINO,
        preload=_OPENVINO_PRELOAD,
    )
)
