"""How long the CI loop takes: `make bench-pipeline` (python -m graphmint.pipeline.bench.pipeline).

It copies the zoo (its config and model modules) into a scratch project, so that touching a model's
source changes nothing of graphmint's, and times `graphmint run` there as a user's CI would run it,
start-up included:

- cold, one cell at a time (`--jobs 1`, no cache), and cold with every core (`--jobs N`, an empty
  cache that the run fills): the `--jobs` speedup;
- warm: nothing changed, every model from the cache;
- touched: one statement added to one model's factory; that model alone must run again.

Prints one line per run and a summary table of wall times and ratios; exit 1 where a run failed, or a
warm or touched run ran a model it should have taken from the cache.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from graphmint.pipeline.run.executors import available_cores
from graphmint.pipeline.spec.config import load_config

__all__ = ["main"]

#: the zoo's model modules, as the scratch project names them
_ZOO_PACKAGE = "graphmint.models."


@dataclass
class Timed:
    label: str
    seconds: float
    ran: list[str]
    cached: list[str]
    code: int


def _scratch_project(config: Path, folder: Path) -> Path:
    """The config's models, their refs pointing at copies of the zoo modules in `folder`."""
    text = config.read_text()
    for module in sorted(set(re.findall(rf'"{re.escape(_ZOO_PACKAGE)}(\w+):', text))):
        found = importlib.util.find_spec(f"{_ZOO_PACKAGE}{module}")  # found, not imported
        assert found is not None and found.origin is not None
        shutil.copy(found.origin, folder / f"{module}.py")
    (folder / "graphmint.toml").write_text(text.replace(f'"{_ZOO_PACKAGE}', '"'))
    return folder / "graphmint.toml"


def _touch(project: Path, ref: str) -> None:
    """Add one statement at the top of the body of `ref`'s function (a change a cache must see)."""
    module, _, name = ref.partition(":")
    path = project / f"{module}.py"
    source = path.read_text()
    node = next(
        n
        for n in ast.parse(source).body
        if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name.split(".")[0]
    )
    first = node.body[0]
    lines = source.splitlines(keepends=True)
    lines.insert(first.lineno - 1, " " * first.col_offset + "touched = True  # bench-pipeline\n")
    path.write_text("".join(lines))


def _run(project: Path, label: str, jobs: int, cache: Path | None, out: Path) -> Timed:
    env = {**os.environ, "GRAPHMINT_CACHE": str(cache) if cache else "off"}
    command = [sys.executable, "-m", "graphmint.pipeline.cli", "run", "graphmint.toml"]
    command += ["--out", str(out), "--jobs", str(jobs)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    models = json.loads((out / "report.json").read_text())["models"] if (out / "report.json").exists() else []
    timed = Timed(
        label,
        seconds,
        ran=[m["name"] for m in models if not m["cached"]],
        cached=[m["name"] for m in models if m["cached"]],
        code=done.returncode,
    )
    print(
        f"{label:<34} {seconds:7.1f} s  exit {done.returncode}  ran {len(timed.ran)}, "
        f"from the cache {len(timed.cached)}",
        flush=True,
    )
    if done.returncode not in (0, 1):
        print(done.stderr[-2000:], file=sys.stderr)
    return timed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="graphmint-bench-pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", type=Path, default=Path("graphmint.toml"))
    parser.add_argument("--jobs", type=int, default=available_cores(), help="the parallel runs' --jobs")
    parser.add_argument("--touch", help="the model whose factory is touched (default: the config's last)")
    args = parser.parse_args(argv)
    specs = load_config(args.config)
    touched = next((s for s in specs if s.name == args.touch), specs[-1]) if specs else None
    if touched is None:
        parser.error(f"{args.config} has no models")
    with tempfile.TemporaryDirectory(prefix="graphmint-bench-pipeline-") as scratch:
        project = Path(scratch) / "project"
        project.mkdir()
        _scratch_project(args.config.resolve(), project)
        cache = Path(scratch) / "cache"
        print(f"{len(specs)} models, {args.jobs} jobs, scratch project {project}", flush=True)
        serial = _run(project, "cold, --jobs 1, no cache", 1, None, Path(scratch) / "serial")
        cold = _run(project, f"cold, --jobs {args.jobs}", args.jobs, cache, Path(scratch) / "cold")
        warm = _run(project, f"warm, --jobs {args.jobs}", args.jobs, cache, Path(scratch) / "warm")
        _touch(project, touched.ref.removeprefix(_ZOO_PACKAGE))
        touch = _run(
            project,
            f"{touched.name} touched, --jobs {args.jobs}",
            args.jobs,
            cache,
            Path(scratch) / "touched",
        )
    print()
    print("| run | wall time | ratio to cold --jobs 1 | models run |")
    print("|---|---|---|---|")
    for timed in (serial, cold, warm, touch):
        ratio = serial.seconds / timed.seconds if timed.seconds else float("inf")
        print(f"| {timed.label} | {timed.seconds:.1f} s | {ratio:.2f}x | {', '.join(timed.ran) or 'none'} |")
    wrong = []
    if warm.ran:
        wrong.append(f"the warm run ran {', '.join(warm.ran)}")
    if touch.ran != [touched.name]:
        wrong.append(f"touching {touched.name} ran {', '.join(touch.ran) or 'nothing'}")
    failed = [t.label for t in (serial, cold, warm, touch) if t.code != 0]
    for line in wrong + [f"{label}: exit code not 0" for label in failed]:
        print(f"bench-pipeline: {line}", file=sys.stderr)
    return 1 if wrong or failed else 0


if __name__ == "__main__":
    sys.exit(main())
