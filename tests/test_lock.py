"""requirements.lock is the tested dependency set: it must be current with pyproject.toml, admit its
ranges, and be exactly what `make` installed.

The lock's header records a digest of what it was resolved from (`lock_inputs`). `make lock` writes it
and `make` checks it before installing by running this file (`python tests/test_lock.py --stamp` or
`--check`), so the digest has one definition; as a script it needs only the standard library.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
CONSTRAINTS = ROOT / "constraints.txt"
DIGEST = "# inputs-sha256: "
HEADER = (
    "# The tested dependency set of graphmint, every extra included, for CPython 3.11 on x86_64 Linux.\n"
    "# Made by `make lock` from pyproject.toml and constraints.txt (never edit it by hand); `make` installs\n"
    "# exactly this into .venv. The digest below is of those inputs; tests/test_lock.py compares it.\n"
)
STALE = "pyproject.toml's dependencies or constraints.txt changed since requirements.lock was made"
#: the platform the lock is resolved for (`make lock`: --python-version 3.11, x86_64 manylinux)
LOCK_ENV = {
    "python_version": "3.11",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _normalized(requirements: list[Any]) -> list[str]:
    """Requirement strings without whitespace or case, sorted: reformatting a table keeps the digest."""
    return sorted(
        json.dumps(r, sort_keys=True) if isinstance(r, dict) else "".join(r.split()).lower()
        for r in requirements
    )


def _constraint_lines(constraints: Path) -> list[str]:
    return [s for line in constraints.read_text().splitlines() if (s := line.split("#", 1)[0].strip())]


def lock_inputs(pyproject: Path = PYPROJECT, constraints: Path = CONSTRAINTS) -> dict[str, Any]:
    """What the lock is resolved from: pyproject.toml's dependency tables and [tool.uv] (read by the
    resolver), and constraints.txt's pins. Editing anything else in pyproject.toml keeps the lock current."""
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    return {
        "requires-python": project.get("requires-python", ""),
        "dependencies": _normalized(project.get("dependencies", [])),
        "optional-dependencies": {
            k: _normalized(v) for k, v in project.get("optional-dependencies", {}).items()
        },
        "dependency-groups": {k: _normalized(v) for k, v in data.get("dependency-groups", {}).items()},
        "tool.uv": data.get("tool", {}).get("uv", {}),
        "constraints": _normalized(_constraint_lines(constraints)),
    }


def inputs_digest(pyproject: Path = PYPROJECT, constraints: Path = CONSTRAINTS) -> str:
    text = json.dumps(lock_inputs(pyproject, constraints), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def recorded_digest(lock: Path = LOCK) -> str | None:
    for line in lock.read_text().splitlines():
        if line.startswith(DIGEST):
            return line.removeprefix(DIGEST).strip()
    return None


def locked_versions(lock: Path = LOCK) -> dict[str, str]:
    """Canonical package name -> pinned version, for every package of the lock."""
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", lock.read_text(), re.MULTILINE)
    return {_canonical(name): version for name, version in pins}


#: a constraints.txt comment pairing a package with the release of another its native code was built
#: against: `# built-against: executorch==1.5.1 torch==2.13.0`
BUILT_AGAINST = re.compile(r"^#\s*built-against:\s*(\S+)==(\S+)\s+(\S+)==(\S+)\s*$", re.MULTILINE)


def built_against_problems(lock: Path = LOCK, constraints: Path = CONSTRAINTS) -> list[str]:
    """Where the lock pins a package that constraints.txt says was built against another release of
    a second package than the lock's (a native extension that would fail to load, or load and
    misbehave). A local version (`+cpu`) is the same release."""
    locked = locked_versions(lock)
    problems = []
    for name, version, base, base_version in BUILT_AGAINST.findall(constraints.read_text()):
        pinned = locked.get(_canonical(name), "").split("+")[0]
        if pinned != version.split("+")[0]:
            continue  # another release of it (or none) is locked: the pairing says nothing about it
        have = locked.get(_canonical(base), "")
        if have.split("+")[0] != base_version.split("+")[0]:
            problems.append(
                f"{name}=={version} is built against {base}=={base_version}, the lock has "
                f"{base}=={have or '(none)'}: pin {base} back, or move {name} to a release built "
                f"against it and update the built-against line in {constraints.name}"
            )
    return problems


def stamp(lock: Path = LOCK) -> None:
    """Put the header and the inputs' digest on top of the resolver's output (idempotent)."""
    lines = lock.read_text().splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    ours = HEADER.splitlines(keepends=True)
    resolver_header = [line for line in lines[:start] if not line.startswith(DIGEST) and line not in ours]
    lock.write_text(HEADER + f"{DIGEST}{inputs_digest()}\n" + "".join(resolver_header + lines[start:]))


# -- the tests --------------------------------------------------------------------------------------


def test_lock_is_current() -> None:
    recorded, current = recorded_digest(), inputs_digest()
    assert recorded == current, (
        f"{STALE} (inputs-sha256 {recorded} in the lock, {current} now): run `make lock`, then "
        f"`make test`, and commit requirements.lock with the change"
    )


def test_a_dependency_change_is_caught(tmp_path: Path) -> None:
    pyproject, constraints = tmp_path / "pyproject.toml", tmp_path / "constraints.txt"
    constraints.write_text(CONSTRAINTS.read_text())
    text = PYPROJECT.read_text()
    pyproject.write_text(text)
    assert inputs_digest(pyproject, constraints) == inputs_digest()
    # formatting and tables the resolver does not read leave the lock current
    pyproject.write_text(text.replace('"numpy>=1.26"', '"NumPy >= 1.26"') + "\n[tool.other]\nx = 1\n")
    assert inputs_digest(pyproject, constraints) == inputs_digest()
    for changed in (
        text.replace('"numpy>=1.26"', '"numpy>=2"'),
        text.replace('"numpy>=1.26",', '"numpy>=1.26",\n    "requests",'),
    ):
        pyproject.write_text(changed)
        assert inputs_digest(pyproject, constraints) != inputs_digest()
    pyproject.write_text(text)
    constraints.write_text("torch==2.14.0+cpu\n")
    assert inputs_digest(pyproject, constraints) != inputs_digest()


def _declared_requirements() -> list[tuple[str, str]]:
    """(where, requirement) for every requirement of pyproject.toml and constraints.txt."""
    data = tomllib.loads(PYPROJECT.read_text())
    found = [("dependencies", r) for r in data["project"].get("dependencies", [])]
    for extra, reqs in data["project"].get("optional-dependencies", {}).items():
        found += [(f"extra {extra}", r) for r in reqs]
    for group, reqs in data.get("dependency-groups", {}).items():
        found += [(f"group {group}", r) for r in reqs if isinstance(r, str)]
    return found + [("constraints.txt", r) for r in _constraint_lines(CONSTRAINTS)]


def test_pyproject_ranges_admit_the_locked_versions() -> None:
    """`pip install graphmint[...]` without the lock may resolve the locked (tested) set."""
    from packaging.requirements import Requirement

    locked = locked_versions()
    problems = []
    for where, text in _declared_requirements():
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(LOCK_ENV):
            continue
        version = locked.get(_canonical(req.name))
        if version is None:
            problems.append(f"{where}: {text} is not in the lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{where}: {text} does not admit the locked {req.name}=={version}")
    excluded = tomllib.loads(PYPROJECT.read_text()).get("tool", {}).get("uv", {})
    for name in excluded.get("exclude-dependencies", []):
        if _canonical(name) in locked:
            problems.append(f"[tool.uv] exclude-dependencies: {name} is in the lock all the same")
    assert not problems, "pyproject.toml and requirements.lock disagree:\n" + "\n".join(problems)


def test_native_builds_match_the_locked_release_they_were_built_against(tmp_path: Path) -> None:
    assert BUILT_AGAINST.search(CONSTRAINTS.read_text()), "constraints.txt pairs executorch with torch"
    assert built_against_problems() == []
    lock = tmp_path / "requirements.lock"
    lock.write_text(LOCK.read_text().replace("\ntorch==2.13.0+cpu", "\ntorch==2.14.1+cpu"))
    (refused,) = built_against_problems(lock)
    assert refused.startswith(
        "executorch==1.5.1 is built against torch==2.13.0, the lock has torch==2.14.1+cpu"
    )
    # a lock that moved executorch on as well is not judged by the old release's pairing
    lock.write_text(lock.read_text().replace("\nexecutorch==1.5.1", "\nexecutorch==1.6.0"))
    assert built_against_problems(lock) == []


def test_environment_is_the_lock() -> None:
    """What `make` installed is the lock, and the manifest's "versions" (the packages of the formats)
    are versions of the lock."""
    import pytest

    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip(f"running in {sys.prefix}, not make's .venv: the lock does not describe it")
    from graphmint.exporters.formats import packages_for
    from graphmint.models.frameworks import FRAMEWORKS, package_versions

    locked = locked_versions()
    problems = []
    for name, version in sorted(locked.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}=={version} is locked but not installed")
            continue
        if installed != version:
            problems.append(f"{name} {installed} is installed, the lock has {version}")
    for framework in FRAMEWORKS:
        for name, version in package_versions(*packages_for(framework)).items():
            if locked.get(_canonical(name)) != version:
                problems.append(f"manifest versions ({framework}): {name} {version} is not the lock's")
    assert not problems, "the environment is not requirements.lock (run `make`):\n" + "\n".join(problems)


if __name__ == "__main__":
    if sys.argv[1:] == ["--stamp"]:
        if refused := built_against_problems():
            sys.exit("make lock refuses this lock: " + "; ".join(refused))
        stamp()
    elif sys.argv[1:] == ["--check"]:
        if recorded_digest() != inputs_digest():
            sys.exit(f"{STALE}: run `make lock`")
    else:
        sys.exit(f"usage: {sys.argv[0]} --stamp | --check")
