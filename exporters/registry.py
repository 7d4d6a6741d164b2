"""The machinery of the format registry (exporters.formats holds the entries): a `Format`, its
runners and Triton entries, and the `FormatRegistry` that refuses a contradiction when an entry is
registered. Nothing here imports a framework."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Device", "Format", "FormatError", "FormatRegistry", "Role", "RunnerSpec", "Serving"]


class FormatError(ValueError):
    """A format registration, exporter or route that contradicts itself or the registry."""


class Role(StrEnum):
    #: the runtime the artifact is deployed on: a failure there fails the route
    DEPLOY = "deploy"
    #: a second opinion on the file: where it cannot run a graph, or disagrees while a deployment
    #: runtime agrees with the eager model, that is a warning about it, not a failure (unless strict)
    CROSS_CHECK = "cross-check"
    #: loaded inside another runner's child (validators.isolated); never named by a manifest
    HOSTED = "hosted"


class Device(StrEnum):
    CPU = "cpu"
    CUDA = "cuda"


@dataclass(frozen=True)
class RunnerSpec:
    """One runner of a format: its name (as manifests record it), its class, role and device."""

    name: str
    #: "module:class" of its validators.base.Runner subclass, imported only when it runs
    ref: str
    role: Role = Role.DEPLOY
    device: Device = Device.CPU
    #: a cross-check runtime that people also deploy the format on (OpenVINO for an ONNX file): where
    #: it verified an artifact, `graphmint bench` measures it there too and may recommend it
    deployable: bool = False

    @property
    def deploys(self) -> bool:
        """Whether an artifact may be deployed on it: its format's deploying runtime, or one named so."""
        return self.role == Role.DEPLOY or self.deployable


@dataclass(frozen=True)
class Serving:
    """A Triton entry a format fills: `<model>_<entry>/1/<filename>`, run by Triton's `platform`, or by
    the `backend` it names (OpenVINO's). With no filename the artifact is a folder whose files go into
    `1/` themselves (an IR's model.xml and model.bin)."""

    entry: str
    platform: str
    filename: str | None
    #: the routes whose artifact can fill it, in order of preference
    routes: tuple[str, ...]
    backend: str | None = None
    #: what the server computes in where its config cannot say (the bundle's entry carries it)
    precision: str | None = None


@dataclass(frozen=True)
class Format:
    """Everything graphmint knows about one artifact format."""

    name: str
    description: str
    #: the file (or folder) a route of this format writes; None for a form checked in-process
    filename: str | None
    #: its runners, in the order an artifact is checked; the first deploys it and routes name it
    runners: tuple[RunnerSpec, ...]
    #: why loading a file of it can run code; None for a data format, or one with no file to load
    executes_code: str | None
    #: per framework whose routes write it: the packages whose versions decide its results
    packages: Mapping[str, tuple[str, ...]]
    #: per framework whose routes write it: modules a child imports before it exports or loads one
    preload: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    serving: tuple[Serving, ...] = ()
    #: a format for phones and embedded devices: its float32 routes form the `edge` route group
    edge: bool = False
    #: "module:function" that traces an artifact of it, written with a debug record, at one grid point
    #: with its runtime's own debugger: (path, feeds, point) -> validators.details.RuntimeTrace
    tracer: str | None = None

    @property
    def runner(self) -> str:
        """The runner a route of this format names: the first, which deploys it."""
        return self.runners[0].name

    @property
    def in_process(self) -> bool:
        """Checked in the pipeline's process on the object the exporter made: there is no file."""
        return self.filename is None

    @property
    def devices(self) -> frozenset[Device]:
        return frozenset(r.device for r in self.runners)

    @property
    def wants_gpu(self) -> bool:
        """Whether one of its runners runs on a CUDA device (a task checking it should get a GPU)."""
        return Device.CUDA in self.devices

    def check_deploys(self, runner: str, who: str) -> None:
        """Raise FormatError, naming `who`, unless `runner` is one that deploys this format."""
        deploying = [r.name for r in self.runners if r.role == Role.DEPLOY]
        if runner not in deploying:
            raise FormatError(f"{who}: runner {runner!r} does not deploy format {self.name!r} ({deploying})")

    def runtimes(self) -> tuple[str, ...]:
        """Every runtime an artifact of it is checked on, the deploying runner first."""
        return tuple(r.name for r in self.runners if r.role != Role.HOSTED)

    def check(self) -> None:
        """Raise FormatError where the entry contradicts itself."""
        if not self.runners:
            raise FormatError(f"format {self.name!r} has no runner")
        if self.runners[0].role != Role.DEPLOY:
            raise FormatError(f"format {self.name!r}: its first runner {self.runner!r} must deploy it")
        names = [r.name for r in self.runners]
        if len(set(names)) != len(names):
            raise FormatError(f"format {self.name!r} names a runner twice: {names}")
        for spec in self.runners:
            if spec.deployable and spec.role != Role.CROSS_CHECK:
                raise FormatError(
                    f"runner {spec.name!r} of {self.name!r}: only a cross-check is marked deployable"
                )
            module, _, attr = spec.ref.partition(":")
            if not module or not attr:
                raise FormatError(
                    f"runner {spec.name!r} of {self.name!r}: {spec.ref!r} is not 'module:class'"
                )
        if self.tracer is not None and not all(self.tracer.partition(":")[::2]):
            raise FormatError(f"format {self.name!r}: tracer {self.tracer!r} is not 'module:function'")
        if self.serving and self.filename is None:
            raise FormatError(f"format {self.name!r} has no file, so Triton cannot serve it")
        if not self.packages:
            raise FormatError(f"format {self.name!r} names no framework that writes it (packages)")
        unknown = set(self.preload) - set(self.packages)
        if unknown:
            raise FormatError(f"format {self.name!r} preloads for {sorted(unknown)}, which do not write it")


class FormatRegistry:
    """Formats by name, and every runner by name; `register` refuses a contradiction."""

    def __init__(self, formats: Iterable[Format] = ()) -> None:
        self._formats: dict[str, Format] = {}
        self._by_runner: dict[str, Format] = {}
        for fmt in formats:
            self.register(fmt)

    def register(self, fmt: Format) -> Format:
        fmt.check()
        if fmt.name in self._formats:
            raise FormatError(f"format {fmt.name!r} is registered twice")
        for spec in fmt.runners:
            owner = self._by_runner.get(spec.name)
            if owner is not None:
                raise FormatError(f"runner {spec.name!r} is claimed by {owner.name!r} and {fmt.name!r}")
        served = {s.entry for f in self._formats.values() for s in f.serving}
        clash = served & {s.entry for s in fmt.serving}
        if clash:
            raise FormatError(f"format {fmt.name!r}: Triton entry {sorted(clash)} is already filled")
        self._formats[fmt.name] = fmt
        for spec in fmt.runners:
            self._by_runner[spec.name] = fmt
        return fmt

    def __getitem__(self, name: str) -> Format:
        try:
            return self._formats[name]
        except KeyError:
            raise FormatError(f"{name!r} is not a registered format ({', '.join(self._formats)})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._formats

    def __iter__(self) -> Iterator[Format]:
        return iter(self._formats.values())

    def __len__(self) -> int:
        return len(self._formats)

    def of_runner(self, runner: str) -> Format | None:
        """The format `runner` loads, or None for a name no format claims."""
        return self._by_runner.get(runner)

    def runner_spec(self, runner: str) -> RunnerSpec | None:
        fmt = self._by_runner.get(runner)
        return next(r for r in fmt.runners if r.name == runner) if fmt else None

    def runners(self) -> dict[str, str]:
        """Every runner a manifest may name -> "module:class" (hosted runners are left out)."""
        return {r.name: r.ref for f in self for r in f.runners if r.role != Role.HOSTED}
