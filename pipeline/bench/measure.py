"""Latency measurement, each artifact (or the eager model) in a child process of its own.

A model's artifacts and its eager model are measured together, in rounds: each round every one of
them serves one short window of requests, one after another (at least `window_requests` requests and
`window_s` seconds). A machine whose speed drifts, as shared cloud machines do by twofold within
seconds, then slows all of them alike: each figure comes from the requests of every round, and the
ratio to eager is the median over rounds of the ratio within the round (paired), which drift does
not move. The stopping rule is Triton Model Navigator's, applied to those figures: after at least
`min_windows` rounds, the measurement is stable when every subject's median latency, taken after each
of the last `stable_windows` rounds, agrees within `tolerance` of their mean; it stops there, or after
`max_windows` rounds or `max_s` seconds per subject, whichever comes first (then `stable` is false).
A warm-up (at least `warmup_requests` requests and `warmup_s` seconds, so that lazy compilation and
allocation happen) is not counted.

Threads are pinned: the child runs on `threads` CPUs (sched_setaffinity) and each framework's thread
pool is set to `threads` (torch.set_num_threads, TensorFlow's intra-op pool, ONNX Runtime's and
TFLite's own settings through `Runner.threads`). Memory is the child's peak resident set (VmHWM, reset
when the child starts measuring) and what it added to the resident set the child started with.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["BenchHost", "StabilityRule", "Timing", "p50", "spread", "stable", "timing"]


@dataclass(frozen=True)
class StabilityRule:
    window_requests: int = 10
    window_s: float = 0.1
    stable_windows: int = 3
    tolerance: float = 0.10
    min_windows: int = 10
    max_windows: int = 60
    max_s: float = 20.0
    #: enough for lazy work to be done: TorchScript's profiling executor optimizes after its first
    #: runs, torch.compile and tf.function trace on the first call of a shape
    warmup_requests: int = 50
    warmup_s: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Timing:
    """One artifact at one batch size."""

    batch: int
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    #: items (batch rows) per second, one request after another
    throughput: float
    requests: int
    windows: int
    stable: bool
    #: how far the median's last `stable_windows` estimates (one per round) spread: (max − min) / mean
    spread: float

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _window(call: Callable[[], Any], requests: int, seconds: float) -> list[float]:
    """Latencies (seconds) of at least `requests` calls lasting at least `seconds` together."""
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < requests or time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        call()
        samples.append(time.perf_counter() - begin)
    return samples


def spread(medians: list[float]) -> float:
    """(max − min) / mean."""
    mean = statistics.fmean(medians)
    return (max(medians) - min(medians)) / mean if mean > 0 else 0.0


def stable(estimates: Sequence[float], rule: StabilityRule) -> bool:
    """Whether the last `stable_windows` estimates of a figure agree within the rule's tolerance."""
    if len(estimates) < max(rule.stable_windows, rule.min_windows):
        return False
    return spread(list(estimates[-rule.stable_windows :])) <= rule.tolerance


def p50(windows: Sequence[Sequence[float]]) -> float:
    return float(np.median(np.concatenate([np.asarray(w) for w in windows])))


def timing(windows: Sequence[Sequence[float]], batch: int, is_stable: bool, agreement: float) -> Timing:
    """The figures of one artifact at one batch size, from the requests of every window."""
    samples = np.concatenate([np.asarray(w) for w in windows])
    p50_, p90, p99 = np.percentile(samples, [50, 90, 99]) * 1e6
    return Timing(
        batch=batch,
        p50_us=float(p50_),
        p90_us=float(p90),
        p99_us=float(p99),
        mean_us=float(samples.mean() * 1e6),
        throughput=float(batch * len(samples) / samples.sum()),
        requests=len(samples),
        windows=len(windows),
        stable=is_stable,
        spread=agreement,
    )


def _status_kb(field: str) -> int | None:
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return None


def _pin(threads: int) -> list[int]:
    """Run this process on `threads` CPUs and size the frameworks' pools; returns the CPUs."""
    cpus: list[int] = []
    if hasattr(os, "sched_getaffinity"):
        available = sorted(os.sched_getaffinity(0))
        cpus = available[-threads:]  # the last ones: the first usually takes more interrupts
        os.sched_setaffinity(0, cpus)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # only before its first parallel work
            torch.set_num_interop_threads(1)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        with contextlib.suppress(RuntimeError):  # only before TensorFlow's runtime starts
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
    return cpus


class BenchHost:
    """In the child: load one thing to measure, then measure it at each batch size asked."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.cpus = _pin(threads)
        with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset the peak resident set to the current one
        self.rss_start_kb = _status_kb("VmRSS")
        self.call: Callable[[Mapping[str, np.ndarray]], Any] | None = None
        self.runner: Any = None
        self.runtime = ""

    def load_artifact(self, runner_name: str, artifact: Any) -> dict[str, Any]:
        """The artifact loaded by its deployment runner."""
        import importlib

        from graphmint.validators import get_runner
        from graphmint.validators.children import import_ref
        from graphmint.validators.isolated import IsolatedRunner

        for module in artifact.imports:
            importlib.import_module(module)
        started = time.perf_counter()
        cls = get_runner(runner_name)
        if issubclass(cls, IsolatedRunner):  # this is its own child already: the runner it would host
            cls = import_ref(cls.inner)
        self.runner = cls(artifact)
        self.runner.threads = self.threads
        self.runner.activate()
        self.call = lambda feeds: self.runner.infer(feeds)
        self.runtime = self.runner.runtime
        return self._loaded(started)

    def load_eager(self, ref: str, seed: int) -> dict[str, Any]:
        """The model built from its code, called eagerly as validation calls it."""
        from graphmint.pipeline.spec.loader import build_model

        started = time.perf_counter()
        framework, model = build_model(ref, seed)
        self.call = lambda feeds: framework.run_eager(model, feeds)
        self.runtime = f"{framework.name} eager"
        return self._loaded(started)

    def load_in_process(
        self, ref: str, seed: int, framework_name: str, route: str, ctx: dict[str, Any]
    ) -> dict[str, Any]:
        """A route without a file (torch.compile, tf.function): the model built from its code and
        exported in this process by the route's strategies, in order, until one makes it."""
        from graphmint.exporters import get_route
        from graphmint.exporters.base import ExportContext, ExportState
        from graphmint.pipeline.spec.loader import build_model
        from graphmint.validators import get_runner

        started = time.perf_counter()
        _, model = build_model(ref, seed)
        made = None
        reasons = []
        for label, strategy in get_route(framework_name, route).strategies:
            result = strategy(ExportContext(model=model, **ctx))
            if result.state is ExportState.EXPORTED and result.artifact is not None:
                made = result.artifact
                break
            reasons.append(f"{label}: {result.reason}")
        if made is None:
            raise RuntimeError(f"route {route} did not export again: {'; '.join(reasons)}")
        self.runner = get_runner(made.runner)(made)
        self.runner.activate()
        self.call = lambda feeds: self.runner.infer(feeds)
        self.runtime = self.runner.runtime
        return self._loaded(started)

    def _loaded(self, started: float) -> dict[str, Any]:
        return {"load_s": round(time.perf_counter() - started, 3), "runtime": self.runtime, "cpus": self.cpus}

    def _bound(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], Any]:
        if self.call is None:
            raise RuntimeError("measure before load")
        call = self.call
        return lambda: call(feeds)

    def warmup(self, feeds: Mapping[str, np.ndarray], rule: StabilityRule) -> int:
        """Run `feeds` until lazy work is done (not counted); returns the requests sent."""
        return len(_window(self._bound(feeds), rule.warmup_requests, rule.warmup_s))

    def window(self, feeds: Mapping[str, np.ndarray], rule: StabilityRule) -> list[float]:
        """One window of requests: their latencies in seconds."""
        return _window(self._bound(feeds), rule.window_requests, rule.window_s)

    def memory(self) -> dict[str, float | None]:
        """Peak resident set since the child started measuring, and what was added to the start's."""
        peak, start = _status_kb("VmHWM"), self.rss_start_kb
        return {
            "peak_rss_mb": None if peak is None else round(peak / 1024, 1),
            "added_rss_mb": None if peak is None or start is None else round((peak - start) / 1024, 1),
        }

    def close(self) -> None:
        if self.runner is not None:
            self.runner.deactivate()
