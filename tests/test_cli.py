"""The CLI contract: user models by module:callable, exit codes, one-line errors, frozen dims."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from graphmint.pipeline.cli import main
from graphmint.pipeline.publish.manifest import read_model_manifest

Cli = Callable[..., CompletedProcess[str]]

USER_MODELS = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(6, 3)

        def forward(self, x, scale):
            return self.proj(x) * scale, x.sum(dim=-1)

    def build():
        return Net()

    class Frozen(nn.Module):
        # int() turns the traced size into a constant: the trace only works at the example size
        def forward(self, x):
            return x.reshape(x.shape[0], int(x.shape[1]) * 4).sum(dim=1)

    def frozen():
        return Frozen()

    class SizeOneSpecialCase(nn.Module):
        # a branch on the batch size: tracing at the example size records the other branch
        def forward(self, x):
            if x.shape[0] == 1:
                return x * 2
            return x * 3

    def size_one():
        return SizeOneSpecialCase()

    def broken():
        raise RuntimeError("weights file missing")

    def not_a_model():
        return 42

    NOT_CALLABLE = 3
    """
)


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    (tmp_path / "usermodels.py").write_text(USER_MODELS)
    return tmp_path


def test_user_model_from_a_temporary_directory(graphmint_cli: Cli, user_dir: Path) -> None:
    proc = graphmint_cli(
        "export",
        "usermodels:build",
        "--input",
        "x:float32[batch,6]",
        "--input",
        "scale:float32[1]",
        "--routes",
        "torchscript-trace,torch-export,onnx",
        "--out",
        "out",
        cwd=user_dir,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = read_model_manifest(user_dir / "out" / "build")
    assert manifest.framework == "torch"
    assert [o.name for o in manifest.outputs] == ["output_0", "output_1"]
    assert manifest.outputs[0].shape == ["batch", 3]
    assert [r.status for r in manifest.routes] == ["passed"] * 3
    assert "onnx" in proc.stdout and "passed" in proc.stdout  # the summary table
    assert "[3/3]" in proc.stderr  # progress


def test_frozen_dimension_fails_and_says_which(graphmint_cli: Cli, user_dir: Path) -> None:
    proc = graphmint_cli(
        "export",
        "usermodels:frozen",
        "--input",
        "x:float32[batch,seq,4]",
        "--dim",
        "seq=1..9@3",
        "--routes",
        "torchscript-trace",
        "--out",
        "out",
        cwd=user_dir,
    )
    assert proc.returncode == 1
    assert "'seq' looks frozen at its example size 3" in proc.stdout
    assert not (user_dir / "out" / "frozen").exists(), "a failing model must not be published"
    leftovers = [p.name for p in (user_dir / "out").iterdir() if p.name.startswith(".")]
    assert not leftovers, "no staging folder may be left behind"
    report = (user_dir / "out" / "report.md").read_text()
    assert "'seq' looks frozen" in report and "Try next:" in report, "the report names the frozen dim"
    [route] = json.loads((user_dir / "out" / "report.json").read_text())["models"][0]["routes"]
    assert route["diagnosis"] == "frozen-dim"
    assert "fixed a dimension you declared dynamic" in report  # the advice follows the typed diagnosis


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["export", "nosuchmodule:build", "--input", "x:float32[2]"], "cannot import module 'nosuchmodule'"),
        (["export", "usermodels:nothing", "--input", "x:float32[2]"], "has no attribute 'nothing'"),
        (["export", "usermodels:NOT_CALLABLE", "--input", "x:float32[2]"], "is not callable"),
        (["export", "usermodels", "--input", "x:float32[2]"], "module:callable"),
        (["export", "usermodels:broken", "--input", "x:float32[2]"], "weights file missing"),
        (["export", "usermodels:not_a_model", "--input", "x:float32[2]"], "not a model"),
        (["export", "usermodels:build", "--input", "x:float32[batch;6]"], "neither a size nor a name"),
        (["export", "usermodels:build", "--input", "x:float32[batch,6]"], "rejects its declared inputs"),
        (
            ["export", "usermodels:build", "--input", "x:float32[batch,7]", "--input", "scale:float32[1]"],
            "rejects its declared inputs",
        ),
        (
            ["export", "usermodels:build", "--input", "x:float32[batch,6]", "--dim", "seq=1..4"],
            "which no input uses",
        ),
        (
            [
                "export",
                "usermodels:build",
                "--input",
                "x:float32[b,6]",
                "--input",
                "scale:float32[1]",
                "--routes",
                "tflite",
            ],
            "route 'tflite' does not apply to a torch model",
        ),
        (
            [
                "export",
                "usermodels:build",
                "--input",
                "x:float32[b,6]",
                "--input",
                "scale:float32[1]",
                "--routes",
                "onnx,fast",
            ],
            "unknown route 'fast'",
        ),
        (["run", "missing.toml"], "not found"),
        (["export"], "required"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    user_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    monkeypatch.chdir(user_dir)
    code = main([*args, "--out", "out"] if args[0] == "export" and len(args) > 1 else args)
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("graphmint: error:")]
    assert len(lines) == 1 and fragment in lines[0], err
    assert not (user_dir / "out").exists() or not list((user_dir / "out").iterdir())


def test_bad_input_has_no_traceback_in_a_real_process(graphmint_cli: Cli, user_dir: Path) -> None:
    proc = graphmint_cli("export", "usermodels:broken", "--input", "x:float32[2]", cwd=user_dir)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "graphmint: error: calling 'usermodels:broken' raised RuntimeError: weights file missing"
    ]


def test_list_shows_models_and_routes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", str(Path(__file__).parent.parent / "graphmint.toml")]) == 0
    out = capsys.readouterr().out
    for route in (
        "torchscript-trace",
        "torchscript-script",
        "torch-export",
        "torch-compile",
        "onnx",
        "aot-inductor",
    ):
        assert route in out
    assert "SimpleNet" in out and "TransformerBlock" in out


def test_the_seed_decides_the_weights(
    user_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    monkeypatch.chdir(user_dir)
    weights = []
    for out, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        spec = ["--input", "x:float32[batch,6]", "--input", "scale:float32[1]"]
        args = ["export", "usermodels:build", *spec, "--routes", "torchscript-trace", "--seed", seed]
        assert main([*args, "--out", out]) == 0, capsys.readouterr().err
        module = torch.jit.load(str(user_dir / out / "build" / "torchscript-trace" / "model.pt"))
        weights.append(module.state_dict()["proj.weight"])
    assert torch.equal(weights[0], weights[1]), "the same seed must give the same weights"
    assert not torch.equal(weights[0], weights[2]), "another seed must give other weights"


MASKED_MEAN = textwrap.dedent(
    """
    import numpy as np
    import torch
    from torch import nn

    class MaskedMean(nn.Module):
        # averages the positions a mask keeps: an all-False row would divide by zero
        def forward(self, x, mask):
            m = mask.unsqueeze(-1).to(x.dtype)
            return (x * m).sum(dim=1) / m.sum(dim=1)

    def build():
        return MaskedMean()

    def prefix_masks(shapes, rng):
        batch, seq = shapes["mask"]
        lengths = rng.integers(1, seq, size=batch, endpoint=True)
        return {"mask": np.arange(seq)[None, :] < lengths[:, None]}
    """
)


def test_model_named_input_generator(graphmint_cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "masked.py").write_text(MASKED_MEAN)
    args = [
        "export",
        "masked:build",
        "--input",
        "x:float32[batch,seq,4]",
        "--input",
        "mask:bool[batch,seq]",
        "--routes",
        "torchscript-trace",
        "--out",
        "out",
    ]
    plain = graphmint_cli(*args, cwd=tmp_path)
    assert plain.returncode == 1 and "NaN" in plain.stdout  # random masks leave some rows empty
    structured = graphmint_cli(*args, "--generator", "masked:prefix_masks", cwd=tmp_path)
    assert structured.returncode == 0, structured.stdout + structured.stderr
    manifest = read_model_manifest(tmp_path / "out" / "build")
    assert [r.status for r in manifest.routes] == ["passed"]


def test_a_failure_at_one_grid_point_is_named_there(graphmint_cli: Cli, user_dir: Path) -> None:
    proc = graphmint_cli(
        "export",
        "usermodels:size_one",
        "--input",
        "x:float32[batch,4]",
        "--routes",
        "torchscript-trace",
        "--out",
        "out",
        cwd=user_dir,
    )
    assert proc.returncode == 1
    report = json.loads((user_dir / "out" / "report.json").read_text())
    [route] = report["models"][0]["routes"]
    points = {p["label"]: p["status"] for p in route["checks"][0]["points"]}
    assert points.pop("batch=1") == "failed"
    assert set(points.values()) == {"passed"}, "only batch=1 fails"
    assert "fails at batch=1:" in route["reason"]


SLOW_TRACE = """
import time

import torch


class Net(torch.nn.Module):
    def forward(self, x):
        if torch.jit.is_tracing():
            time.sleep(600)  # an exporter stuck in the model's code
        return x * 2


def build():
    return Net()
"""


def test_an_exporter_past_its_time_is_stopped(graphmint_cli: Cli, tmp_path: Path) -> None:
    """--export-timeout stops an exporter's child; the route errors with that reason, nothing publishes."""
    (tmp_path / "slowtrace.py").write_text(SLOW_TRACE)
    args = ["slowtrace:build", "--input", "x:float32[batch,4]", "--routes", "torchscript-trace"]
    started = time.monotonic()
    proc = graphmint_cli("export", *args, "--export-timeout", "3", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert time.monotonic() - started < 120
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    [route] = report["models"][0]["routes"]
    assert (
        route["status"] == "error" and "did not finish exporting within 3s" in route["rejected"][0]["reason"]
    )
    assert not (tmp_path / "out" / "build").exists()
