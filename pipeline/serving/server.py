"""A KServe v2 (Open Inference Protocol) server for a bundle's ONNX models, on ONNX Runtime.

Run as its own process: `python -m graphmint.pipeline.serving.server BUNDLE --port P`. It uses the
kserve package's data plane and REST endpoints, bound to 127.0.0.1 only (kserve's own ModelServer
listens on every interface). kserve is imported only here, and only once the checks have passed: it
cannot share a process with tritonclient's gRPC protos. What a request may hold is checked by
pipeline.serving.requests.

Before it starts, `check_bundle_for_serving` checks the bundle (its MANIFEST.json, paths, hashes and
ONNX files) and `serve` checks the port: a problem is a `UsageError` of one line. Once it runs, every
request is checked against its model's signature (`Signature.check`: names, datatypes, shapes within
the dim ranges, size, values) before anything is decoded, and one that does not fit is answered 400.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import socket
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.manifest import (
    BundleEntry,
    BundleManifest,
    BundleModel,
    inside,
    read_bundle_manifest,
)
from graphmint.pipeline.serving.requests import (
    V2_DATATYPES,
    RequestRejected,
    Signature,
    TensorClaim,
    binary_claims,
)

__all__ = [
    "HOST",
    "MAX_REQUEST_MB",
    "check_bundle_for_serving",
    "main",
    "serve",
]

HOST = "127.0.0.1"
#: the most tensor data one request may claim, in MiB (`--max-request-mb` of
#: `python -m graphmint.pipeline.serving.server`)
MAX_REQUEST_MB = 64.0
_AGAIN = "package the bundle again with `graphmint package`"


def _classes(signatures: Mapping[str, Signature]) -> tuple[type, type]:
    """kserve's Model and DataPlane, with every request checked against its model's signature."""
    import kserve
    import onnxruntime as ort
    from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
    from kserve.errors import InvalidInput
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
    from kserve.utils.numpy_codec import from_np_dtype

    class OnnxModel(kserve.Model):
        """One bundle entry: checks a request against the model's signature, then runs ORT."""

        def __init__(self, name: str, path: Path) -> None:
            super().__init__(name)
            self.path = path
            self.session: Any = None

        def load(self) -> bool:
            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
            self.ready = True
            return True

        def _feeds(self, request: InferRequest) -> dict[str, np.ndarray]:
            claims = [TensorClaim(i.name, i.shape, i.datatype, data=i.data) for i in request.inputs]
            try:
                decoded = signatures[self.name].check(claims)
            except RequestRejected as exc:
                raise InvalidInput(str(exc)) from None
            return {name: array for name, array in decoded.items() if array is not None}

        async def predict(
            self, payload: InferRequest, headers: Any = None, response_headers: Any = None
        ) -> Any:
            if not isinstance(payload, InferRequest):
                raise InvalidInput(f"this server speaks KServe v2: POST /v2/models/{self.name}/infer")
            feeds = self._feeds(payload)
            names = [o.name for o in self.session.get_outputs()]
            outputs = []
            for name, value in zip(names, self.session.run(None, feeds), strict=True):
                out = InferOutput(name=name, shape=list(value.shape), datatype=from_np_dtype(value.dtype))
                out.set_data_from_numpy(value, binary_data=False)
                outputs.append(out)
            return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=outputs)

    class CheckedDataPlane(DataPlane):
        """kserve's data plane, checking a binary request before kserve reshapes its bytes (which
        it does while parsing the body, before any model sees it)."""

        def decode_inference_request(self, body: Any, headers: Any, model_name: str) -> Any:
            length = headers.get(INFERENCE_CONTENT_LENGTH_HEADER) if headers else None
            if isinstance(body, bytes) and model_name in signatures and length is not None:
                try:
                    signatures[model_name].check(binary_claims(body, length))
                except RequestRejected as exc:
                    raise InvalidInput(str(exc)) from None
            return super().decode_inference_request(body, headers, model_name)

    return OnnxModel, CheckedDataPlane


class _ClientErrorsInOneLine(logging.Filter):
    """kserve logs a traceback with every 400; a client's mistake is one line of the server's log."""

    def __init__(self, client_error: type[Exception]) -> None:
        super().__init__()
        self.client_error = client_error

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, self.client_error):
            record.msg, record.args, record.exc_info, record.exc_text = f"400: {error}", (), None, None
        return True


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def _inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root)


def _read_manifest(bundle: Path) -> BundleManifest:
    """MANIFEST.json, checked against its schema (pipeline.manifest: types, and paths that stay in the
    bundle), with every tensor's dtype one serving knows and every named dim one of `dims`."""
    path = bundle / "MANIFEST.json"
    if not path.is_file():
        raise UsageError(f"{bundle} has no MANIFEST.json: pass the folder `graphmint package` wrote")
    manifest = read_bundle_manifest(bundle)
    for model in manifest.models:
        for tensor in [*model.inputs, *model.outputs]:
            where = f"{path}: model {model.name} tensor {tensor.name!r}"
            if tensor.dtype not in V2_DATATYPES:
                raise UsageError(f"{where}: {tensor.dtype!r} is not a known dtype: {_AGAIN}")
            for dim in tensor.shape:
                if isinstance(dim, str) and dim not in model.dims:
                    raise UsageError(f"{where}: dim {dim!r} is not one of the model's dims: {_AGAIN}")
    return manifest


def _links_outside(bundle: Path, root: Path) -> Iterator[Path]:
    """Symbolic links under the bundle that lead outside it."""
    for folder, dirs, files in os.walk(bundle):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            if path.is_symlink() and not _inside(root, path):
                yield path


def _onnx_entries(bundle: Path, manifest: BundleManifest) -> Iterator[tuple[BundleModel, BundleEntry, Path]]:
    """(model, entry, its model.onnx) for every entry that `serve` serves."""
    for model in manifest.models:
        for entry in model.entries:
            if entry.server == "triton" and entry.platform == "onnxruntime_onnx":
                yield model, entry, bundle / entry.path / "1" / "model.onnx"


def _tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto of an ONNX graph: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        yield from _attribute_tensors(node.attribute)


def _attribute_tensors(attributes: Any) -> Iterator[Any]:
    for attribute in attributes:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        sparse = list(attribute.sparse_tensors)
        if attribute.HasField("sparse_tensor"):
            sparse.append(attribute.sparse_tensor)
        for tensor in sparse:
            yield from (tensor.values, tensor.indices)
        graphs = list(attribute.graphs)
        if attribute.HasField("g"):
            graphs.append(attribute.g)
        for graph in graphs:
            yield from _tensors(graph)


def _check_onnx(name: str, path: Path, bundle: Path) -> None:
    """The model parses, keeps its external data in its own folder, and loads in ONNX Runtime."""
    import onnx
    import onnxruntime as ort

    where = path.relative_to(bundle).as_posix()
    if not path.is_file():
        raise UsageError(f"entry {name}: {where} is missing: {_AGAIN}")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and whatever else a corrupt file raises
        raise UsageError(f"entry {name}: {where} is not an ONNX model ({_one_line(exc)}): {_AGAIN}") from exc
    folder = path.parent.resolve()
    functions = (t for f in proto.functions for node in f.node for t in _attribute_tensors(node.attribute))
    for tensor in (*_tensors(proto.graph), *functions):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        if not location or not (folder / location).resolve().is_relative_to(folder):
            raise UsageError(
                f"entry {name}: {where} reads tensor {tensor.name!r} from {location!r}, outside its "
                f"folder: export the model and {_AGAIN}"
            )
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the error is reported below, once
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own classes for each kind of failure
        raise UsageError(
            f"entry {name}: ONNX Runtime cannot load {where} ({_one_line(exc)}): {_AGAIN}"
        ) from exc


def check_bundle_for_serving(bundle: Path, verify_key: Path | None = None) -> BundleManifest:
    """Check everything `serve` reads from a bundle, before a server starts; return its MANIFEST.json.

    The manifest parses and holds what serving reads; no path it names and no link in the bundle
    leads outside the bundle; every file hashes as the manifest says; every ONNX entry keeps its
    external data in its own folder and loads in ONNX Runtime. Raises `UsageError` (one line: what is
    wrong, what to do) at the first problem.
    """
    from graphmint.pipeline.serving.bundle import verify_bundle

    manifest = _read_manifest(bundle)
    root = bundle.resolve()
    for link in _links_outside(bundle, root):
        raise UsageError(
            f"{link} links to {link.resolve()}, outside the bundle: {_AGAIN} (it copies files, not links)"
        )
    for model in manifest.models:  # resolved, symbolic links included (the schema checked the text)
        for relative in [model.golden, *(e.path for e in model.entries)]:
            inside(bundle, relative)
    check = verify_bundle(bundle, verify_key)
    kinds = {"changed": check.changed, "missing": check.missing, "added": check.added}
    if any(kinds.values()):  # first: it names the files (a bundle signature covers them all)
        differ = "; ".join(f"{kind}: {', '.join(paths[:3])}" for kind, paths in kinds.items() if paths)
        raise UsageError(
            f"{bundle} differs from its MANIFEST.json ({differ}): see `graphmint verify-bundle {bundle}`, "
            f"and {_AGAIN}"
        )
    if not check.signature_ok:
        raise UsageError(f"{bundle} is refused: {check.signature}")
    for _, entry, path in _onnx_entries(bundle, manifest):
        _check_onnx(entry.name, path, bundle)
    return manifest


def _bind(port: int) -> socket.socket:
    """A socket bound to HOST:port, for the server to listen on; UsageError if it cannot be had."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's own socket would
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {HOST}:{port} ({exc.strerror or exc}): stop what uses it or pass --port "
            "with a free port"
        ) from exc
    return sock


def serve(
    bundle: Path, port: int, max_request_mb: float = MAX_REQUEST_MB, verify_key: Path | None = None
) -> None:
    """Serve every ONNX entry of the bundle until the process is stopped.

    The bundle (`check_bundle_for_serving`) and the port are checked first: a problem raises
    `UsageError` before kserve is imported or anything listens.
    """
    if not 1 <= port <= 65535:
        raise UsageError(f"port {port} is not in 1..65535: pass --port with a free port")
    if not (math.isfinite(max_request_mb) and max_request_mb > 0):
        raise UsageError(f"--max-request-mb is {max_request_mb}: pass a positive number of MiB")
    manifest = check_bundle_for_serving(bundle, verify_key)
    max_bytes = int(max_request_mb * 2**20)
    signatures = {
        entry.name: Signature(entry.name, tuple(model.inputs), model.dims, max_bytes)
        for model, entry, _ in _onnx_entries(bundle, manifest)
    }
    sock = _bind(port)
    try:
        from kserve import ModelServer
        from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
        from kserve.errors import InvalidInput
        from kserve.logging import KSERVE_LOGGER_NAME
        from kserve.protocol.rest.server import RESTServer

        onnx_model, data_plane = _classes(signatures)
        server = ModelServer(http_port=port, enable_grpc=False, workers=1)
        for _, entry, path in _onnx_entries(bundle, manifest):
            instance = onnx_model(entry.name, path)
            instance.load()
            server.register_model(instance)
        rest = RESTServer(
            FASTAPI_APP_IMPORT_STRING,
            data_plane(model_registry=server.registered_models),
            server.model_repository_extension,
            port,
        )
        rest.config.host = HOST  # loopback only: the socket below is bound there
        logging.getLogger(KSERVE_LOGGER_NAME).addFilter(_ClientErrorsInOneLine(InvalidInput))
        print(f"serving {bundle} on http://{HOST}:{port}", flush=True)
        rest.run(sockets=[sock])
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphmint.pipeline.serving.server")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--max-request-mb",
        type=float,
        default=MAX_REQUEST_MB,
        help=f"the most tensor data a request may hold, in MiB (default {MAX_REQUEST_MB:g})",
    )
    args = parser.parse_args(argv)
    try:
        serve(args.bundle, args.port, args.max_request_mb)
    except UsageError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
