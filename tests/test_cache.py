"""The cache of published models: a model whose code, spec, packages and graphmint did not change is
published again from the cache without running; touching its source (or a project module it imports)
runs that model only; a cached file that changed is a miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphmint.pipeline.cli import main
from graphmint.pipeline.run.cache import CACHE_ENV
from graphmint.pipeline.run.executors import run_models
from graphmint.pipeline.run.stages import RunOptions
from graphmint.pipeline.spec.specs import make_model_spec

NET = """
import torch
{helper}

def build():
    with open("calls.txt", "a") as calls:  # each build of the model leaves a line: did it run?
        calls.write("{name}\\n")
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
"""


def _calls(folder: Path) -> list[str]:
    path = folder / "calls.txt"
    return path.read_text().split() if path.exists() else []


def test_unchanged_models_come_from_the_cache_and_a_touched_one_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "helper.py").write_text("SCALE = 1\n")
    (tmp_path / "net_a.py").write_text(NET.format(name="a", helper="import helper"))
    (tmp_path / "net_b.py").write_text(NET.format(name="b", helper=""))
    specs = [
        make_model_spec(
            name=n, ref=f"net_{n}:build", inputs=["x:float32[batch,4]"], routes=["torchscript-trace"]
        )
        for n in ("a", "b")
    ]
    options = RunOptions(out=tmp_path / "out")

    def run(**changes: object) -> dict[str, bool]:
        before = len(_calls(tmp_path))
        results = run_models(specs, RunOptions(**{**options.__dict__, **changes}))
        assert all(r.ok and r.published for r in results)
        ran = set(_calls(tmp_path)[before:])
        assert {r.name for r in results if not r.cached} == ran  # cached means it did not run
        return {r.name: r.cached for r in results}

    assert run() == {"a": False, "b": False}
    manifest = (tmp_path / "out" / "b" / "manifest.json").read_bytes()
    assert run() == {"a": True, "b": True}
    assert (tmp_path / "out" / "b" / "manifest.json").read_bytes() == manifest  # the same publication

    (tmp_path / "helper.py").write_text("SCALE = 2\n")  # a project module net_a imports, not net_b
    assert run() == {"a": False, "b": True}

    # another model's factory in net_b's file: b's own code did not change
    other = "\n\ndef other():\n    return torch.nn.Linear(4, 4)\n"
    (tmp_path / "net_b.py").write_text(NET.format(name="b", helper="") + other)
    assert run() == {"a": True, "b": True}

    # a cached file that changed is a miss, and the entry goes
    [cached_b] = [
        e
        for e in (tmp_path / "cache" / "models").iterdir()
        if (e / "folder" / "manifest.json").read_bytes() == manifest
    ]
    model = next((cached_b / "folder" / "torchscript-trace").iterdir())
    model.write_bytes(model.read_bytes() + b"\0")
    assert run() == {"a": True, "b": False}

    # b's own factory changed: b alone runs again
    (tmp_path / "net_b.py").write_text(NET.format(name="b", helper="").replace("Tanh", "ReLU") + other)
    assert run() == {"a": True, "b": False}

    assert run(cache=False) == {"a": False, "b": False}  # --no-cache

    # a's run before and after helper.py changed, and b's before and after its factory changed:
    # entries are kept by content, not by name
    assert main(["cache", "info"]) == 0
    assert "4 cached model run(s)" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert "removed 4 cached model run(s)" in capsys.readouterr().out
    assert run() == {"a": False, "b": False}


def test_what_bench_records_survives_a_run_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench records the recommendation (and the optimized ONNX route) into a published folder; a
    following run with nothing changed publishes from the cache, and keeps both."""
    from graphmint.pipeline.bench.command import run_bench
    from graphmint.pipeline.bench.measure import StabilityRule
    from graphmint.pipeline.bench.results import BenchOptions
    from graphmint.pipeline.bench.run import OPTIMIZED
    from graphmint.pipeline.publish.manifest import read_model_manifest

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "net_c.py").write_text(NET.format(name="c", helper=""))
    spec = make_model_spec(name="c", ref="net_c:build", inputs=["x:float32[batch,4]"], routes=["onnx"])
    options = RunOptions(out=tmp_path / "out")
    [first] = run_models([spec], options)
    assert first.published and not first.cached
    quick = StabilityRule(window_requests=3, window_s=0.02, min_windows=3, max_windows=4, warmup_requests=2)
    [bench] = run_bench(tmp_path / "out", None, BenchOptions(rule=quick, batches=(1,)), echo=lambda _: None)
    recorded = read_model_manifest(tmp_path / "out" / "c")
    assert bench.recommended is not None and recorded.recommended is not None
    assert OPTIMIZED in [r.route for r in recorded.routes]

    built = len(_calls(tmp_path))  # bench builds the model too, for its eager figures
    [again] = run_models([spec], options)
    assert again.cached and len(_calls(tmp_path)) == built  # from the cache: the model did not run
    kept = read_model_manifest(tmp_path / "out" / "c")
    assert kept.recommended == recorded.recommended
    assert [r.route for r in kept.routes] == [r.route for r in recorded.routes]
    assert again.recommended == recorded.recommended  # the run's own result (its reports) too
