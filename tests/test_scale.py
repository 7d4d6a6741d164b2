"""Cells run at once (--jobs), split over CI jobs (--shard I/N + merge) and as Ray tasks
(--executor ray, on a local Ray that the run starts and stops; make test-long): each publishes what one
run publishes, the same route statuses and the same ONNX bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graphmint.pipeline.cli import main
from graphmint.pipeline.publish.manifest import read_model_manifest

CONFIG = Path(__file__).resolve().parents[1] / "graphmint.toml"
RUN = ["run", str(CONFIG), "--models", "SimpleNet,ModelWithCustom", "--routes", "torchscript-trace,onnx"]


def _published(out: Path) -> dict[str, Any]:
    """Per model: whether it is ok and published, each route's status, and the sha256 of its ONNX
    files, from the folder's report and manifests."""
    report = json.loads((out / "report.json").read_text())
    found: dict[str, Any] = {}
    for model in report["models"]:
        manifest = read_model_manifest(out / model["name"])
        found[model["name"]] = {
            "ok": model["ok"],
            "routes": {r["route"]: r["status"] for r in model["routes"]},
            "onnx": {f.path: f.sha256 for r in manifest.routes for f in r.files if r.route == "onnx"},
        }
    return found


def test_parallel_and_sharded_runs_publish_what_one_run_publishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*RUN, "--out", str(tmp_path / "jobs2"), "--jobs", "2"]) == 0
    progress = capsys.readouterr().err
    assert "[running: " in progress  # the cells still running when one ends
    reference = _published(tmp_path / "jobs2")
    assert list(reference) == ["SimpleNet", "ModelWithCustom"]
    assert all(
        m["ok"] and m["routes"] == {"torchscript-trace": "passed", "onnx": "passed"}
        for m in reference.values()
    )
    assert all(m["onnx"] for m in reference.values())

    # two CI jobs, one cell at a time each, then merged into one folder and one report
    for index in (1, 2):
        args = [*RUN, "--out", str(tmp_path / f"shard{index}"), "--shard", f"{index}/2", "--jobs", "1"]
        assert main(args) == 0
    shard1 = json.loads((tmp_path / "shard1" / "report.json").read_text())
    assert [m["name"] for m in shard1["models"]] == ["SimpleNet"]
    merged = tmp_path / "merged"
    assert main(["merge", str(tmp_path / "shard2"), str(tmp_path / "shard1"), "--out", str(merged)]) == 0
    assert _published(merged) == reference
    assert (merged / "junit.xml").is_file() and (merged / "report.md").is_file()
    assert [p.name for p in merged.iterdir() if p.name.startswith(".")] == []  # no staging left


@pytest.mark.long
def test_ray_runs_publish_what_one_run_publishes(tmp_path: Path) -> None:
    """The ONNX cells of both models as two Ray tasks at once, each in a fresh worker process (a local
    Ray started and stopped for the run: ~20 s, so in make test-long)."""
    assert main([*RUN, "--out", str(tmp_path / "jobs2"), "--jobs", "2"]) == 0
    reference = _published(tmp_path / "jobs2")
    ray_run = [*RUN[:-1], "onnx", "--out", str(tmp_path / "ray"), "--executor", "ray", "--jobs", "2"]
    assert main(ray_run) == 0
    by_ray = _published(tmp_path / "ray")
    assert {m: r["routes"] for m, r in by_ray.items()} == {m: {"onnx": "passed"} for m in reference}
    assert {m: r["onnx"] for m, r in by_ray.items()} == {m: r["onnx"] for m, r in reference.items()}
