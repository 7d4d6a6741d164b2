"""Runner for ExecuTorch programs (.pte), with executorch.runtime: load, `forward`, execute.

A .pte plans every tensor's memory at the upper bounds of its dims, so the file itself says how far
each dynamic dim may go (its inputs' sizes in the method's metadata). After loading, the runner runs
each dim one past that bound (the other dims at theirs, so the input outgrows its buffer) and expects
the runtime to refuse it: a file that runs it anyway computes past the memory it was planned for,
which fails the check. Then, where the bundled program the route writes lies beside the file, the
runtime verifies its golden cases itself (the pybindings' bundled-program API) at graphmint's default
tolerances for the outputs' dtype. Both go to the manifest (`bound_probes`, `bundled_check`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.exporters.base import first_line
from graphmint.exporters.capture import native_output
from graphmint.exporters.executorch import BUNDLE
from graphmint.validators.base import Runner
from graphmint.validators.details import BoundProbe, BundledCheck
from graphmint.validators.tolerance import DEFAULT_TOLERANCES, EXACT, Tolerance

__all__ = ["ExecuTorchRunner"]

#: what ExecuTorch's log says when a bundled case index is past the last one
_PAST_LAST_CASE = "is out of range"


def _stderr_lines(buffer: io.StringIO) -> list[str]:
    """What ExecuTorch logged on file descriptor 2 (where it says why it refused something)."""
    return [line.strip() for line in buffer.getvalue().splitlines() if line.strip()]


def _reason(exc: Exception, logged: list[str]) -> str:
    """The runtime's own lines on why (its log), then the exception."""
    return f"{'; '.join(logged)} ({first_line(exc)})" if logged else first_line(exc)


class ExecuTorchRunner(Runner):
    name = "executorch"
    requires = ("executorch",)

    def __init__(self, artifact: Any) -> None:
        super().__init__(artifact)
        self.program: Any = None
        self.method: Any = None

    def activate_impl(self) -> None:
        from executorch.runtime import Runtime
        from executorch.version import __version__

        runtime = Runtime.get()
        self.program = runtime.load_program(Path(str(self.artifact.path)))
        self.method = self.program.load_method("forward")
        backends = ", ".join(runtime.backend_registry.registered_backend_names)
        self.runtime = f"executorch {__version__} runtime ({backends})"
        probes = self._probe_bounds()
        self.facts["bound_probes"] = [p.dump() for p in probes]
        bundle = Path(str(self.artifact.path)).with_name(BUNDLE)
        if bundle.is_file():
            self.facts["bundled_check"] = self._verify_bundle(bundle).dump()
        accepted = [p for p in probes if not p.refused]
        if accepted:
            past = ", ".join(f"{p.dim}={p.size} (bound {p.bound})" for p in accepted)
            raise ValueError(
                f"the .pte ran {past} without refusing it: its buffers are planned for the bound, so it "
                "computed past the memory it was planned for; export it with the dims' real bounds"
            )

    def deactivate_impl(self) -> None:
        self.method = self.program = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        import torch

        args = [torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()]
        return [
            o.numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in self.method.execute(args)
        ]

    def _input_metas(self) -> list[tuple[tuple[int, ...], Any]]:
        """Per input: the sizes its buffer is planned for (each dim at its bound) and its torch dtype."""
        from executorch.exir.tensor import scalar_type_table

        dtypes = {int(code): dtype for dtype, code in scalar_type_table.items()}
        meta = self.method.metadata
        infos = [meta.input_tensor_meta(i) for i in range(meta.num_inputs())]
        return [(tuple(info.sizes()), dtypes[int(info.dtype())]) for info in infos]

    def _probe_bounds(self) -> list[BoundProbe]:
        """Each dynamic dim at one past the bound the file holds for it, every other dim at its bound."""
        import torch

        metas = self._input_metas()
        names = list(self.artifact.input_names)
        where: dict[str, list[tuple[int, int]]] = {}  # dim -> (input index, axis)
        for name, axes in self.artifact.dynamic_axes.items():
            for axis, dim in axes.items():
                where.setdefault(dim, []).append((names.index(name), axis))
        probes = []
        for dim, places in where.items():
            index, axis = places[0]
            bound = metas[index][0][axis]
            shapes = [list(sizes) for sizes, _ in metas]
            for i, a in places:
                shapes[i][a] = bound + 1
            args = [torch.zeros(shape, dtype=dtype) for shape, (_, dtype) in zip(shapes, metas, strict=True)]
            probe = BoundProbe(dim=dim, bound=bound, size=bound + 1, refused=False)
            logged = io.StringIO()
            with native_output(logged, fds=(2,)):
                try:
                    self.method.execute(args)
                except Exception as exc:
                    probe.refused = True
                    refusal = exc
            if probe.refused:
                probe.error = _reason(refusal, _stderr_lines(logged))
            probes.append(probe)
        return probes

    def _tolerance(self) -> Tolerance:
        """graphmint's default tolerance for the outputs' dtypes (the loosest where they differ)."""
        meta = self.method.metadata
        from executorch.exir.tensor import scalar_type_table

        names = {int(code): str(dtype).removeprefix("torch.") for dtype, code in scalar_type_table.items()}
        found = [
            DEFAULT_TOLERANCES[n]
            for i in range(meta.num_outputs())
            if (n := names.get(int(meta.output_tensor_meta(i).dtype()), "")) in DEFAULT_TOLERANCES
        ]
        if not found:
            return EXACT
        return Tolerance(atol=max(t.atol for t in found), rtol=max(t.rtol for t in found))

    def _verify_bundle(self, path: Path) -> BundledCheck:
        """Every golden case of the bundled program, verified by the runtime's bundled-program API."""
        from executorch.extension.pybindings.portable_lib import _load_bundled_program_from_buffer

        tol = self._tolerance()
        bundle = _load_bundled_program_from_buffer(path.read_bytes())
        check = BundledCheck(file=path.name, cases=0, passed=0, rtol=tol.rtol, atol=tol.atol)
        while True:
            logged = io.StringIO()
            with native_output(logged, fds=(2,)):
                try:
                    bundle.verify_result_with_bundled_expected_output(
                        "forward", check.cases, tol.rtol, tol.atol
                    )
                    failure = None
                except RuntimeError as exc:
                    failure = exc
            if failure is None:
                check.passed += 1
            elif _PAST_LAST_CASE in logged.getvalue():
                return check
            else:
                reason = _reason(failure, _stderr_lines(logged))
                check.failures = [*check.failures, f"case {check.cases}: {reason}"]
            check.cases += 1
