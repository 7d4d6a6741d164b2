"""Atomic publishing: a failed, interrupted or killed run leaves the previous artifacts as they were."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from graphmint.pipeline.errors import UsageError
from graphmint.pipeline.publish.staging import OWNER_FILE, STAGING_PREFIX, Staging, sweep_stale
from tests.conftest import ROOT

Cli = Callable[..., CompletedProcess[str]]

MODELS = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    import torch
    from torch import nn

    class Slow(nn.Linear):
        # inside the route's export (torch.jit.trace calls it), it says so and waits to be stopped
        def forward(self, x):
            if torch.jit.is_tracing():
                Path(os.environ["PUBMODELS_TRACING"]).touch()
                time.sleep(120)
            return super().forward(x)

    def fast():
        return nn.Linear(4, 2)

    def slow():
        return Slow(4, 2)


    def wrong():
        return nn.Sequential(nn.Linear(4, 2), Frozen())

    class Frozen(nn.Module):
        def forward(self, x):
            return x.reshape(int(x.shape[0]), 2)
    """
)


def _model_dirs(out: Path) -> list[str]:
    """Folders under `out`, hidden ones included, but not the reports a run writes next to them."""
    return sorted(p.name for p in out.iterdir() if p.is_dir() and p.name not in ("plots", "logs"))


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _export(cli: Cli, workdir: Path, factory: str) -> CompletedProcess[str]:
    """Publish `pubmodels:<factory>` as model `m` under workdir/out, through the CLI."""
    return cli(
        "export",
        f"pubmodels:{factory}",
        "--input",
        "x:float32[batch,4]",
        "--name",
        "m",
        "--routes",
        "torchscript-trace",
        "--out",
        "out",
        cwd=workdir,
    )


@pytest.fixture
def published(tmp_path: Path, graphmint_cli: Cli) -> tuple[Path, dict[str, str]]:
    (tmp_path / "pubmodels.py").write_text(MODELS)
    proc = _export(graphmint_cli, tmp_path, "fast")
    assert proc.returncode == 0, proc.stderr
    return tmp_path, tree_digest(tmp_path / "out" / "m")


def _start_slow(workdir: Path) -> subprocess.Popen[bytes]:
    """Export `pubmodels:slow`, whose trace blocks once it has touched workdir/tracing."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PUBMODELS_TRACING": str(workdir / "tracing")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "graphmint.pipeline",
            "export",
            "pubmodels:slow",
            "--input",
            "x:float32[batch,4]",
            "--name",
            "m",
            "--routes",
            "torchscript-trace",
            "--out",
            "out",
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_route_work(workdir: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Until the slow model is being traced: the run is inside its route's export, where it stays
    until it is stopped, with the route's folder in staging."""
    deadline = time.monotonic() + timeout
    while not (workdir / "tracing").exists():
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "the run never started its route"
        time.sleep(0.05)
    assert list((workdir / "out").glob(f"{STAGING_PREFIX}m-*/torchscript-trace")), "no route in staging"


def test_failing_run_keeps_previous(published: tuple[Path, dict[str, str]], graphmint_cli: Cli) -> None:
    workdir, before = published
    proc = _export(graphmint_cli, workdir, "wrong")
    assert proc.returncode == 1
    assert tree_digest(workdir / "out" / "m") == before
    assert _model_dirs(workdir / "out") == ["m"]


# SIGKILL at several points, with the next run's sweep: tests/test_processes.py
@pytest.mark.parametrize("sig", [signal.SIGTERM], ids=["SIGTERM"])
def test_killed_run_keeps_previous(
    published: tuple[Path, dict[str, str]], graphmint_cli: Cli, sig: signal.Signals
) -> None:
    workdir, before = published
    out = workdir / "out"
    proc = _start_slow(workdir)
    try:
        _wait_for_route_work(workdir, proc)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert tree_digest(out / "m") == before
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    if sig == signal.SIGTERM:
        assert leftovers == [], "a terminated run must clean its staging folder"
    else:
        assert all(name.startswith(STAGING_PREFIX) for name in leftovers)  # hidden, never at out/m
        again = _export(graphmint_cli, workdir, "fast")
        assert again.returncode == 0, again.stderr
        assert _model_dirs(out) == ["m"], "the next run sweeps what a killed run left"
        assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_staging_commit_swaps_and_failure_cleans(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.json").write_text("{}")
    with pytest.raises(RuntimeError), Staging(tmp_path, "m") as staging:
        assert staging.path is not None
        (staging.path / "manifest.json").write_text('{"new": 1}')
        raise RuntimeError("export blew up")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert (tmp_path / "m" / "manifest.json").read_text() == "{}"
    with Staging(tmp_path, "m") as staging:
        assert staging.path is not None
        (staging.path / "manifest.json").write_text('{"new": 1}')
        staging.commit()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["manifest.json"]
    assert (tmp_path / "m" / "manifest.json").read_text() == '{"new": 1}'


def test_a_folder_graphmint_did_not_publish_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not published by graphmint"), Staging(tmp_path, "m"):
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"


def test_sweep_removes_only_what_graphmint_made_and_puts_back_a_parked_version(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    pid = int(dead.stdout)
    users = tmp_path / f"{STAGING_PREFIX}mine-{pid}-x"  # looks like staging, but no owner file
    users.mkdir()
    stale = tmp_path / f"{STAGING_PREFIX}m-{pid}-y"
    stale.mkdir()
    (stale / OWNER_FILE).write_text(json.dumps({"pid": pid, "token": "t1", "target": "m"}))
    parked = tmp_path / f".graphmint-old-p-{pid}-z"  # killed between parking p and moving in the new p
    (parked / "prev").mkdir(parents=True)
    (parked / "prev" / "manifest.json").write_text("{}")
    (parked / OWNER_FILE).write_text(json.dumps({"pid": pid, "token": "t2", "target": "p"}))
    removed = sweep_stale(tmp_path)
    assert sorted(removed) == sorted([stale, parked])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([users.name, "p"])
    assert (tmp_path / "p" / "manifest.json").read_text() == "{}"
