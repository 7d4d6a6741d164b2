"""A KServe v2 (Open Inference Protocol) server for a bundle's ONNX models, on ONNX Runtime.

Run as its own process: `python -m pipeline.server BUNDLE --port P`. It uses the kserve package's
data plane and REST endpoints, bound to 127.0.0.1 only (kserve's own ModelServer listens on every
interface). kserve is imported only here: it cannot share a process with tritonclient's gRPC protos.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HOST", "main"]

HOST = "127.0.0.1"


def _onnx_model_class() -> type:
    import kserve
    import onnxruntime as ort
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
    from kserve.utils.numpy_codec import from_np_dtype

    class OnnxModel(kserve.Model):  # type: ignore[misc]
        """One bundle entry: checks a request against the model's signature, then runs ORT."""

        def __init__(self, name: str, path: Path, inputs: list[dict[str, Any]]) -> None:
            super().__init__(name)
            self.path, self.inputs = path, inputs
            self.session: Any = None

        def load(self) -> bool:
            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
            self.ready = True
            return True

        def _feeds(self, request: InferRequest) -> dict[str, np.ndarray]:
            given = {i.name: i for i in request.inputs}
            expected = [i["name"] for i in self.inputs]
            if sorted(given) != sorted(expected):
                raise InvalidInput(
                    f"model {self.name} takes inputs {expected}, the request has {sorted(given)}"
                )
            feeds = {}
            for spec in self.inputs:
                array = given[spec["name"]].as_numpy()
                if str(array.dtype) != spec["dtype"]:
                    raise InvalidInput(f"input {spec['name']!r} must be {spec['dtype']}, got {array.dtype}")
                shape = spec["shape"]
                fixed_ok = len(array.shape) == len(shape) and all(
                    isinstance(d, str) or d == n for d, n in zip(shape, array.shape, strict=True)
                )
                if not fixed_ok:
                    raise InvalidInput(
                        f"input {spec['name']!r} must have shape {shape}, got {list(array.shape)}"
                    )
                feeds[spec["name"]] = array
            return feeds

        async def predict(
            self, payload: InferRequest, headers: Any = None, response_headers: Any = None
        ) -> Any:
            feeds = self._feeds(payload)
            names = [o.name for o in self.session.get_outputs()]
            outputs = []
            for name, value in zip(names, self.session.run(None, feeds), strict=True):
                out = InferOutput(name=name, shape=list(value.shape), datatype=from_np_dtype(value.dtype))
                out.set_data_from_numpy(value, binary_data=False)
                outputs.append(out)
            return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=outputs)

    return OnnxModel


def serve(bundle: Path, port: int) -> None:
    """Serve every ONNX entry of the bundle until the process is stopped."""
    from kserve import ModelServer
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    onnx_model = _onnx_model_class()
    server = ModelServer(http_port=port, enable_grpc=False, workers=1)
    for model in manifest["models"]:
        for entry in model["entries"]:
            if entry["server"] == "triton" and entry["platform"] == "onnxruntime_onnx":
                instance = onnx_model(
                    entry["name"], bundle / entry["path"] / "1" / "model.onnx", model["inputs"]
                )
                instance.load()
                server.register_model(instance)
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, port)
    rest.config.host = HOST  # loopback only
    print(f"serving {bundle} on http://{HOST}:{port}", flush=True)
    asyncio.run(rest.start())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.server")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.bundle, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
