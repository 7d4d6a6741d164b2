"""Route `keras-torch` (Keras, opt-in): the Keras model rebuilt under Keras's torch backend with the
TensorFlow model's weights, then torch.export'ed to a .pt2, judged against the TensorFlow eager model.

A backend-agnostic Keras model (keras.ops and Keras layers only) is meant to compute the same thing
on every backend; this route proves it does for one model, or says where it does not. The model goes
to a `.keras` file (its config and weights), which a fresh Python process with `KERAS_BACKEND=torch`
loads (safe mode on, with the Keras classes of the model's own module as its custom objects) and
exports with the spec's dynamic dims. A backend cannot be switched in a process that has imported
Keras, hence the process of its own; it dies with the export process that started it.

A model that cannot be rebuilt that way (not serializable to .keras, or written against TensorFlow
itself) is skipped with the reason: the route does not apply to it. One that rebuilds but does not
export, or exports and computes something else, fails like any route.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.exporters._tf import TfExporter
from graphmint.exporters.base import ExportContext, Made, NotApplicable, Route, first_line

__all__ = ["ROUTE", "RebuildUnderTorch"]

#: what the rebuilding process prints before it exits with one of these codes
_NOT_APPLICABLE, _FAILED = 3, 4


def _die_with_parent() -> None:
    """In the rebuilding process, before it runs: the kernel kills it when its parent dies (the export
    process, stopped at its time bound), so no orphan outlives the route."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class RebuildUnderTorch(TfExporter):
    tool = "keras (torch backend) + torch.export.export"
    package = "keras"
    format = "torch-export"
    requires = ("torch",)

    def export(self, ctx: ExportContext, path: Path | None) -> Made:
        assert path is not None
        work = path.parent
        source, job = work / "tensorflow.keras", work / "keras-torch.json"
        try:
            ctx.model.save(source)
        except Exception as exc:
            raise NotApplicable(
                f"the model does not save to a .keras file: {type(exc).__name__}: {exc}"
            ) from exc
        np.savez(work / "example.npz", **dict(ctx.example_inputs))  # type: ignore[arg-type]
        job.write_text(
            json.dumps(
                {
                    "model": str(source),
                    "module": type(ctx.model).__module__,
                    "inputs": list(ctx.input_names),
                    "outputs": list(ctx.output_names),
                    "example": str(work / "example.npz"),
                    "dynamic_axes": {
                        n: {str(a): d for a, d in ax.items()} for n, ax in ctx.dynamic_axes.items()
                    },
                    "out": str(path),
                }
            )
        )
        env = {**os.environ, "KERAS_BACKEND": "torch"}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "graphmint.exporters.keras_torch", str(job)],
                env=env,
                capture_output=True,
                text=True,
                preexec_fn=_die_with_parent,
                check=False,
            )
        finally:
            for leftover in (source, job, work / "example.npz"):
                leftover.unlink(missing_ok=True)
        print(done.stderr + done.stdout)
        # the rebuilding process's own verdict is its last line; a crash's is the last line it wrote
        said = done.stdout if done.returncode in (_NOT_APPLICABLE, _FAILED) else done.stderr
        reason = (said.strip().splitlines() or [f"the process exited with code {done.returncode}"])[-1]
        if done.returncode == _NOT_APPLICABLE:
            raise NotApplicable(reason)
        if done.returncode != 0:
            raise RuntimeError(reason)
        return Made()


ROUTE = Route(
    name="keras-torch",
    framework="tensorflow",
    strategies=(("keras-torch-backend", RebuildUnderTorch()),),
    default=False,
    description="the Keras model rebuilt under Keras's torch backend, torch.export'ed (.pt2)",
)


# --- the rebuilding process (KERAS_BACKEND=torch) --------------------------------------------------


def _custom_objects(module_name: str) -> dict[str, Any]:
    """The Keras classes the model's own module defines, by name: what loading its .keras needs."""
    import importlib
    import inspect

    import keras

    try:
        module = importlib.import_module(module_name)
    except Exception:  # the model's module is written for TensorFlow alone: the .keras file may not need it
        return {}
    return {
        name: cls
        for name, cls in vars(module).items()
        if inspect.isclass(cls) and issubclass(cls, keras.layers.Layer) and cls.__module__ == module_name
    }


def _rebuild(job: dict[str, Any]) -> None:
    import keras
    import torch

    from graphmint.exporters._torch import export_dynamic_shapes
    from graphmint.models.frameworks import flatten_outputs
    from graphmint.models.frameworks.tensorflow_fw import call_model
    from graphmint.models.frameworks.torch_fw import to_torch

    if keras.backend.backend() != "torch":
        raise SystemExit(f"Keras runs on {keras.backend.backend()!r} here, not torch")
    try:
        model = keras.saving.load_model(
            job["model"], custom_objects=_custom_objects(job["module"]), compile=False, safe_mode=True
        )
    except Exception as exc:
        print(exc, file=sys.stderr)
        print(f"the model does not rebuild under Keras's torch backend: {first_line(exc)}")
        sys.exit(_NOT_APPLICABLE)
    names, outputs = job["inputs"], job["outputs"]

    class Flat(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: Any) -> tuple[Any, ...]:
            flat = flatten_outputs(call_model(self.model, names, args), torch.is_tensor, lambda t: t)
            if set(flat) != set(outputs):
                raise ValueError(f"under the torch backend the model returns {list(flat)}, eagerly {outputs}")
            # by name: a dict output's keys may come in another order under another backend
            return tuple(flat[name] for name in outputs)

    with np.load(job["example"]) as example:
        args = tuple(to_torch({n: example[n] for n in names}))
    axes = {n: {int(a): tuple(d) for a, d in ax.items()} for n, ax in job["dynamic_axes"].items()}
    ctx = ExportContext(
        model=None,
        framework="torch",
        workdir=Path(),
        input_names=tuple(names),
        output_names=tuple(outputs),
        example_inputs={},
        dynamic_axes=axes,
        dtypes={},
    )
    try:
        program = torch.export.export(Flat().eval(), args, dynamic_shapes=export_dynamic_shapes(ctx))
    except Exception as exc:
        print(exc, file=sys.stderr)
        print(f"torch.export of the Keras model under the torch backend: {first_line(exc)}")
        sys.exit(_FAILED)
    torch.export.save(program, job["out"])


if __name__ == "__main__":
    _rebuild(json.loads(Path(sys.argv[1]).read_text()))
