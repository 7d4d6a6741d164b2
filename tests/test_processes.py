"""Child processes end with the graphmint process: killed outright (SIGKILL) at several points of a run,
or ending normally, it leaves no forkserver, child or resource tracker running, and the next run
publishes and sweeps what the killed one left in the temporary folder (real processes, real signals).

Every process of a run is found by a variable only that run's environment has (children inherit it),
so the checks do not depend on process ancestry, which a killed parent loses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from graphmint.pipeline.publish.staging import STAGING_PREFIX

ROOT = Path(__file__).resolve().parent.parent
MARK = "GRAPHMINT_TEST_PROCESSES_RUN"
#: seconds every process of a killed (or finished) run gets to exit
EXIT_WITHIN_S = 5.0
FORKSERVER = "multiprocessing.forkserver"


@pytest.fixture(scope="module", autouse=True)
def warm_children() -> None:
    """Replaces conftest's: these tests start graphmint processes and no child of their own."""


def _processes(mark: str) -> dict[int, str]:
    """pid -> command line of every live (not zombie) process whose environment holds `mark`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "stat").read_text().rpartition(")")[2].split()[0] in ("Z", "X"):
                continue
            if f"{MARK}={mark}".encode() not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):  # gone meanwhile, or not ours to read
            continue
    return found


def _children(processes: dict[int, str], parent: int) -> list[int]:
    kids = []
    for pid in processes:
        try:
            if int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1]) == parent:
                kids.append(pid)
        except OSError:
            continue
    return kids


@dataclass
class Run:
    """One `python -m graphmint.pipeline export` of a tiny model, in its own session and temporary folder."""

    out: Path
    tmp: Path
    log: Path
    mark: str = field(default_factory=lambda: uuid.uuid4().hex)
    process: subprocess.Popen[bytes] | None = None
    #: every process of the run seen while it ran
    seen: dict[int, str] = field(default_factory=dict)

    def start(self) -> None:
        self.tmp.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "TMPDIR": str(self.tmp),
            MARK: self.mark,
        }
        command = [
            sys.executable,
            "-m",
            "graphmint.pipeline",
            "export",
            "graphmint.models.torch_zoo:simple_net",
            "--input",
            "x:float32[batch,10]",
            "--dim",
            "batch=1..4",
            "--routes",
            "torchscript-trace",
            "--name",
            "m",
            "--out",
            str(self.out),
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=self.tmp, env=env, stdout=log, stderr=log, start_new_session=True
            )

    def look(self) -> dict[int, str]:
        now = _processes(self.mark)
        self.seen.update(now)
        return now

    def forkserver(self) -> int | None:
        assert self.process is not None
        now = self.look()
        return next((p for p in _children(now, self.process.pid) if FORKSERVER in now[p]), None)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 120.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"the run ended first:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the run never got there"
            time.sleep(0.05)

    def kill(self) -> float:
        """SIGKILL the graphmint process; seconds until every process of the run has exited."""
        assert self.process is not None
        self.look()
        os.kill(self.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        self.process.wait()
        return self.settle(killed)

    def settle(self, since: float) -> float:
        while left := _processes(self.mark):
            if time.monotonic() - since > EXIT_WITHIN_S:
                pytest.fail(f"still running {EXIT_WITHIN_S:g}s after graphmint ended: {left}")
            time.sleep(0.05)
        return time.monotonic() - since


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Run]]:
    """A first run that ends normally and publishes `m` (its manifest is what the kills must keep)."""
    folder = tmp_path_factory.mktemp("processes")
    run = Run(folder / "out", folder / "tmp", folder / "first.log")
    run.start()
    assert run.process is not None
    while run.process.poll() is None:
        run.look()
        time.sleep(0.1)
    assert run.process.returncode == 0, run.log.read_text()[-3000:]
    yield folder, run


def test_normal_end_leaves_no_child(published: tuple[Path, Run]) -> None:
    _, run = published
    assert any(FORKSERVER in cmd for cmd in run.seen.values()), "the run never started its forkserver"
    run.settle(time.monotonic())
    assert not list(run.tmp.glob("graphmint-*")), "the run left its temporary folder"
    assert not list(run.tmp.glob("pymp-*")), "the run left multiprocessing's temporary folder"


def _forkserver_started(run: Run) -> None:
    run.wait_until(lambda: run.forkserver() is not None)


def _child_working(run: Run) -> None:
    def child() -> bool:
        server = run.forkserver()
        return server is not None and bool(_children(run.look(), server))

    run.wait_until(child)


# (a kill 2 s after the start, before any child, was also tried: 1 process, gone in 0.03-0.05 s)
# the kill while only the forkserver runs is in `make test-long`: the kill while a child works covers
# the forkserver too, and `make test` keeps to its time budget
@pytest.mark.parametrize(
    "when",
    [pytest.param(_forkserver_started, marks=pytest.mark.long), _child_working],
    ids=lambda f: f.__name__,
)
def test_killed_run_leaves_nothing_running(published: tuple[Path, Run], when: Callable[[Run], None]) -> None:
    folder, first = published
    manifest = (first.out / "m" / "manifest.json").read_bytes()
    run = Run(first.out, folder / "tmp", folder / f"killed{when.__name__}.log")
    run.start()
    when(run)
    assert run.process is not None
    dead = run.process.pid
    took = run.kill()
    print(f"{when.__name__}: {len(run.seen)} processes, all gone {took:.2f}s after SIGKILL")
    assert (first.out / "m" / "manifest.json").read_bytes() == manifest

    again = Run(first.out, folder / "tmp", folder / f"again{when.__name__}.log")
    again.start()
    assert again.process is not None
    assert again.process.wait(timeout=180) == 0, again.log.read_text()[-3000:]
    again.settle(time.monotonic())
    assert (first.out / "m" / "manifest.json").is_file()
    assert not list(first.out.glob(f"{STAGING_PREFIX}*"))
    assert not list(run.tmp.glob(f"graphmint-{dead}-*")), "the next run did not sweep the killed one's folder"
    assert not list(run.tmp.glob("pymp-*")), "multiprocessing's temporary folder outlived the runs"
