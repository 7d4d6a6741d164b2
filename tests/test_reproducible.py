"""Two builds of the same model, seed and routes give the same bytes: every artifact file and every
golden file, except those the manifest marks unreproducible (with why), and the same manifest but
for timings. Zoo models of both frameworks are built a second time and compared with the zoo run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graphmint.pipeline.run.results import ModelResult
from graphmint.pipeline.run.stages import RunOptions, run_model
from tests.conftest import zoo_specs

Zoo = tuple[Path, dict[str, ModelResult]]

#: keys whose values are measurements of this run, not properties of the artifact
TIMINGS = {"seconds"}


def _files(manifest: dict[str, Any], routes: set[str]) -> dict[str, dict[str, Any]]:
    entries = [f for r in manifest["routes"] if r["route"] in routes for f in r.get("files", [])]
    entries += [f for g in manifest["golden"] for f in g["files"]]
    return {f["path"]: f for f in entries}


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Key paths where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in a.keys() | b.keys() for d in _differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [f"{where}: {str(a)[:80]} != {str(b)[:80]}"]


def _without_timings(value: Any) -> Any:
    """The value without measurements, and without the bytes of files marked unreproducible."""
    if isinstance(value, dict):
        drop = TIMINGS | ({"sha256", "bytes"} if value.get("unreproducible") else set())
        return {k: _without_timings(v) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("framework", "model", "routes"),
    [
        ("torch", "ModelWithCustom", ("torchscript-trace", "torchscript-script", "torch-export", "onnx")),
        # TorchScript orders constants by string hash: a model with many (make test-long)
        pytest.param(
            "torch",
            "TransformerBlock",
            ("torchscript-trace", "torchscript-script", "torch-export", "onnx"),
            marks=pytest.mark.long,
        ),
        ("tensorflow", "KerasSimpleNet", ("saved-model", "tflite", "onnx")),
    ],
)
def test_a_second_build_gives_the_same_bytes(
    request: pytest.FixtureRequest, tmp_path: Path, framework: str, model: str, routes: tuple[str, ...]
) -> None:
    zoo: Zoo = request.getfixturevalue("torch_zoo" if framework == "torch" else "keras_zoo")
    first_out, _ = zoo
    spec = next(s for s in zoo_specs(framework) if s.name == model)
    second = run_model(spec, RunOptions(out=tmp_path, routes=routes))
    assert second.published is not None, [(r.route, r.reason) for r in second.routes]
    first = json.loads((first_out / model / "manifest.json").read_text())
    again = json.loads((tmp_path / model / "manifest.json").read_text())
    before, after = _files(first, set(routes)), _files(again, set(routes))
    assert before.keys() == after.keys()
    differ = sorted(p for p in before if before[p]["sha256"] != after[p]["sha256"])
    unreproducible = sorted(p for p in before if before[p].get("unreproducible"))
    assert differ == [p for p in unreproducible if p in differ], f"bytes differ: {differ}"
    assert all(after[p].get("unreproducible") for p in unreproducible)
    if framework == "tensorflow":  # the SavedModel's fingerprint carries a random id, and says so
        assert any(p.endswith("fingerprint.pb") for p in unreproducible)
    same_routes = [r for r in first["routes"] if r["route"] in routes]
    assert not _differences(_without_timings(same_routes), _without_timings(again["routes"]))
    assert _without_timings({k: v for k, v in first.items() if k != "routes"}) == _without_timings(
        {k: v for k, v in again.items() if k != "routes"}
    )
