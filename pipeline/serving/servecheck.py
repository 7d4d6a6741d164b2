"""`graphmint serve-check`: start the bundle's inference server, send every golden input with a real
KServe v2 client (tritonclient.http), compare the answers with the golden outputs, stop the server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.pipeline.publish.golden import read_golden_sets
from graphmint.pipeline.publish.manifest import BundleModel
from graphmint.pipeline.serving.server import HOST, check_bundle_for_serving
from graphmint.pipeline.serving.triton import TRITON_TYPES
from graphmint.validators.compare import compare_output
from graphmint.validators.tolerance import DEFAULT_TOLERANCES, Tolerance

__all__ = [
    "ServeCheck",
    "ServedCase",
    "ServerProcess",
    "free_port",
    "serve_check",
    "start_server",
    "stop_server",
    "wait_ready",
]


@dataclass(frozen=True)
class ServedCase:
    """One model × golden set sent to the server: passed, or what it answered wrong."""

    model: str
    data_set: str
    passed: bool
    reason: str = ""


@dataclass
class ServeCheck:
    """Every model × golden set the server was asked."""

    results: list[ServedCase] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess(subprocess.Popen[bytes]):
    """The server, in its own process group (so that it and anything it starts can be stopped
    together), logging to a temporary file: a pipe that nobody reads while it serves would fill up
    with its log (a line or more a request) and stall it."""

    def __init__(self, args: list[str]) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (open while the server runs; stop_server closes it)
        try:
            super().__init__(args, stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True)
        except BaseException:
            self.log.close()
            raise

    def log_tail(self, size: int = 300) -> str:
        """The end of what the server printed so far."""
        end = os.fstat(self.log.fileno()).st_size
        return os.pread(self.log.fileno(), size, max(0, end - size)).decode(errors="replace").strip()


def start_server(bundle: Path, port: int, max_request_mb: float | None = None) -> ServerProcess:
    """`python -m graphmint.pipeline.serving.server` on the bundle; `max_request_mb` None: the
    server's default."""
    limit = [] if max_request_mb is None else ["--max-request-mb", str(max_request_mb)]
    return ServerProcess(
        [sys.executable, "-m", "graphmint.pipeline.serving.server", str(bundle), "--port", str(port), *limit]
    )


def stop_server(process: ServerProcess) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    process.log.close()


def wait_ready(client: Any, process: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}: {process.log_tail()}")
        try:
            if client.is_server_ready():
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server was not ready within {timeout:g}s")


def serve_check(bundle: Path, timeout: float = 120.0, verify_key: Path | None = None) -> ServeCheck:
    import tritonclient.http as http

    # a broken bundle, or one whose signature does not verify, is a UsageError before any server starts
    manifest = check_bundle_for_serving(bundle, verify_key)
    port = free_port()
    process = start_server(bundle, port)
    check = ServeCheck()
    try:
        client = http.InferenceServerClient(url=f"{HOST}:{port}")
        wait_ready(client, process, timeout)
        for model in manifest.models:
            entry = next((e for e in model.entries if e.platform == "onnxruntime_onnx"), None)
            if entry is None:
                continue
            names = [i.name for i in model.inputs]
            for golden in read_golden_sets(bundle / model.golden, names, [o.name for o in model.outputs]):
                inputs = []
                for name in names:
                    array = golden.inputs[name]
                    datatype = TRITON_TYPES[str(array.dtype)].removeprefix("TYPE_")  # v2: FP32, INT64...
                    item = http.InferInput(name, list(array.shape), datatype)
                    item.set_data_from_numpy(array, binary_data=True)
                    inputs.append(item)
                try:
                    answer = client.infer(entry.name, inputs)
                except Exception as exc:
                    check.results.append(
                        ServedCase(entry.name, golden.path.name, False, f"request failed: {exc}")
                    )
                    continue
                problems = _problems(model, golden.outputs, answer)
                check.results.append(
                    ServedCase(entry.name, golden.path.name, not problems, "; ".join(problems))
                )
    finally:
        stop_server(process)
    return check


def _problems(model: BundleModel, expected: Mapping[str, np.ndarray], answer: Any) -> list[str]:
    """What the server answered wrong, each output judged with the tolerance its route was validated
    with (per output where the bundle records it, else the model's, else the dtype's default)."""
    problems = []
    for name, want in expected.items():
        default = DEFAULT_TOLERANCES.get(str(want.dtype), Tolerance(0.0, 0.0))
        own = model.tolerances.get(name) or model.tolerance
        atol, rtol = own.get("atol"), own.get("rtol")
        tolerance = Tolerance(default.atol if atol is None else atol, default.rtol if rtol is None else rtol)
        actual = answer.as_numpy(name)
        if actual is None:
            problems.append(f"no output {name!r}")
            continue
        compared = compare_output(name, np.asarray(actual), want, tolerance)
        if not compared.passed:
            problems.append(compared.message)
    return problems
