"""Heavy frameworks load lazily: `import graphmint.pipeline` loads neither framework, and a torch run
never loads TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.conftest import ROOT


def _modules_after(code: str) -> dict[str, bool]:
    probe = textwrap.dedent(code) + textwrap.dedent(
        """
        import json, sys
        print(json.dumps({m: m in sys.modules for m in ("torch", "tensorflow", "keras", "tf2onnx")}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    loaded: dict[str, bool] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def test_import_pipeline_loads_no_framework() -> None:
    loaded = _modules_after(
        """
        import graphmint.pipeline, graphmint.pipeline.cli, graphmint.exporters, graphmint.validators
        from graphmint.exporters import ROUTE_MODULES, get_route
        for fw, name in ROUTE_MODULES:
            get_route(fw, name)
        """
    )
    assert not any(loaded.values()), loaded


def test_torch_only_run_never_imports_tensorflow(tmp_path: object) -> None:
    loaded = _modules_after(
        f"""
        from pathlib import Path
        from graphmint.pipeline import RunOptions, load_config, run_models
        specs = [s for s in load_config(Path("graphmint.toml")) if s.name == "ModelWithCustom"]
        # a reduced route too: its module holds the TensorFlow chain's routes as well
        routes = ("torchscript-trace", "onnx", "onnx-int8-dynamic")
        [result] = run_models(specs, RunOptions(out=Path({str(tmp_path)!r}), routes=routes, jobs=2))
        assert result.ok, [(r.route, r.status, r.reason) for r in result.routes]
        """
    )
    assert loaded["torch"]
    assert not loaded["tensorflow"] and not loaded["keras"] and not loaded["tf2onnx"], loaded
